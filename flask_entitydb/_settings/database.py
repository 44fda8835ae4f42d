"""One database's settings: its connection string parsed and prepared, its engine option
layers merged and checked, its liveness policy decided (the same path for the default
database, every bind and every replica)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from flask import Flask
from sqlalchemy.engine import URL

from flask_entitydb._settings.liveness import LivenessPolicy, database_liveness
from flask_entitydb._settings.masking import mask
from flask_entitydb._settings.model import DatabaseSettings
from flask_entitydb._settings.option_files import check_option_files
from flask_entitydb._settings.option_values import check_option_values
from flask_entitydb._settings.options import (
    check_connect_keywords,
    check_engine,
    check_option_types,
    merge_engine_options,
)
from flask_entitydb._settings.tls import check_tls_options
from flask_entitydb._settings.urls import parse_url, prepare_url
from flask_entitydb.errors import ConfigurationError

OptionLayers = tuple[tuple[str, Mapping[str, Any]], ...]
"""Engine option dicts with the name blamed in messages, weakest first."""


def option_layers(app: Flask, engine_options: Mapping[str, Any]) -> OptionLayers:
    """The engine option layers every database gets, weakest first, with their names."""
    config_options = app.config.get("ENTITYDB_ENGINE_OPTIONS", {})
    if not isinstance(config_options, Mapping):
        raise ConfigurationError(
            "'ENTITYDB_ENGINE_OPTIONS' must be a dict of create_engine() options, got"
            f" {type(config_options).__name__}."
        )
    legacy_options = app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {})
    if not isinstance(legacy_options, Mapping):
        raise ConfigurationError(
            "'SQLALCHEMY_ENGINE_OPTIONS' must be a dict of create_engine() options, got"
            f" {type(legacy_options).__name__}."
        )
    return (
        ("EntityDB(engine_options=...)", engine_options),
        ("'SQLALCHEMY_ENGINE_OPTIONS'", legacy_options),
        ("'ENTITYDB_ENGINE_OPTIONS'", config_options),
    )


def prepare_database(
    raw: str | URL,
    source: str,
    layers: Iterable[tuple[str, Mapping[str, Any]]],
    liveness: LivenessPolicy | None,
) -> DatabaseSettings:
    """Parse, prepare and check one connection string and its engine options, and decide
    its liveness policy.

    :param layers: engine option dicts with the name blamed in messages, weakest first.
    :param liveness: ``ENTITYDB_LIVENESS`` as configured (``None``: the backend's default).
    :raises ConfigurationError: the URL or an option is invalid, or the liveness policy
        contradicts the engine options.
    """
    parsed = parse_url(raw, source)
    url, dialect_defaults, tls = prepare_url(parsed, source)
    # every setting is checked on its own, so the message names the one at fault
    check_engine(url, dialect_defaults, source)
    present = [(blame, layer) for blame, layer in layers if layer]
    connect_arg_blame: dict[str, str] = {}
    for blame, layer in present:
        check_option_types(layer, blame)
        check_option_values(url, layer, blame)
        check_tls_options(url, tls, layer, blame, source)
        check_engine(url, merge_engine_options(dialect_defaults, layer), blame)
        connect_arg_blame.update(dict.fromkeys(layer.get("connect_args") or {}, blame))
    options = merge_engine_options(dialect_defaults, *(layer for _, layer in present))
    check_connect_keywords(url, options, source, connect_arg_blame, mask(parsed))
    check_option_files(url, tls, options.get("connect_args") or {}, source)
    return DatabaseSettings(
        url,
        source,
        options,
        tls is not None and tls.encrypt,
        database_liveness(liveness, url, options),
        shown_url=mask(parsed),
    )
