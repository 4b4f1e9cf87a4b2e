"""Development mail: with ``saas.mail_dir`` and no ``SMTP_URL``, messages are
written as .eml files and listed at /dashboard/dev/mail; elsewhere no such page."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import pytest
import webtest
from sqlalchemy.orm import sessionmaker

from saas.config import configure
from tests.factories import make_member


@pytest.fixture
def dev_app(app_settings, db_connection, tmp_path):
    settings = {k: v for k, v in app_settings.items() if k != "saas.smtp_url"}
    settings["saas.mail_dir"] = str(tmp_path / "mail")
    app = configure(settings).make_wsgi_app()
    app.registry["saas.db_sessionmaker"] = sessionmaker(
        bind=db_connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    return webtest.TestApp(app, extra_environ={"HTTP_HOST": "bk.test",
                                               "REMOTE_ADDR": "192.0.2.77"}), tmp_path / "mail"


def test_mail_is_written_listed_and_shown(dev_app, db, passwords):
    app, folder = dev_app
    member = make_member(db, passwords, email="dev-reader@example.com")
    db.commit()
    assert "No mail yet." in app.get("/dashboard/dev/mail").text
    form = app.get("/dashboard/forgot-password").forms["forgot"]
    form["email"] = member.email
    form.submit(status=200)

    (name,) = os.listdir(folder)
    assert name.endswith(".eml")
    listing = app.get("/dashboard/dev/mail")
    assert "Reset your Bridgekeeper password" in listing.text
    shown = listing.click("Reset your Bridgekeeper password")
    assert member.email in shown.text
    (link,) = [a["href"] for a in shown.html.find(id="links").find_all("a")]
    assert "/dashboard/reset/" in link
    assert app.get(urlsplit(link).path).status_int == 200
    app.get("/dashboard/dev/mail/..%2Fsecrets.eml", status=404)
    app.get("/dashboard/dev/mail/nothing.eml", status=404)


def test_there_is_no_mail_page_when_mail_leaves_by_smtp(webapp):
    webapp.get("/dashboard/dev/mail", status=404)
