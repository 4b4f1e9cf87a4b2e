"""Waking the delivery workers ("the kick") once staged events are committed.

The kick is only a latency shortcut: beat runs the delivery task every second
too, so a kick lost to a broker hiccup delays delivery by a second, never
loses it. It never runs before the commit:

* from a request, through ``BridgekeeperTask.apply_async``, which defers the
  send to the request transaction's after-commit hook (and drops it on abort);
* from the sync, from the SQLAlchemy session's ``after_commit`` event, with the
  Celery app of the worker process the sync runs in.

In development (``saas.sync.embedded``, no worker) the web process's embedded
thread delivers: a request's kick wakes it after the commit instead.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

DELIVER_TASK = "workers.webhooks.deliver"
# Registry key of the embedded thread's wake-up event (saas.sync.embedded), if it runs.
EMBEDDED_WAKE = "saas.webhooks.embedded_wake"


def _task(celery_app) -> Any:
    import workers.webhooks  # noqa: F401  (registers the task; workers import saas, not back)

    return celery_app.tasks[DELIVER_TASK]


def request_celery(registry) -> Any:
    """The web tier's Celery app (a producer only), built once per registry."""
    app = registry.get("saas.celery")
    if app is None:
        from workers.celery import make_celery

        app = registry["saas.celery"] = make_celery(registry.settings, set_as_current=False)
    return app


def kick_after_commit(request) -> None:
    """Send the delivery task when the request's transaction commits."""
    wake = request.registry.get(EMBEDDED_WAKE)
    if wake is not None:
        request.tm.get().addAfterCommitHook(lambda committed: committed and wake.set())
        return
    try:
        _task(request_celery(request.registry)).apply_async()
    except Exception:  # the broker is down: beat delivers a second later
        log.warning("webhooks: could not queue the delivery kick", exc_info=True)


def kick_now() -> None:
    """From a worker process, after its commit: send with the process's Celery app."""
    from celery import current_app

    from workers.celery import BridgekeeperCelery

    app = current_app._get_current_object()
    if not isinstance(app, BridgekeeperCelery) or app.conf.task_always_eager:
        return  # not in a worker (development's embedded sync): beat or nothing
    try:
        _task(app).apply_async()
    except Exception:
        log.warning("webhooks: could not queue the delivery kick", exc_info=True)
