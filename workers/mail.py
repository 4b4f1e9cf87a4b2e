"""Delivering mail: unseal the message, hand it to the configured transport.

Sent by the web tier after commit (``saas.mail.outbox``). A temporary failure
(the server unreachable, a 4xx answer) is retried with exponential backoff
for about a day; a permanent one (5xx: the address refused) is logged and
dropped, since sending it again cannot help.
"""

from __future__ import annotations

import logging
import smtplib

from celery import shared_task

from saas.crypto import secret_box_from_settings
from saas.mail.outbox import unseal
from saas.mail.transports import transport_from_settings
from saas.tasks import BridgekeeperTask, TaskName

log = logging.getLogger(__name__)

RETRY_BASE = 30  # seconds before the first retry; doubled each time
RETRY_CAP = 3600
MAX_RETRIES = 30  # 30 s … 1 h: about a day in all


def backoff(retries: int) -> int:
    return min(RETRY_CAP, RETRY_BASE * 2 ** retries)


def is_permanent(exc: Exception) -> bool:
    """A 5xx answer: the server will refuse this message every time."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    code = getattr(exc, "smtp_code", None)
    return isinstance(code, int) and code >= 500


@shared_task(name=TaskName.SEND_MAIL.value, base=BridgekeeperTask, bind=True,
             max_retries=MAX_RETRIES)
def send(self: BridgekeeperTask, sealed: str) -> bool:
    """Deliver one sealed message; True when handed to the transport."""
    settings = self.app.saas_settings
    payload = unseal(secret_box_from_settings(settings), sealed)
    if not payload["deliver"]:
        return False
    try:
        transport_from_settings(settings).send(payload["sender"], payload["recipients"],
                                               payload["raw"])
    except (smtplib.SMTPException, OSError) as exc:
        # Never the recipients or the message in the log: only what failed.
        if is_permanent(exc) or self.request.is_eager:
            log.error("mail: not delivered (%s)", exc.__class__.__name__)
            raise
        log.warning("mail: delivery failed (%s), retry %d", exc.__class__.__name__,
                    self.request.retries + 1)
        raise self.retry(exc=exc, countdown=backoff(self.request.retries)) from exc
    return True
