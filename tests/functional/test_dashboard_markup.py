"""What every dashboard page's markup owes the strict CSP (``saas.hardening``):
no inline style and no inline script, so the browser blocks nothing; and the
service's icon, linked from every page and at ``/favicon.ico``."""

from __future__ import annotations

import pytest

from saas.audit.models import Outcome
from tests.functional.dashboard_helpers import PAGES, build_world, make_event, sign_in

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
