"""Code shared by the test modules (importable as ``helpers.x``: ``tests/`` is on sys.path).

``ports``           a free loopback port
``databases``       the shared MySQL/PostgreSQL test servers: URLs, fresh databases
``servers``         private servers: one base class (start, wait, stop, remove) and
                    MariaDB, PostgreSQL (primary or replica) subclasses; TLS certificates
``galera``          a MariaDB Galera cluster of private nodes
``pgbouncer``       PgBouncer in front of a PostgreSQL server
``migration_apps``  throwaway Flask app packages for the ``flask db`` tests
``lock_scenario``   the exactly-once scenario of the migration lock tests
``markers``         the markers that say what a test needs, and the junit record of them
"""
