"""Engines (internal): engine set-up for each bind, the session and its routing of
statements to binds and read replicas, the replica cookie, liveness, and the listeners
installed on each engine. Above the state and the settings; below the migrations.

- :mod:`~flask_entitydb._engine.setup`: an app's engines, from its settings;
- :mod:`~flask_entitydb._engine.routes`: the bind of each table and statement, and an
  app's :class:`~flask_entitydb._engine.routes.Routes`;
- :mod:`~flask_entitydb._engine.session`: ``db.session``, made in this one module;
- :mod:`~flask_entitydb._engine.routing`: which replica serves a read, and which
  statements never go to one;
- :mod:`~flask_entitydb._engine.positions`: replication positions, lag by position;
- :mod:`~flask_entitydb._engine.cookie`: the client's last write, in a sealed cookie
  (:mod:`~flask_entitydb._engine.sealing`);
- :mod:`~flask_entitydb._engine.liveness`: pooled connections the server has closed.
"""
