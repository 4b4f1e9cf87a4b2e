"""The webhook delivery task: send what the outbox committed.

Beat runs it every ``saas.tasks.WEBHOOK_PERIOD`` seconds; the outbox also
sends it right after a commit that staged events (the "kick"). A run claims
and sends batches for up to ``TIME_BUDGET`` seconds. ``purge`` (hourly) forgets settled events.
"""

from __future__ import annotations

import logging

import psycopg
from celery import shared_task
from sqlalchemy.exc import InterfaceError, OperationalError

from saas.crypto import secret_box_from_settings
from saas.db import utcnow
from saas.tasks import BridgekeeperTask, TaskName
from saas.webhooks.delivery import Policy, deliver_due
from saas.webhooks.retention import purge_settled_events

log = logging.getLogger(__name__)
TIME_BUDGET = 10.0


@shared_task(name=TaskName.DELIVER_WEBHOOKS.value, base=BridgekeeperTask, bind=True,
             ignore_result=True)
def deliver(self: BridgekeeperTask) -> dict[str, int]:
    app = self.app
    settings = app.saas_settings
    try:
        counts = deliver_due(app.db_sessionmaker(), secret_box_from_settings(settings),
                             Policy.from_settings(settings), time_budget=TIME_BUDGET)
    except (OperationalError, InterfaceError, psycopg.OperationalError) as exc:
        log.warning("webhooks: database unavailable (%s); will retry", exc.__class__.__name__)
        return {"delivered": 0, "failed": 0}
    if counts["delivered"] or counts["failed"]:
        log.info("webhooks: sent", extra=counts)
    return counts


@shared_task(name=TaskName.PURGE_WEBHOOK_EVENTS.value, base=BridgekeeperTask, bind=True)
def purge(self: BridgekeeperTask) -> dict[str, int]:
    """Hourly (beat): drop settled events past ``saas.webhooks.retention_days``."""
    with self.db_session() as session:
        deleted = purge_settled_events(session, utcnow(),
                                       self.app.saas_settings["saas.webhooks.retention_days"])
    log.info("webhooks: purged %d settled events", deleted)
    return {"webhook_events_deleted": deleted}
