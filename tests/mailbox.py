"""A real SMTP server in this process (aiosmtpd), and the messages it received.

Tests read mail the way a member does: from a server that spoke SMTP with the
service (or its worker), never from a mocked transport.
"""

from __future__ import annotations

import re
import socket
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from urllib.parse import urlsplit

from aiosmtpd.controller import Controller

from tests.waiting import wait_until

LINK = re.compile(r"https?://[^\s<>\"]+")


@dataclass(frozen=True)
class Received:
    sender: str
    recipients: tuple[str, ...]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        return self.message.get_body(("plain",)).get_content()

    @property
    def html(self) -> str:
        return self.message.get_body(("html",)).get_content()

    def links(self, fragment: str = "") -> list[str]:
        return [link for link in LINK.findall(self.text) if fragment in link]

    def link(self, fragment: str) -> str:
        found = self.links(fragment)
        assert len(found) == 1, f"expected one link with {fragment!r} in {self.text!r}"
        return found[0]


class _Handler:
    def __init__(self, box: Mailbox, refusals: list[str]) -> None:
        self.box = box
        self.refusals = refusals  # answers to give, in order, before accepting

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd calls it by this name
        self.box.attempts += 1
        if self.refusals:
            return self.refusals.pop(0)
        message = BytesParser(policy=default).parsebytes(envelope.content)
        self.box._add(Received(envelope.mail_from, tuple(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


class Mailbox:
    """Every message the server accepted, in order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[Received] = []
        self.attempts = 0  # messages offered, accepted or not

    def _add(self, received: Received) -> None:
        with self._lock:
            self._messages.append(received)

    def to(self, address: str) -> list[Received]:
        with self._lock:
            return [m for m in self._messages if address in m.recipients]

    def wait_for(self, address: str, count: int = 1) -> list[Received]:
        """The first ``count`` messages to ``address``, once they have arrived."""
        wait_until(lambda: len(self.to(address)) >= count,
                   f"{count} message(s) to {address}", interval=0.05)
        return self.to(address)[:count]

    def verification_path(self, address: str) -> str:
        """The path of the newest verification link mailed to ``address``."""
        self.wait_for(address)
        return urlsplit(self.last(address).link("/dashboard/verify/")).path

    def last(self, address: str) -> Received:
        messages = self.to(address)
        assert messages, f"no mail to {address}"
        return messages[-1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpServer:
    """aiosmtpd on 127.0.0.1 and a free port, in a thread of its own."""

    def __init__(self, refusals: list[str] | None = None) -> None:
        self.mailbox = Mailbox()
        self.port = free_port()
        self._controller = Controller(_Handler(self.mailbox, list(refusals or [])),
                                      hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> SmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()
