"""Every setting is read here: ini values, environment overrides, types, fail fast.

Secrets and addresses come from the environment in production; the ini files
carry only non-secret defaults. A missing required setting stops the process
with one line naming what is missing (and which variable would provide it).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pyramid.config import Configurator
from pyramid.settings import asbool

from saas.client_ip import proxy_list
from saas.event_streams import default_shards
from saas.mail.smtp import smtp_url
from saas.request_class import bake_request_extensions


class ConfigurationError(RuntimeError):
    """A setting is missing or malformed; the message is one line for operators."""


@dataclass(frozen=True)
class Setting:
    name: str
    env: str | None = None
    coerce: Callable[[Any], Any] = str
    default: Any = None
    required: bool = False


def database_url(value: str) -> str:
    """Accept the common ``postgresql://`` spellings and pick the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if value.startswith(prefix):
            return "postgresql+psycopg://" + value[len(prefix):]
    return value


def positive_int(value: Any) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError("must be a positive integer")
    return number


def positive_float(value: Any) -> float:
    number = float(value)
    if not number > 0:
        raise ValueError("must be a positive number")
    return number


def linger_ms(value: Any) -> int:
    """0 … 1000: a linger longer than a second would break the sync's lag target."""
    number = int(value)
    if not 0 <= number <= 1000:
        raise ValueError("must be between 0 and 1000 (milliseconds)")
    return number


def base_url(value: str) -> str:
    value = value.strip().rstrip("/")
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value


def key_list(value: Any) -> list[str]:
    if isinstance(value, list | tuple):
        return [str(v) for v in value if v]
    return [part.strip() for part in str(value).replace(",", " ").split() if part.strip()]


SETTINGS: tuple[Setting, ...] = (
    Setting("sqlalchemy.url", "DATABASE_URL", database_url, required=True),
    # A read replica for the dashboard's and the API's lists and charts (saas/db.py);
    # empty: the primary serves them.
    Setting("sqlalchemy.read_url", "DATABASE_READ_URL", database_url, None),
    Setting("redis.url", "REDIS_URL", required=True),
    Setting("celery.broker_url", "CELERY_BROKER_URL", required=True),
    Setting("celery.always_eager", "CELERY_ALWAYS_EAGER", asbool, False),
    # One queue per deployment, so services sharing a broker never mix tasks.
    Setting("celery.default_queue", "CELERY_DEFAULT_QUEUE", str, "bridgekeeper"),
    Setting("saas.master_key", "SAAS_MASTER_KEY", required=True),
    Setting("saas.master_key_previous", "SAAS_MASTER_KEY_PREVIOUS", key_list, ()),
    Setting("saas.public_base_url", "SAAS_PUBLIC_BASE_URL", base_url, required=True),
    Setting("saas.redis_prefix", "SAAS_REDIS_PREFIX", str, "bk"),
    Setting("saas.secure_cookies", "SAAS_SECURE_COOKIES", asbool, True),
    Setting("saas.session_ttl", None, positive_int, 12 * 3600),
    # The dashboard's own host (saas/dashboard_host.py); empty: one host serves all.
    Setting("saas.dashboard_host", "SAAS_DASHBOARD_HOST", str, ""),
    # However busy, a dashboard session ends this long after sign-in.
    Setting("saas.session_max_age", None, positive_int, 7 * 24 * 3600),
    Setting("saas.backchannel.allow_private", None, asbool, False),
    Setting("saas.ratelimit.enabled", None, asbool, True),
    # Leading zero bits of the sign-in proof of work (saas/proof_of_work.py).
    Setting("saas.signin.challenge_bits", None, positive_int, 16),
    # Proxies whose X-Forwarded-For is believed (the same list gunicorn trusts).
    Setting("saas.trusted_proxies", "FORWARDED_ALLOW_IPS", proxy_list, ("127.0.0.1", "::1")),
    Setting("saas.sync.batch_size", None, positive_int, 2000),
    Setting("saas.sync.reclaim_idle_ms", None, positive_int, 30_000),
    Setting("saas.sync.embedded", None, asbool, False),
    # How long a short batch waits for more events before its commit (batch by
    # size or time, saas/sync/drain.py); 0: commit each read at once.
    Setting("saas.sync.linger_ms", None, linger_ms, 200),
    # Login event stream shards (saas/event_streams.py); unset: 16 on a Redis
    # Cluster, else 1 (the single stream of earlier releases).
    Setting("saas.sync.stream_shards", "SAAS_SYNC_STREAM_SHARDS", positive_int, None),
    # How many shards one drain run takes under its leases; unset: every
    # shard divided among the worker's slots (workers/sync.py).
    Setting("saas.sync.shards_per_run", None, positive_int, None),
    # Webhooks: exponential backoff from retry_base, at most retry_cap between
    # attempts, retried for retry_for seconds; an endpoint failing for
    # disable_after seconds (and disable_min_failures attempts) is switched off.
    Setting("saas.webhooks.retry_base", None, positive_float, 15.0),
    Setting("saas.webhooks.retry_cap", None, positive_float, 6 * 3600.0),
    Setting("saas.webhooks.retry_for", None, positive_float, 24 * 3600.0),
    Setting("saas.webhooks.timeout", None, positive_float, 5.0),
    Setting("saas.webhooks.disable_after", None, positive_float, 24 * 3600.0),
    Setting("saas.webhooks.disable_min_failures", None, positive_int, 10),
    Setting("saas.webhooks.retention_days", None, positive_int, 30),
    # Audit rows older than this go, a whole month partition at a time
    # (saas/audit/partitions.py).
    Setting("saas.audit.retention_days", None, positive_int, 400),
    # Mail (docs/accounts.md): SMTP in production; a folder of .eml files in
    # development; the sender defaults to no-reply@ the public host.
    Setting("saas.smtp_url", "SMTP_URL", smtp_url, None),
    Setting("saas.mail_dir", None, str, None),
    Setting("saas.mail_from", "SAAS_MAIL_FROM", str, None),
    Setting("saas.argon2.time_cost", None, positive_int, 2),
    Setting("saas.argon2.memory_cost", None, positive_int, 19 * 1024),
    Setting("saas.argon2.parallelism", None, positive_int, 1),
)

