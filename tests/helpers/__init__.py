"""Code shared by the test modules (importable as ``helpers.x``: ``tests/`` is on sys.path).

``ports``           a free loopback port
``databases``       the shared MySQL/PostgreSQL test servers: URLs, fresh databases
``servers``         private servers: one base class (start, wait, stop, remove) and
                    MariaDB, PostgreSQL (primary or replica) subclasses
``tls``             the session's TLS certificates (a test CA, a server certificate)
``galera``          a MariaDB Galera cluster of private nodes
``pgbouncer``       PgBouncer in front of a PostgreSQL server
``replication``     a primary/replica pair made ready for the replica tests (pause,
                    delay, disconnect, heal), and the replica test app
``migration_apps``  throwaway Flask app packages for the ``flask db`` tests
``lock_scenario``   the exactly-once scenario of the migration lock tests
``entities``        a fresh declarative base for a test module's entities
``markers``         the markers that say what a test needs, and the junit record of them
"""
