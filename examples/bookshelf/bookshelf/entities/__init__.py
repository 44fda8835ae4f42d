"""The bookshelf's entities: one ``*_entity.py`` module per table.

flask-entitydb finds this package through the ``flask_entitydb.entities`` entry point in
``pyproject.toml`` and imports every ``*_entity.py`` module in it; nothing imports them by
hand.
"""
