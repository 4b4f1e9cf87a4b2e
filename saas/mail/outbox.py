"""Handing a message to the mail task once the request's transaction commits.

The message (it carries a single-use link) is sealed with the master key
before it reaches the broker, so a queue dump holds no usable link. A message
may be sealed with ``deliver=False``: the same work and the same kind of task
message, dropped by the worker — an answer that must not tell whether an
address is taken (an email change) costs the same either way.
"""

from __future__ import annotations

import base64
import json
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import getaddresses, parseaddr

from saas.crypto import SecretBox
from saas.tasks import TaskName, send_after_commit


def seal(box: SecretBox, message: EmailMessage, *, deliver: bool = True) -> str:
    recipients = [address for _, address in getaddresses(message.get_all("To", []))]
    payload = {
        "deliver": deliver,
        "sender": parseaddr(message["From"])[1],
        "recipients": recipients,
        # CRLF line ends, as SMTP wants them (smtplib sends bytes as given).
        "raw": base64.b64encode(message.as_bytes(policy=SMTP)).decode("ascii"),
    }
    return box.encrypt(json.dumps(payload))


def unseal(box: SecretBox, sealed: str) -> dict:
    payload = json.loads(box.decrypt(sealed))
    payload["raw"] = base64.b64decode(payload["raw"])
    return payload


def send_message(request, message: EmailMessage, *, deliver: bool = True) -> None:
    """Send ``message`` once the request commits (never on abort)."""
    send_after_commit(request, TaskName.SEND_MAIL, seal(request.secret_box, message,
                                                        deliver=deliver))
