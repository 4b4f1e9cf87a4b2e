"""The sign-in form's ``next``: only a local dashboard path, anything else (an
other site, a control character) goes to the dashboard, never a 500."""

from __future__ import annotations

import pytest

from tests.factories import DEFAULT_PASSWORD, make_member


def _sign_in(webapp, email: str, next_value: str):
    webapp.reset()
    csrf = webapp.get("/dashboard/signin").forms[0]["csrf_token"].value
    return webapp.post("/dashboard/signin", {"csrf_token": csrf, "email": email,
                                             "password": DEFAULT_PASSWORD, "next": next_value},
                       status="*")


@pytest.mark.parametrize("next_value", [
    "/dashboard/apps\r\nSet-Cookie: evil=1",
    "/dashboard/apps\nX-Injected: 1",
    "/dashboard/apps\r",
    "/dashboard/\x00apps",
    "/dashboard/\tapps",
    "/dashboard/\x7fapps",
    "/dashboard/\x85apps",  # NEL, a line break to some parsers
    "/dashboard/\u2028apps",
])
def test_a_control_character_in_next_goes_to_the_dashboard(webapp, db, passwords, next_value):
    member = make_member(db, passwords)
    db.commit()
    response = _sign_in(webapp, member.email, next_value)
    assert response.status_int == 303
    assert response.location == "http://bk.test/dashboard/apps"
    assert "evil" not in str(response.headers) and "Injected" not in str(response.headers)


def test_a_plain_local_next_is_followed(webapp, db, passwords):
    member = make_member(db, passwords)
    db.commit()
    response = _sign_in(webapp, member.email, "/dashboard/api-keys")
    assert response.location == "http://bk.test/dashboard/api-keys"
