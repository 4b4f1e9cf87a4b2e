"""What every dashboard page's markup owes the strict CSP (``saas.hardening``):
no inline style and no inline script, so the browser blocks nothing."""

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
    assert page.html.select("[style]") == [] and page.html.select("style") == []
    assert [s for s in page.html.select("script") if not s.get("src")] == []
    assert not [tag for tag in page.html.find_all(True)
                if any(attr.startswith("on") for attr in tag.attrs)]
