"""A Flask-SQLAlchemy + Flask-Migrate app switched to flask-entitydb by the steps of
docs/coming-from-flask-migrate.md (issue 15).

The app has the shapes real apps have: models in a ``models`` package whose modules import
each other, a custom ``Query`` class, ``db.Table``, ``lazy="dynamic"`` relationships, an
``include_object`` in its ``env.py``, and a ``create_app`` that upgrades the database at
start-up. Its history is written and applied by Flask-Migrate itself; then the app is
switched (imports, the ``db =`` line, the folder, ``init --replace-env``) and the same
history is checked, extended, downgraded and upgraded again, on SQLite, MariaDB and
PostgreSQL, with the command outputs compared to Flask-Migrate's side by side.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

FLASK = str(Path(sys.executable).with_name("flask"))

LEGACY_INIT = """\
import os

from flask import Flask, session
from flask_migrate import Migrate, upgrade
from flask_session import Session
from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy()
migrate = Migrate()
MIGRATIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "migrations")


def create_app(config=None):
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["APP_DATABASE_URL"]
    app.config["SESSION_TYPE"] = "sqlalchemy"
    app.config.update(config or {})
    db.init_app(app)
    migrate.init_app(app, db)
    app.config["SESSION_SQLALCHEMY"] = db
    Session(app)
    from . import models  # noqa: F401

    @app.get("/visits")
    def visits():
        session["visits"] = session.get("visits", 0) + 1
        return str(session["visits"])

    if os.environ.get("AUTO_MIGRATE") == "1":
        with app.app_context():
            upgrade(MIGRATIONS)
    return app
"""

QUERIES = """\
from flask_sqlalchemy.query import Query


class UserQuery(Query):
    def named(self, username):
        return self.filter_by(username=username)
"""

MODELS_INIT = """\
from .user import User, followers
from .post import Post

__all__ = ["Post", "User", "followers"]
"""

# user.py imports post.py at the top, and post.py imports user.py: the app's own import
# order (models/__init__.py) works, importing post.py first would not
USER = """\
from .. import db
from ..queries import UserQuery
from .post import Post

followers = db.Table(
    "followers",
    db.Column("follower_id", db.Integer, db.ForeignKey("user.id"), primary_key=True),
    db.Column("followed_id", db.Integer, db.ForeignKey("user.id"), primary_key=True),
)


class User(db.Model):
    query_class = UserQuery

    id = db.Column(db.Integer, primary_key=True)
    username = db.Column(db.String(64), index=True, unique=True, nullable=False)
    about_me = db.Column(db.String(140))
    posts = db.relationship("Post", backref="author", lazy="dynamic")
    followed = db.relationship(
        "User",
        secondary=followers,
        primaryjoin=(followers.c.follower_id == id),
        secondaryjoin=(followers.c.followed_id == id),
        backref=db.backref("followers", lazy="dynamic"),
        lazy="dynamic",
    )

    def latest_post(self):
        return Post.query.filter_by(user_id=self.id).order_by(Post.id.desc()).first()
"""

POST = """\
from .. import db
from . import user as user_module


