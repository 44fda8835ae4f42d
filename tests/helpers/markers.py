"""The markers that say what a test needs, and the record of them in the junit XML.

``mysql`` / ``postgresql`` mean the shared servers (``ENTITYDB_TEST_MYSQL_URL`` /
``ENTITYDB_TEST_POSTGRESQL_URL``); ``private_server`` a server process the test starts
itself; ``galera``, ``pgbouncer`` and ``replica`` the clusters, the pooler and the
replicas made of private servers. A test that takes one of the fixtures below gets its
markers without saying so; a test that reaches a server another way (a parametrized
``request.getfixturevalue``) is marked where it is written.

CI (``.ci/run``) fails when a test with any of :data:`SERVER_MARKERS` was skipped: the
markers of every test are written into the junit XML as the property ``markers``.
"""

from __future__ import annotations

import pytest

SERVER_MARKERS = ("mysql", "postgresql", "private_server", "galera", "pgbouncer", "replica")

FIXTURE_MARKERS: dict[str, tuple[str, ...]] = {
    "mariadb_server_factory": ("private_server",),
    "postgresql_server_factory": ("private_server",),
    "mariadb_cluster": ("replica",),
    "postgresql_cluster": ("replica",),
    "galera_cluster": ("galera", "private_server"),
    "pgbouncer": ("pgbouncer", "postgresql"),
}
"""Fixture name -> the markers a test taking it (directly or through another fixture)
gets."""

PYTEST_MARKERS = {"parametrize", "filterwarnings", "usefixtures", "skip", "skipif", "xfail"}
"""pytest's own markers: they say nothing about what a test needs (not recorded)."""


def mark_and_record(item: pytest.Item) -> None:
    """Add the markers of the fixtures ``item`` takes, and record all its markers as the
    junit property ``markers`` (space separated)."""
    for fixture in getattr(item, "fixturenames", ()):
        for name in FIXTURE_MARKERS.get(fixture, ()):
            if item.get_closest_marker(name) is None:
                item.add_marker(name)
    names = sorted({mark.name for mark in item.iter_markers()} - PYTEST_MARKERS)
    item.user_properties.append(("markers", " ".join(names)))
