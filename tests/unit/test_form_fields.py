"""``saas.request_body.form_fields``: a urlencoded body read as WebOb's
``request.POST`` reads it, for the token endpoint and the login APIs."""

from __future__ import annotations

import pytest
from webob import Request

from saas.request_body import form_fields

BODIES = [
    b"",
    b"grant_type=refresh_token&refresh_token=abc.def-ghi_jkl",
    b"a=1&a=2&b=",                      # a repeated name, a blank value
    b"a&b=&=c",                         # no '=', an empty name
    b"redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb%3Fx%3D1%26y%3D2",
    b"name=J%C3%BCrgen+M%C3%BCller&plus=%2B",  # UTF-8 escapes, '+' for a space
    "name=Jürgen".encode(),             # raw UTF-8
    b"a=1;b=2",                         # ';' is not a separator
    b"&&a=1&&",
    b"a=%zz&b=%4",                      # escapes that are not escapes
]


@pytest.mark.parametrize("body", BODIES)
def test_reads_a_form_as_webob_does(body):
    request = Request.blank("/", method="POST", body=body,
                            content_type="application/x-www-form-urlencoded")
    assert form_fields(body) == dict(request.POST.items())
