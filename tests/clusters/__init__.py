"""Clusters and poolers started for the tests: a 3-node MariaDB Galera cluster and
PgBouncer in front of the shared PostgreSQL (session-scoped fixtures in conftest.py)."""