class Post(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    body = db.Column(db.String(140), nullable=False)
    user_id = db.Column(db.Integer, db.ForeignKey("user.id"), index=True)
{extra}
    def author_name(self):
        return user_module.User.query.get(self.user_id).username
"""

INCLUDE_OBJECT = '''

def include_object(object, name, type_, reflected, compare_to):
    """Leave the tables of the old audit tool alone."""
    return not (type_ == "table" and name.startswith("legacy_"))

'''

USE_THE_APP = """\
import os, sys
sys.path.insert(0, os.getcwd())
from {name} import create_app, db
from {name}.models import Post, User

app = create_app()
with app.app_context():
    ann = User(username="ann")
    bob = User(username="bob")
    ann.followed.append(bob)
    db.session.add_all([ann, bob, Post(body="hello", author=ann), Post(body="again", author=ann)])
    db.session.commit()
    found = User.query.named("ann").one()
    print(found.latest_post().body, found.latest_post().author_name(), found.followed.count())
    print(User.query.paginate(page=1, per_page=1).total, type(User.query).__name__)
client = app.test_client()
print(client.get("/visits").text, client.get("/visits").text)
"""


class LegacyApp:
    """The app package on disk and a runner for its ``flask`` commands."""

    def __init__(self, src: Path, url: str) -> None:
        self.src = src
        self.url = url
        self.name = f"blog_{uuid.uuid4().hex[:8]}"
        self.path = src / self.name
        (self.path / "models").mkdir(parents=True)
        self.write("__init__.py", LEGACY_INIT)
        self.write("queries.py", QUERIES)
        self.write("models/__init__.py", MODELS_INIT)
        self.write("models/user.py", USER)
        self.write_post("")

    def write(self, relative: str, text: str) -> None:
        (self.path / relative).write_text(text)

    def write_post(self, extra: str) -> None:
        self.write("models/post.py", POST.format(extra=extra))

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        environ = {
            key: value
            for key, value in os.environ.items()
            if key not in {"DB_CONNECTION_STRING", "FLASK_DEBUG", "AUTO_MIGRATE"}
        }
        environ.update(
            PYTHONPATH=os.pathsep.join([str(self.src), os.environ.get("PYTHONPATH", "")]),
            FLASK_APP=self.name,
            APP_DATABASE_URL=self.url,
            PYTHONDONTWRITEBYTECODE="1",
            **env,
        )
        command = [FLASK, *args] if args[0] == "db" else list(args)
        return subprocess.run(
            command,
            env=environ,
            cwd=self.src,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    def ok(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        result = self.run(*args, **env)
        assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr, result.stderr
        return result

    def version(self) -> set[str]:
        engine = sa.create_engine(self.url, poolclass=sa.NullPool)
        try:
            with engine.connect() as connection:
                rows = connection.execute(sa.text("SELECT version_num FROM alembic_version"))
                return {row[0] for row in rows}
        finally:
            engine.dispose()

    def execute(self, sql: str) -> None:
        engine = sa.create_engine(self.url, poolclass=sa.NullPool)
        try:
            with engine.begin() as connection:
                connection.execute(sa.text(sql))
        finally:
            engine.dispose()


def detected(stderr: str) -> list[str]:
    """Alembic's "Detected ..." log lines, without the logger name."""
    return sorted(
        re.findall(r"^INFO  \[alembic\.autogenerate\.[\w.]+\] (Detected .*)$", stderr, re.M)
    )


_INDEX_DROPS_BEFORE_TABLE_DROP = re.compile(
    r"    with op\.batch_alter_table\('(?P<table>\w+)', schema=None\) as batch_op:\n"
    r"(?:        batch_op\.drop_index\([^\n]*\)\n)+\n?"
    r"(?=    op\.drop_table\('(?P=table)'\))"
)


def drop_index_drops_before_table_drops(versions: Path) -> int:
    """The documented fix for Flask-Migrate revisions whose downgrade drops a foreign
    key's index before the table (MariaDB/MySQL error 1553): dropping the table drops its
    indexes, so the ``drop_index`` blocks go."""
    fixed = 0
    for path in versions.glob("*.py"):
        text, count = _INDEX_DROPS_BEFORE_TABLE_DROP.subn("", path.read_text())
        if count:
            path.write_text(text)
            fixed += count
    return fixed


def switch(app: LegacyApp) -> None:
    """The code changes docs/coming-from-flask-migrate.md lists, done as a person would."""
    init = app.path / "__init__.py"
    text = init.read_text()
    # 1. imports and the db line
    text = text.replace(
        "from flask_migrate import Migrate, upgrade\n",
        "from flask_entitydb import EntityDB\nfrom flask_entitydb.migrations import upgrade\n",
    )
    text = text.replace("from flask_sqlalchemy import SQLAlchemy\n", "")
    text = text.replace(
        "db = SQLAlchemy()\nmigrate = Migrate()\n", "db = EntityDB(flask_sqlalchemy_models=True)\n"
    )
    text = text.replace("    migrate.init_app(app, db)\n", "")
    # extensions that check for a Flask-SQLAlchemy instance take db.sqlalchemy
    text = text.replace(
        'app.config["SESSION_SQLALCHEMY"] = db\n',
        'app.config["SESSION_SQLALCHEMY"] = db.sqlalchemy\n',
    )
    # the start-up upgrade(directory) follows the folder (step 3)
    text = text.replace(', os.pardir, "migrations")', ', "migrations")')
    # 2. env.py's include_object becomes a config key
    text = text.replace(
        "    app.config.update(config or {})\n",
        '    app.config["ENTITYDB_EXCLUDE_TABLES"] = ["legacy_*"]\n'
        "    app.config.update(config or {})\n",
    )
    assert "flask_migrate" not in text and "SQLAlchemy()" not in text and "migrate." not in text
    init.write_text(text)
    # 3. the migrations folder moves into the package
    shutil.move(str(app.src / "migrations"), str(app.path / "migrations"))
    # 4. downgrades that drop an index a foreign key needs, before its table (MariaDB)
    drop_index_drops_before_table_drops(app.path / "migrations" / "versions")


@pytest.mark.slow
def test_flask_migrate_app_switches_by_the_documented_steps(
    database_url: str, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    app = LegacyApp(src, database_url)

    # -- Flask-Migrate writes and applies the history -------------------------------------
    app.ok("db", "init")
    app.ok("db", "migrate", "-m", "users and posts", "--rev-id", "fm1")
    app.ok("db", "upgrade")
    app.write_post("    created = db.Column(db.DateTime)\n")
    app.ok("db", "migrate", "-m", "post dates", "--rev-id", "fm2")
    app.ok("db", "upgrade")
    env = src / "migrations" / "env.py"
    text = env.read_text().replace(
        "\ndef get_metadata():", INCLUDE_OBJECT + "\ndef get_metadata():"
    )
    text = text.replace(
        "            target_metadata=get_metadata(),\n            **conf_args",
        "            target_metadata=get_metadata(),\n"
        "            include_object=include_object,\n            **conf_args",
    )
    env.write_text(text)
    app.execute("CREATE TABLE legacy_audit (id INTEGER PRIMARY KEY)")
    assert app.version() == {"fm2"}

    flask_migrate = {
        command: app.ok("db", command).stdout for command in ("current", "heads", "history")
    }
    assert flask_migrate["current"] == "fm2 (head)\n"
    # the next change, as Flask-Migrate reports it (its file is thrown away afterwards)
    app.write_post("    created = db.Column(db.DateTime)\n    edited = db.Column(db.Boolean)\n")
    fm_migrate = app.ok("db", "migrate", "-m", "edited flag", "--rev-id", "fm3")
    (src / "migrations" / "versions" / "fm3_edited_flag.py").unlink()
    app.write_post("    created = db.Column(db.DateTime)\n")

    # -- the switch -------------------------------------------------------------------------
    switch(app)
    folder = app.path / "migrations"
    # the app upgrades at start-up; the command that fixes the folder still runs
    replaced = app.ok("db", "init", "--replace-env", AUTO_MIGRATE="1")
    assert "Skipped migrating at start-up while 'flask db init' runs" in replaced.stderr
    assert f"the old one is kept as '{folder / 'env.py.bak'}'" in replaced.stdout
    assert "include_object=include_object (context.configure)" in replaced.stderr
    assert "ENTITYDB_EXCLUDE_TABLES" in replaced.stderr
    assert "No entity classes found" not in replaced.stderr

    # -- side by side with Flask-Migrate's output --------------------------------------------
    for command, expected in flask_migrate.items():
        result = app.ok("db", command, AUTO_MIGRATE="1")
        assert result.stdout == expected, command
        assert "No entity classes found" not in result.stderr
    check = app.ok("db", "check", AUTO_MIGRATE="1")
    assert "matches the entities" in check.stdout  # legacy_audit left alone, no drift

    app.write_post("    created = db.Column(db.DateTime)\n    edited = db.Column(db.Boolean)\n")
    ours = app.ok("db", "migrate", "-m", "edited flag", "--rev-id", "fm3")
    assert detected(ours.stderr) == detected(fm_migrate.stderr) != []
    assert ours.stdout == fm_migrate.stdout.replace(str(src / "migrations"), str(folder)), (
        ours.stdout,
        fm_migrate.stdout,
    )

    # -- the history on this backend: up, check, all the way down, up again -----------------
    upgraded = app.ok("db", "upgrade")
    assert "Applied fm3: edited flag" in upgraded.stdout
    assert app.ok("db", "check").stdout.startswith("The database is at head (fm3)")
    app.ok("db", "downgrade", "base")
    assert app.version() == set()
    # the start-up upgrade migrates again, and the app works on its models
    used = app.ok(sys.executable, "-c", USE_THE_APP.format(name=app.name), AUTO_MIGRATE="1")
    assert used.stdout.splitlines() == ["again ann 1", "2 UserQuery", "1 2"]
    assert "No valid SQLAlchemy instance" not in used.stderr
    assert app.version() == {"fm3"}
    assert app.ok("db", "check").stdout.startswith("The database is at head (fm3)")

    # Alembic itself, with the alembic.ini Flask-Migrate wrote
    alembic = [sys.executable, "-m", "alembic.config", "-c", str(folder / "alembic.ini")]
    assert app.ok(*alembic, "current").stdout == "fm3 (head)\n"
    app.ok(*alembic, "downgrade", "fm2")
    assert app.version() == {"fm2"}
    app.ok(*alembic, "upgrade", "head")
    assert app.version() == {"fm3"}


def test_the_documented_code_changes_leave_no_flask_migrate_behind(tmp_path: Path) -> None:
    app = LegacyApp(tmp_path, "sqlite://")
    (tmp_path / "migrations").mkdir()
    switch(app)
    text = (app.path / "__init__.py").read_text()
    assert text == textwrap.dedent(
        """\
        import os

        from flask import Flask, session
        from flask_entitydb import EntityDB
        from flask_entitydb.migrations import upgrade
        from flask_session import Session

        db = EntityDB(flask_sqlalchemy_models=True)
        MIGRATIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "migrations")


        def create_app(config=None):
            app = Flask(__name__)
            app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["APP_DATABASE_URL"]
            app.config["SESSION_TYPE"] = "sqlalchemy"
            app.config["ENTITYDB_EXCLUDE_TABLES"] = ["legacy_*"]
            app.config.update(config or {})
            db.init_app(app)
            app.config["SESSION_SQLALCHEMY"] = db.sqlalchemy
            Session(app)
            from . import models  # noqa: F401

            @app.get("/visits")
            def visits():
                session["visits"] = session.get("visits", 0) + 1
                return str(session["visits"])

            if os.environ.get("AUTO_MIGRATE") == "1":
                with app.app_context():
                    upgrade(MIGRATIONS)
            return app
        """
    )
