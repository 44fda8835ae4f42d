"""Settings (internal): every configuration key read once into frozen settings, database
URLs and their TLS words, the drivers, and the masking of secrets in anything shown.

The layer just above :mod:`flask_entitydb.errors`; it never reaches the per-app state.

``load`` reads an app's config (``load_settings``) into the dataclasses of ``model``,
with ``keys`` (the known keys; a misspelled one is an error), ``values`` (flags, seconds,
lists), ``liveness``, ``model_modules`` and ``binds``
(other databases, read replicas); ``database`` prepares each database from ``urls``
(parsing, dialect defaults), ``tls`` (``ssl=``) and ``options`` (engine options), which
lean on ``drivers`` and ``masking``.
"""
