"""Replication positions compared without a server: PostgreSQL WAL locations, MariaDB GTID
positions of one or several domains, and the bounds of a replica's staleness from the
samples of its primary's position."""

from __future__ import annotations

import sqlalchemy as sa

from flask_entitydb._engine.positions import PrimarySamples, reached


def test_wal_locations_compare_as_numbers() -> None:
    assert reached("0/3000148", "0/3000148", "postgresql")
    assert reached("1/0", "0/FFFFFFFF", "postgresql")  # not as text: "1/0" < "0/F..."
    assert not reached("0/2FFFFFF", "0/3000000", "postgresql")
    assert reached("0/A0", "0/9F", "postgresql")


def test_gtid_positions_compare_per_domain() -> None:
    assert reached("0-1-29", "0-1-29", "mariadb")
    assert reached("0-1-100", "0-1-29", "mariadb")  # not as text: "100" < "29"
    assert not reached("0-1-28", "0-1-29", "mariadb")
    # after a failover the server id changes, the sequence goes on
    assert reached("0-2-30", "0-1-29", "mariadb")
    assert reached("0-1-5,1-1-7", "0-1-5, 1-1-7", "mariadb")
    assert not reached("0-1-5", "0-1-5,1-1-7", "mariadb")  # a domain it has not seen
    assert reached("0-1-5", "", "mariadb")


def test_samples_bound_how_stale_a_replica_is() -> None:
    samples = PrimarySamples(sa.create_engine("postgresql+psycopg://u@h/d"))
    samples.samples.extend([(100.0, "0/10"), (101.0, "0/20"), (102.0, "0/30")])
    assert samples.behind("0/30", 102.5) == (0.0, 0.0)  # has the newest
    # has the sample of 101 s, not the one of 102 s: stale by 0.5 s to 1.5 s
    assert samples.behind("0/20", 102.5) == (0.5, 1.5)
    # has none: at least as old as the oldest sample, at most unknown
    at_least, at_most = samples.behind("0/5", 102.5)
    assert at_least == 2.5 and at_most == float("inf")
