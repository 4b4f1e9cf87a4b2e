"""Where a message goes: SMTP, a folder of ``.eml`` files, or nowhere.

Chosen by the settings: ``saas.smtp_url`` (``SMTP_URL``) wins; else
``saas.mail_dir`` (development writes ``var/mail/``); else none, which drops
each message with a warning (a deployment that has not configured mail).
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from saas.mail.smtp import SmtpAddress, parse_smtp_url

log = logging.getLogger(__name__)


class Transport(Protocol):
    def send(self, sender: str, recipients: Sequence[str], raw: bytes) -> None: ...


class SmtpTransport:
    """One connection per message, through ``smtplib`` (TLS verified)."""

    def __init__(self, address: SmtpAddress) -> None:
        self.address = address

    def _connect(self) -> smtplib.SMTP:
        a = self.address
        if a.ssl:
            return smtplib.SMTP_SSL(a.host, a.port, timeout=a.timeout,
                                    context=ssl.create_default_context())
        return smtplib.SMTP(a.host, a.port, timeout=a.timeout)

    def send(self, sender: str, recipients: Sequence[str], raw: bytes) -> None:
        a = self.address
        with self._connect() as smtp:
            if a.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if a.username:
                smtp.login(a.username, a.password or "")
            smtp.sendmail(sender, list(recipients), raw)


class FileTransport:
    """Development: each message as ``<time>-<id>.eml`` in a folder."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def send(self, sender: str, recipients: Sequence[str], raw: bytes) -> None:
        os.makedirs(self.directory, exist_ok=True)
        name = f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:12]}.eml"
        path = os.path.join(self.directory, name)
        # Written aside, then renamed: the mail page never lists half a message.
        with open(path + ".part", "wb") as handle:
            handle.write(raw)
        os.replace(path + ".part", path)


class NullTransport:
    def send(self, sender: str, recipients: Sequence[str], raw: bytes) -> None:
        log.warning("mail: not sent, no transport configured (set SMTP_URL)")


def transport_kind(settings: Mapping[str, Any]) -> str:
    """``smtp``, ``file`` or ``none``."""
    if settings.get("saas.smtp_url"):
        return "smtp"
    if settings.get("saas.mail_dir"):
        return "file"
    return "none"


def transport_from_settings(settings: Mapping[str, Any]) -> Transport:
    kind = transport_kind(settings)
    if kind == "smtp":
        return SmtpTransport(parse_smtp_url(settings["saas.smtp_url"]))
    if kind == "file":
        return FileTransport(settings["saas.mail_dir"])
    return NullTransport()
