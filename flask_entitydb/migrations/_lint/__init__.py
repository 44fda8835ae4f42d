"""``flask db lint`` (internal): recording the revisions' operations without a database,
the rules, and the server's own judgement on a scratch database (MySQL/MariaDB online
DDL, PostgreSQL rewrites, squawk)."""
