"""Settings (internal): every configuration key read once into frozen settings, database
URLs and their TLS words, the drivers, and the masking of secrets in anything shown.

The layer just above :mod:`flask_entitydb.errors`; it never reaches the per-app state.
"""
