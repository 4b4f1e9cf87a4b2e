"""Messages built from templates: ``<name>.txt`` and ``<name>.html`` in
``saas/templates/mail``, one ``EmailMessage`` with both parts."""

from __future__ import annotations

from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

_ENV = Environment(
    loader=PackageLoader("saas", "templates/mail"),
    autoescape=select_autoescape(enabled_extensions=("html",), default=False),
    undefined=StrictUndefined,  # a missing value is a bug, not a blank in a mail
    keep_trailing_newline=True,
)


def sender_address(settings: Mapping[str, Any]) -> str:
    """``saas.mail_from`` (``SAAS_MAIL_FROM``), else no-reply at the public host."""
    configured = settings.get("saas.mail_from")
    if configured:
        return configured
    host = urlsplit(settings["saas.public_base_url"]).hostname or "localhost"
    return formataddr(("Bridgekeeper", f"no-reply@{host}"))


def build_message(template: str, *, to: str, subject: str, sender: str,
                  values: Mapping[str, Any]) -> EmailMessage:
    """Render ``template`` (.txt and .html) into a multipart/alternative message."""
    context = {**values, "subject": subject}
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = to
    message["Date"] = formatdate(usegmt=True)
    domain = parseaddr(sender)[1].rpartition("@")[2] or None
    message["Message-ID"] = make_msgid(domain=domain)
    # Automatic mail about an account: no auto-replies back to us.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(_ENV.get_template(f"{template}.txt").render(context))
    message.add_alternative(_ENV.get_template(f"{template}.html").render(context),
                            subtype="html")
    return message
