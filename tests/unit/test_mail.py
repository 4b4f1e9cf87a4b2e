"""Mail settings and messages: SMTP URLs, the sender, sealing for the broker."""

from __future__ import annotations

import pytest

from saas.config import ConfigurationError, load_settings
from saas.crypto import SecretBox
from saas.mail.messages import build_message, sender_address
from saas.mail.outbox import seal, unseal
from saas.mail.smtp import parse_smtp_url
from saas.mail.transports import transport_kind
from tests.conftest import MASTER_KEY

BASE = {"sqlalchemy.url": "sqlite://", "redis.url": "memory://", "celery.broker_url": "memory://",
        "saas.master_key": MASTER_KEY, "saas.public_base_url": "https://auth.example.com"}


def test_smtp_urls():
    plain = parse_smtp_url("smtp://mailer:p%40ss@smtp.example.com:587?starttls=1")
    assert (plain.host, plain.port, plain.starttls, plain.ssl) == (
        "smtp.example.com", 587, True, False)
    assert (plain.username, plain.password) == ("mailer", "p@ss")
    assert "p@ss" not in repr(plain)
    tls = parse_smtp_url("smtps://smtp.example.com")
    assert (tls.port, tls.ssl, tls.username) == (465, True, None)
    assert parse_smtp_url("smtp://localhost").port == 25


@pytest.mark.parametrize(("url", "words"), [
    ("http://smtp.example.com", "smtp://"),
    ("smtp://", "no host"),
    ("smtps://h?starttls=1", "TLS already"),
    ("smtp://h?tls=1", "unknown parameters"),
    ("smtp://h:99999", "invalid port"),
])
def test_bad_smtp_urls_are_named_without_their_password(url, words):
    with pytest.raises(ConfigurationError) as caught:
        load_settings({**BASE, "saas.smtp_url": url}, environ={})
    assert words in str(caught.value) and "SMTP_URL" in str(caught.value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings(BASE, environ={"SMTP_URL": "ftp://user:hunter22@h"})
    assert "hunter22" not in str(caught.value)


def test_the_transport_follows_the_settings():
    assert transport_kind(load_settings(BASE, environ={})) == "none"
    files = load_settings({**BASE, "saas.mail_dir": "var/mail"}, environ={})
    assert transport_kind(files) == "file"
    both = load_settings({**BASE, "saas.mail_dir": "var/mail"}, environ={"SMTP_URL": "smtp://h"})
    assert transport_kind(both) == "smtp"


def test_the_sender_defaults_to_the_public_host():
    settings = load_settings(BASE, environ={})
    assert sender_address(settings) == "Bridgekeeper <no-reply@auth.example.com>"
    assert sender_address({**settings, "saas.mail_from": "Ops <ops@example.com>"}) == \
        "Ops <ops@example.com>"


def test_a_sealed_message_hides_its_link_and_comes_back_whole():
    message = build_message("verify_email", to="a@example.com", subject="Confirm",
                            sender="Bridgekeeper <no-reply@example.com>",
                            values={"email": "a@example.com", "tenant_name": "<Acme>",
                                    "hours": 24, "url": "https://x.example/verify/SECRETTOKEN"})
    assert "&lt;Acme&gt;" in message.get_body(("html",)).get_content()  # escaped in HTML
    assert "(<Acme>)" in message.get_body(("plain",)).get_content()  # as is in text
    box = SecretBox(MASTER_KEY)
    sealed = seal(box, message, deliver=False)
    assert "SECRETTOKEN" not in sealed and "a@example.com" not in sealed
    payload = unseal(box, sealed)
    assert payload["deliver"] is False
    assert payload["recipients"] == ["a@example.com"]
    assert payload["sender"] == "no-reply@example.com"
    assert b"\r\n" in payload["raw"] and b"SECRETTOKEN" in payload["raw"]
