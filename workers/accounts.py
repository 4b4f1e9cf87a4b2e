"""Acting on account requests that answered before knowing the address.

The web tier seals a password-reset request or a sign-up and sends it here
after commit (``saas.accounts.deferred``): the request did the same work for
every address, and only this task learns whether the address has an account.
Each run is one transaction; the mail it builds is sealed and sent to
``workers.mail`` only after that commits. Nothing of the address or the
password hash is logged, and the tasks return nothing (a worker logs results).
"""

from __future__ import annotations

from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

from celery import shared_task

from saas.accounts.deferred import (
    RESET,
    SIGN_UP,
    carry_out_reset,
    carry_out_sign_up,
    unseal_request,
)
from saas.accounts.mails import Mailer
from saas.crypto import secret_box_from_settings
from saas.mail.outbox import seal
from saas.tasks import BridgekeeperTask, TaskName, send


def _run(task: BridgekeeperTask, kind: str, sealed: str,
         action: Callable[[Mailer, dict[str, Any]], None]) -> None:
    settings = task.app.saas_settings
    box = secret_box_from_settings(settings)
    payload = unseal_request(box, kind, sealed)
    outgoing: list[str] = []

    def post(message: EmailMessage, deliver: bool = True) -> None:
        outgoing.append(seal(box, message, deliver=deliver))

    with task.db_session() as db:
        action(Mailer(db, settings, post), payload)
    # Committed: the links the mail carries exist now.
    for message in outgoing:
        send(task.app, TaskName.SEND_MAIL, message)


@shared_task(name=TaskName.REQUEST_RESET.value, base=BridgekeeperTask, bind=True)
def request_reset(self: BridgekeeperTask, sealed: str) -> None:
    """Mail a reset link if the sealed address has an account; audit either way."""
    _run(self, RESET, sealed, carry_out_reset)


@shared_task(name=TaskName.SIGN_UP.value, base=BridgekeeperTask, bind=True)
def sign_up(self: BridgekeeperTask, sealed: str) -> None:
    """Create the sealed sign-up's tenant and owner, or tell a taken address's owner."""
    _run(self, SIGN_UP, sealed, carry_out_sign_up)
