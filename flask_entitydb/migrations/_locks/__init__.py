"""Migration locks (internal): the lock that lets one migrator run at a time on each
backend (session and transaction locks, the Galera lease, the SQLite lock file), and the
statement timeouts while it is held."""

LEASE_TABLE = "flask_entitydb_lock"
"""The table of the Galera lease (:mod:`.lease`); autogenerate leaves it out."""
