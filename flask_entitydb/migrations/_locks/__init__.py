"""Migration locks (internal): the lock that lets one migrator run at a time on each
backend (session and transaction locks, the Galera lease, the SQLite lock file), and the
statement timeouts while it is held."""
