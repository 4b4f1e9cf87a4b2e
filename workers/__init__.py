"""Celery workers: ``celery -A workers worker`` finds the app as ``workers.app``.

The app is built from the ini (``SAAS_CONFIG``) on first access, not at import,
so importing a task module (tests do) needs no configuration file. ``celery``
is an alias of ``app`` once the app is built; before that the name may refer
to the ``workers.celery`` module, so prefer ``app``.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name in ("app", "celery"):
        from workers.celery import get_app

        app = get_app()
        globals().update(app=app, celery=app)
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
