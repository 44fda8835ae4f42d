"""Testing (internal): the test databases, the per-test transaction and the migrations
self-test behind the pytest plugin (:mod:`flask_entitydb.pytest_plugin`, the entry point).
"""
