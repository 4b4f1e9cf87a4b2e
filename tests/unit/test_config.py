"""Settings: environment overrides, types, one-line failures naming what is missing."""

from __future__ import annotations

import pytest

from saas.config import ConfigurationError, database_url, load_settings

COMPLETE = {
    "sqlalchemy.url": "sqlite:///x.sqlite",
    "redis.url": "memory://",
    "celery.broker_url": "memory://",
    "saas.master_key": "k" * 40,
    "saas.public_base_url": "https://auth.example.com/",
}


def test_environment_overrides_the_ini():
    settings = load_settings(
        COMPLETE,
        environ={"DATABASE_URL": "postgresql://db.internal/bk", "REDIS_URL": "redis://r:6379/1"},
    )
    assert settings["sqlalchemy.url"] == "postgresql+psycopg://db.internal/bk"
    assert settings["redis.url"] == "redis://r:6379/1"
    assert settings["saas.public_base_url"] == "https://auth.example.com"


def test_types_and_defaults():
    settings = load_settings(dict(COMPLETE, **{"saas.secure_cookies": "false"}), environ={})
    assert settings["saas.secure_cookies"] is False
    assert settings["saas.backchannel.allow_private"] is False
    assert settings["saas.session_ttl"] == 12 * 3600
    assert settings["saas.master_key_previous"] == ()


def test_missing_settings_are_named_in_one_line():
    with pytest.raises(ConfigurationError) as info:
        load_settings({"sqlalchemy.url": "sqlite://"}, environ={})
    message = str(info.value)
    assert "\n" not in message
    for name in ("REDIS_URL", "CELERY_BROKER_URL", "SAAS_MASTER_KEY", "SAAS_PUBLIC_BASE_URL"):
        assert name in message
    assert "DATABASE_URL" not in message


def test_invalid_values_are_refused():
    with pytest.raises(ConfigurationError, match="SAAS_PUBLIC_BASE_URL"):
        load_settings(dict(COMPLETE), environ={"SAAS_PUBLIC_BASE_URL": "auth.example.com"})


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///var/x.sqlite", "sqlite:///var/x.sqlite"),
    ],
)
def test_database_url_picks_psycopg3(given, expected):
    assert database_url(given) == expected
