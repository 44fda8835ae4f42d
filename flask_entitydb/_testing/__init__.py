"""Testing (internal): the test databases, the per-test transaction and the migrations
self-test behind the pytest plugin (:mod:`flask_entitydb.pytest_plugin`, the entry point).

- ``options``: the ``--entitydb-*`` settings and the xdist worker of this process
- ``workers``: the names of worker databases and files, stale clean-up, CREATE/DROP
- ``failures``: failing a test, or ending the run when the server is unreachable
- ``database``: :class:`EntityDBTestDatabase`, the database of one session or worker
- ``kept``: worker databases kept between runs, used as they are while nothing changed
- ``templates``: a schema built once and copied while the migrations are the same
- ``opening``: which database that is, created for the worker where needed
- ``isolation``: ``entitydb_transaction``'s outer transaction and SAVEPOINTs
- ``selftest``: ``check_migrations``

Nothing here imports Flask, SQLAlchemy or Alembic at module level: pytest loads the plugin
in every run of any project that has flask-entitydb installed.
"""