# The environment variables the settings read (saas.serve drops them from a
# web worker's environment once the app is built).
SETTING_ENVIRONMENT = frozenset(s.env for s in SETTINGS if s.env)


def load_settings(
    raw: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Merge ini values with environment overrides and coerce each to its type.

    Raises :class:`ConfigurationError` naming every missing or invalid setting.
    """
    environ = os.environ if environ is None else environ
    settings = dict(raw)
    missing: list[str] = []
    invalid: list[str] = []
    for setting in SETTINGS:
        value = settings.get(setting.name)
        if setting.env and environ.get(setting.env):
            value = environ[setting.env]
        if value is None or value == "":
            if setting.required:
                missing.append(setting.env or setting.name)
                continue
            value = setting.default
        else:
            try:
                value = setting.coerce(value)
            except (TypeError, ValueError) as exc:
                invalid.append(f"{setting.env or setting.name} ({exc})")
                continue
        settings[setting.name] = value
    if settings.get("saas.sync.stream_shards") is None and settings.get("redis.url"):
        settings["saas.sync.stream_shards"] = default_shards(settings["redis.url"])
    if missing or invalid:
        parts = []
        if missing:
            parts.append("missing required settings: " + ", ".join(missing))
        if invalid:
            parts.append("invalid settings: " + ", ".join(invalid))
        raise ConfigurationError("bridgekeeper: " + "; ".join(parts))
    return settings


def checked_settings(config_uri: str) -> dict[str, Any]:
    """The ini's ``[app:main]`` settings with environment overrides, checked as
    far as a process can before it serves: every required setting present and
    valid, and a master key that makes a key box. ConfigurationError otherwise
    (one line), so ``saas-web`` and the workers exit at start."""
    import plaster

    from saas.crypto import secret_box_from_settings  # saas.crypto imports this module

    settings = load_settings(plaster.get_settings(config_uri, "app:main"))
    secret_box_from_settings(settings)
    return settings


def configure(settings: Mapping[str, Any] | None = None) -> Configurator:
    """Build the Pyramid configuration: one ``include`` per concern."""
    settings = load_settings(settings or {})
    settings.setdefault("tm.manager_hook", "pyramid_tm.explicit_manager")
    settings.setdefault("tm.activate_hook", "saas.db.transaction_wanted")
    # pyramid_tm would look the member up outside the exception views.
    settings.setdefault("tm.annotate_user", False)
    settings.setdefault("retry.attempts", 3)
    settings.setdefault("retry.activate_hook", "saas.db.retry_attempts")
    settings.setdefault("jinja2.directories", "saas:templates")
    settings.setdefault("jinja2.autoescape", "true")

    config = Configurator(settings=settings)
    config.include("pyramid_retry")
    config.include("pyramid_tm")
    config.include("pyramid_jinja2")
    config.add_jinja2_renderer(".html")
    config.include(".logging")
    config.include(".request_id")
    config.include(".hardening")
    config.include(".request_text")
    config.include(".crypto")
    config.include(".db")
    config.include(".redis")
    config.include(".event_streams")
    config.include(".tasks")
    config.include(".mail")
    config.include(".dashboard_sessions")
    config.include(".security")
    config.include(".dashboard_host")
    config.include(".clock")
    config.include(".ratelimit")
    config.include(".tenants")
    config.include(".apps.cache")
    config.include(".flows.nonces")
    config.include(".users.pending")
    config.include(".tokens.login_sessions")
    config.include(".tokens.access")
    config.include(".sync.embedded")
    config.include(".routes")
    config.include(".sdk")
    config.include(".cors")
    config.add_static_view("static", "saas:static", cache_max_age=3600)
    config.scan(ignore=["saas.cli"])
    config.commit()
    bake_request_extensions(config)
    config.commit()
    return config
