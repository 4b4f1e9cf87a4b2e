"""Waking the delivery workers ("the kick") once staged events are committed.

The kick is only a latency shortcut: beat runs the delivery task every few
seconds too (``saas.tasks.WEBHOOK_PERIOD``), so a kick lost to a broker hiccup
delays delivery by that much, never loses it. It never runs before the commit, and goes by task name
(``saas.tasks``), so nothing here imports the workers:

* from a request, through ``saas.tasks.send_after_commit``, which defers the
  send to the request transaction's after-commit hook (and drops it on abort);
* from the sync, from the SQLAlchemy session's ``after_commit`` event, with the
  Celery app of the worker process the sync runs in.

In development (``saas.sync.embedded``, no worker) the web process's embedded
thread delivers: a request's kick wakes it after the commit instead.
"""

from __future__ import annotations

import logging

from celery import current_app

from saas.tasks import BridgekeeperCelery, TaskName, send, send_after_commit

log = logging.getLogger(__name__)

# Registry key of the embedded thread's wake-up event (saas.sync.embedded), if it runs.
EMBEDDED_WAKE = "saas.webhooks.embedded_wake"


def kick_after_commit(request) -> None:
    """Send the delivery task when the request's transaction commits."""
    wake = request.registry.get(EMBEDDED_WAKE)
    if wake is not None:
        request.tm.get().addAfterCommitHook(lambda committed: committed and wake.set())
        return
    send_after_commit(request, TaskName.DELIVER_WEBHOOKS)


def kick_now() -> None:
    """From a worker process, after its commit: send with the process's Celery app."""
    app = current_app._get_current_object()
    if not isinstance(app, BridgekeeperCelery) or app.conf.task_always_eager:
        return  # not in a worker (development's embedded sync): beat or nothing
    try:
        send(app, TaskName.DELIVER_WEBHOOKS)
    except Exception:
        log.warning("webhooks: could not queue the delivery kick", exc_info=True)
