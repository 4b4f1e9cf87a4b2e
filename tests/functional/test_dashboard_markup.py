"""What every dashboard page's markup owes the strict CSP (``saas.hardening``):
no inline style and no inline script, so the browser blocks nothing; the
service's icon, linked from every page and at ``/favicon.ico``; and copy
buttons (``static/copy.js``) next to secrets, keys, links and the app's URLs."""

from __future__ import annotations

import pytest

from saas.audit.types import Outcome
from tests.factories import DEFAULT_PASSWORD
from tests.functional.dashboard_helpers import (
    PAGES,
    build_world,
    csrf_token,
    make_event,
    sign_in,
)

HTML_PAGES = [(name, path) for name, path, _ids in PAGES if not name.endswith(".csv")]


@pytest.fixture
def world(db, passwords, secret_box, webapp):
    world = build_world(db, passwords, secret_box)
    # A failure, so that the overview draws its reason meters.
    make_event(db, world.app, "login.failed", reason="tenant_denied", outcome=Outcome.FAILURE)
    db.commit()
    sign_in(webapp, world.owner.email)
    return world


@pytest.mark.parametrize(("name", "path"), HTML_PAGES, ids=[name for name, _ in HTML_PAGES])
def test_no_page_has_an_inline_style_or_script(webapp, world, name, path):
    page = webapp.get(path(world))
    assert page.content_type == "text/html"
    assert_links_the_icon(webapp, page)
    assert page.html.select("[style]") == [] and page.html.select("style") == []
    assert [s for s in page.html.select("script") if not s.get("src")] == []
    assert not [tag for tag in page.html.find_all(True)
                if any(attr.startswith("on") for attr in tag.attrs)]
    copy_targets(page)


def assert_links_the_icon(webapp, page) -> None:
    (icon,) = page.html.select('head link[rel="icon"]')
    served = webapp.get(icon["href"])
    assert served.content_type == icon["type"] == "image/svg+xml"
    assert served.body.startswith(b"<svg")


def test_favicon_ico_answers_for_every_page(webapp):
    icon = webapp.get("/favicon.ico")
    assert icon.content_type == "image/x-icon"
    assert icon.body[:4] == b"\x00\x00\x01\x00"  # an ICO directory
    assert "max-age=86400" in icon.headers["Cache-Control"]
    assert webapp.head("/favicon.ico").status_int == 200


@pytest.mark.parametrize("path", ["/dashboard/signin", "/dashboard/signup", "/nowhere"])
def test_pages_without_a_session_link_the_icon_too(webapp, path):
    page = webapp.get(path, headers={"Accept": "text/html"}, status="*")
    assert page.content_type == "text/html"
    assert_links_the_icon(webapp, page)


def copy_targets(page) -> list[str]:
    """The ids the page's copy buttons copy from; each button waits for the
    script (hidden, no form submit) and its element is there."""
    targets = []
    for button in page.html.select("button[data-copy]"):
        assert button.has_attr("hidden") and button["type"] == "button"
        assert page.html.find(id=button["data-copy"]) is not None, button["data-copy"]
        targets.append(button["data-copy"])
    return targets


def test_secrets_keys_links_and_the_apps_urls_have_copy_buttons(webapp, world):
    app_path = f"/dashboard/apps/{world.app.app_id}"
    overview = webapp.get(app_path)
    assert copy_targets(overview) == ["app-id", "url-issuer", "url-discovery", "url-authorize",
                                      "url-token", "url-callback", "url-jwks", "url-hosted"]
    assert overview.html.find(id="url-callback").text.endswith(
        f"/v1/apps/{world.app.app_id}/callback")
    token = csrf_token(webapp)
    revealed = webapp.post(app_path + "/secrets/reveal",
                           {"csrf_token": token, "password": DEFAULT_PASSWORD})
    assert copy_targets(revealed) == ["app-id", "secret-custom-auth", "secret-custom-token"]
    rotated = webapp.post(app_path + "/secrets/custom_token/rotate",
                          {"csrf_token": token, "password": DEFAULT_PASSWORD, "grace_hours": "1"})
    assert copy_targets(rotated) == ["app-id", "new-secret"]
    key = webapp.post("/dashboard/api-keys", {"csrf_token": token, "name": "Nightly",
                                             "password": DEFAULT_PASSWORD})
    assert copy_targets(key) == ["new-key"]
    invite = webapp.post("/dashboard/members/invite",
                         {"csrf_token": token, "email": "pal@example.com", "role": "viewer",
                          "password": DEFAULT_PASSWORD})
    assert copy_targets(invite) == ["invite-link"]
