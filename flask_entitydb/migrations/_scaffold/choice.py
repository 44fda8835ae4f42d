"""Choosing the template ``flask db init`` writes (``-t/--template``, ``list-templates``).

flask-entitydb ships one template, ``entitydb``. A folder of your own with an ``env.py``
that calls :func:`~flask_entitydb.migrations.run_migrations`, a ``script.py.mako`` and an
``alembic.ini.mako`` works too (as Flask-Migrate's custom templates do). Flask-Migrate's
template names are refused with the reason: their ``env.py`` needs Flask-Migrate.
"""

from __future__ import annotations

import os

from flask_entitydb.errors import MigrationError
from flask_entitydb.migrations._config import TEMPLATE, TEMPLATES_DIR

_FLASK_MIGRATE_TEMPLATES = {
    "flask": "its env.py needs Flask-Migrate; use 'entitydb'",
    "aioflask": "its env.py needs Flask-Migrate; use 'entitydb'",
    "flask-multidb": "its env.py needs Flask-Migrate, and binds are configured in the app"
    " (SQLALCHEMY_BINDS); use 'entitydb'",
    "aioflask-multidb": "its env.py needs Flask-Migrate, and binds are configured in the"
    " app (SQLALCHEMY_BINDS); use 'entitydb'",
}


def available_templates() -> list[tuple[str, str]]:
    """``(name, description)`` of the bundled templates, sorted by name."""
    found: list[tuple[str, str]] = []
    for name in sorted(os.listdir(TEMPLATES_DIR)):
        readme = os.path.join(TEMPLATES_DIR, name, "README")
        if not os.path.isfile(readme):
            continue
        with open(readme, encoding="utf-8") as file:
            first = file.readline().strip()
        found.append((name, first))
    return found


def template_folder(template: str | os.PathLike[str] | None) -> str:
    """The template to hand to Alembic's ``init``: a bundled template's name, or the
    absolute path of a folder of your own.

    :raises MigrationError: an unknown name, a Flask-Migrate template, or a folder that is
        not a template.
    """
    if template is None:
        return TEMPLATE
    text = os.fspath(template)
    names = [name for name, _ in available_templates()]
    if text in names:
        return text
    if text in _FLASK_MIGRATE_TEMPLATES:
        raise MigrationError(
            f"'{text}' is a Flask-Migrate template: {_FLASK_MIGRATE_TEMPLATES[text]}"
            " ('flask db list-templates' lists them)."
        )
    if os.path.isdir(text):
        missing = [
            name
            for name in ("env.py", "script.py.mako")
            if not os.path.isfile(os.path.join(text, name))
        ]
        if missing:
            raise MigrationError(
                f"The template folder '{os.path.abspath(text)}' has no {' or '.join(missing)};"
                " a template needs env.py, script.py.mako and alembic.ini.mako."
            )
        return os.path.abspath(text)  # Alembic joins it to its template folder: stays as is
    choices = ", ".join(f"'{name}'" for name in names)
    raise MigrationError(
        f"There is no template '{text}'; use one of {choices} ('flask db list-templates'),"
        " or the path of a template folder of your own."
    )
