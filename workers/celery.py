"""The worker's Celery app, built from the same ini file as the web tier.

``celery -A workers worker`` (and ``beat``) read the ini named by ``SAAS_CONFIG``
(default ``development.ini``, relative to the current directory) through the
same :func:`saas.config.load_settings` as the web tier, so a missing secret
stops the worker with the same one-line message. The app itself, its task base
and its schedule come from the application (``saas.tasks``); this package adds
only the task modules and the entry point.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from saas.config import ConfigurationError, checked_settings
from saas.sync.copy_writer import stage_on_connect
from saas.tasks import BridgekeeperCelery, make_celery

CONFIG_ENV = "SAAS_CONFIG"
DEFAULT_CONFIG = "development.ini"


def settings_from_config(path: str | None = None) -> dict[str, Any]:
    """Load the ini's ``[app:main]`` settings with environment overrides, checked.

    Raises :class:`ConfigurationError` (one line) so the worker exits at start.
    """
    path = path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG
    if "://" not in path and not os.path.isfile(path.split("#", 1)[0]):
        raise ConfigurationError(
            f"bridgekeeper: configuration file not found: {path} (set {CONFIG_ENV})"
        )
    # A too-short master key fails here, not in a task.
    return checked_settings(path)


_app: BridgekeeperCelery | None = None
_app_lock = threading.Lock()


def get_app() -> BridgekeeperCelery:
    """The process's app, built from the ini on first use."""
    global _app
    with _app_lock:
        if _app is None:
            _app = make_celery(settings_from_config())
            _app.on_engine = stage_on_connect  # the sync's staging tables, once per connection
        return _app


def __getattr__(name: str) -> Any:
    # ``workers.celery.app`` is built on first access, not at import.
    if name == "app":
        return get_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
