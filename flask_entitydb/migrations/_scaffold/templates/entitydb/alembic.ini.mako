# Alembic settings of this migrations folder.
#
# 'flask db ...' does not need this file. It is here so Alembic can also be run directly:
#   FLASK_APP=<your app> python -m alembic.config -c <this folder>/alembic.ini upgrade head
# The database URL and the entities come from the Flask app (DB_CONNECTION_STRING, the
# ENTITYDB_* keys); logging is left to the application, so this file has no [loggers].

[alembic]
script_location = %(here)s
# where Python imports the app from ('flask db init' writes it relative to this file)
prepend_sys_path = .
path_separator = os

# Format new revision files with a tool of your choice; without this section,
# 'flask db migrate' uses ruff or black when one is installed.
# [post_write_hooks]
# hooks = ruff
# ruff.type = module
# ruff.module = ruff
# ruff.options = format REVISION_SCRIPT_FILENAME
