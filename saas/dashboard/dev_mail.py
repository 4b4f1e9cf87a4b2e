"""Development only: the mail written to ``saas.mail_dir``, listed and shown.

Registered (``saas.routes``) only when the file transport is configured, so
``make run`` needs no SMTP server and a production deployment has no such page.
"""

from __future__ import annotations

import os
import re
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from typing import Any

from pyramid.httpexceptions import HTTPNotFound

NAME = re.compile(r"^[0-9A-Za-z_-]{1,80}\.eml$")
LINK = re.compile(r"https?://[^\s<>\"]+")
SHOWN = 200


def _read(directory: str, name: str) -> EmailMessage:
    with open(os.path.join(directory, name), "rb") as handle:
        return BytesParser(policy=default).parse(handle)


def _names(directory: str) -> list[str]:
    try:
        names = [n for n in os.listdir(directory) if NAME.match(n)]
    except FileNotFoundError:
        return []
    return sorted(names, reverse=True)[:SHOWN]  # names begin with the time: newest first


def mail_list(request) -> dict[str, Any]:
    directory = request.registry.settings["saas.mail_dir"]
    rows = []
    for name in _names(directory):
        message = _read(directory, name)
        rows.append({"name": name, "subject": message["Subject"], "to": message["To"],
                     "date": message["Date"]})
    return {"messages": rows, "directory": directory}


def mail_message(request) -> dict[str, Any]:
    directory = request.registry.settings["saas.mail_dir"]
    name = request.matchdict["name"]
    if not NAME.match(name) or not os.path.isfile(os.path.join(directory, name)):
        raise HTTPNotFound()
    message = _read(directory, name)
    text = message.get_body(("plain",))
    body = text.get_content() if text is not None else ""
    request.response.headers["Cache-Control"] = "no-store"
    return {"name": name, "subject": message["Subject"], "to": message["To"],
            "sender": message["From"], "date": message["Date"], "body": body,
            "links": LINK.findall(body)}
