"""``entitydb_binds``: the test database URL of each bind, for ``ENTITYDB_BINDS``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from flask_entitydb._testing.database import EntityDBTestDatabase


class BindURLs(Mapping[str, str]):
    """Bind key -> the URL (with password) of that bind's test database.

    Made for ``app.config["ENTITYDB_BINDS"]``: the app looks up the key of each bind its
    entities name, and the first lookup of a key makes that bind's test database (per
    xdist worker), so the mapping needs no list of the app's binds. Iterating gives the
    binds made so far.
    """

    def __init__(self, database: EntityDBTestDatabase) -> None:
        self._database = database

    def __getitem__(self, key: str) -> str:
        if not isinstance(key, str):
            raise KeyError(key)
        return self._database.bind(key).url_string

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._database.binds))

    def __len__(self) -> int:
        return len(self._database.binds)

    def __repr__(self) -> str:
        return f"<entitydb_binds {sorted(self._database.binds)}>"
