"""Engines (internal): engine set-up for each bind, the session and its routing of
statements to binds and read replicas, the replica cookie, liveness, and the listeners
installed on each engine. Above the state and the settings; below the migrations.
"""
