"""How the plugin stops: a test failed with a readable one-line message, or the whole run
ended when the database server cannot be reached at all."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from flask_entitydb._testing.options import URL_ENV
from flask_entitydb._testing.workers import admin_engine

if TYPE_CHECKING:
    import sqlalchemy as sa


def fail(message: str) -> NoReturn:
    """Fail the current test with ``message`` and no traceback."""
    pytest.fail(message, pytrace=False)


def exit_unreachable(url: sa.URL, exc: BaseException, worker: str | None) -> NoReturn:
    """End the run (or, in an xdist worker, fail the test): the server of ``url`` cannot be
    reached."""
    from flask_entitydb._engine.listeners import is_unknown_database
    from flask_entitydb._settings.masking import mask_text, mask_url

    reason = getattr(exc, "orig", None) or exc
    first_line = mask_text(str(reason)).strip().splitlines()[0] if str(reason) else ""
    if is_unknown_database(first_line):
        name = url.database or ""
        what = (
            f"the server runs, but has no database '{name}': create it (CREATE DATABASE"
            f" {name}) or point --entitydb-url / {URL_ENV} at a database that exists"
        )
    else:
        what = f"start the server or point --entitydb-url / {URL_ENV} at a reachable database"
    message = (
        f"flask-entitydb: cannot connect to the test database '{mask_url(url)}'"
        f" ({type(reason).__name__}: {first_line}); {what}."
    )
    if worker is None:
        pytest.exit(message, returncode=pytest.ExitCode.USAGE_ERROR)
    # pytest.exit() inside an xdist worker crashes the run with an INTERNALERROR; fail
    # each test instead, without the driver's exception chain
    try:
        pytest.fail(message, pytrace=False)
    except pytest.fail.Exception as failure:
        raise failure from None


def is_connect_error(url: sa.URL, exc: BaseException) -> bool:
    """Whether ``exc`` happened because the server cannot be reached at all."""
    import sqlalchemy as sa

    engine = admin_engine(url)
    try:
        with engine.connect():
            return False
    except sa.exc.DBAPIError:
        return True
    finally:
        engine.dispose()


def is_unreachable(url: sa.URL, exc: BaseException | None) -> bool:
    """Whether ``exc`` is a connection error and the server of ``url`` cannot be reached."""
    import sqlalchemy as sa

    return isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError)) and (
        is_connect_error(url, exc)
    )


def guard_connect(url: sa.URL, worker: str | None, action: Any) -> Any:
    """Run ``action()``; end the run as :func:`exit_unreachable` if the server is gone."""
    import sqlalchemy as sa

    try:
        return action()
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        if is_connect_error(url, exc):
            exit_unreachable(url, exc, worker)
        raise


def fail_migration(url: sa.URL, worker: str | None, step: str, exc: BaseException) -> NoReturn:
    """Fail the test for the :class:`~flask_entitydb.errors.MigrationError` ``exc`` raised
    by ``step``, or end the run when its cause is an unreachable server."""
    cause = exc.__cause__
    if cause is not None and is_unreachable(url, cause):
        exit_unreachable(url, cause, worker)
    fail(f"{step} with the app's migrations failed: {exc}")


def check_reachable(url: sa.URL, worker: str | None) -> None:
    """End the run as :func:`exit_unreachable` unless ``SELECT 1`` works on ``url``."""
    import sqlalchemy as sa

    engine = admin_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.DBAPIError as exc:
        exit_unreachable(url, exc, worker)
    finally:
        engine.dispose()
