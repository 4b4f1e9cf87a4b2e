"""Audit retention (beat, hourly): the coming months' partitions made, expired ones
dropped (``saas.audit.partitions``); on SQLite, expired rows deleted."""

from __future__ import annotations

import logging

from celery import shared_task

from saas.audit.partitions import maintain_audit
from saas.db import utcnow
from saas.tasks import BridgekeeperTask, TaskName

log = logging.getLogger(__name__)


@shared_task(name=TaskName.MAINTAIN_AUDIT.value, base=BridgekeeperTask, bind=True)
def maintain_audit_partitions(self: BridgekeeperTask) -> dict[str, object]:
    with self.db_session() as session:
        done = maintain_audit(session, utcnow(),
                              self.app.saas_settings["saas.audit.retention_days"])
    counts = done.as_dict()
    if done.created or done.dropped or done.rows_deleted:
        log.info("audit partitions: created %s, dropped %s, %d expired rows deleted",
                 done.created, done.dropped, done.rows_deleted)
    return counts
