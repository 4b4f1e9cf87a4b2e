"""The redirect-URI matcher: exact match only, loopback ports per RFC 8252 —
table-driven open-redirect variants and Hypothesis properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saas.flows.redirect_uris import redirect_uri_allowed, restart_link, with_query

LISTED = ["https://app.example.com/callback", "myapp://auth/cb", "http://127.0.0.1/cb",
          "http://[::1]/cb"]


@pytest.mark.parametrize("candidate", [
    "https://APP.example.com/callback", "HTTPS://app.example.com/callback",
    "https://app.example.com/callback/", "https://app.example.com/callback?x=1",
    "https://app.example.com/callback#frag", "https://app.example.com/Callback",
    "https://app.example.com:443/callback", "https://app.example.com/callback/../callback",
    "https://app.example.com/%63allback", "https://app.example.com/callback%2f..",
    "https://app.example.com.evil.com/callback", "https://evil.com@app.example.com/callback",
    "https://app.example.com@evil.com/callback", "//app.example.com/callback",
    "https:\\\\app.example.com\\callback", "https://app.example.com\\@evil.com/callback",
    "https://app.example.com/callback\x00", " https://app.example.com/callback",
    "http://app.example.com/callback", "myapp://auth/cb/", "MYAPP://auth/cb",
    "http://127.0.0.1.evil.com/cb", "http://127.0.0.1@evil.com/cb",
    "http://127.0.0.1:8080@evil.com/cb", "http://127.0.0.1:0/cb", "http://127.0.0.1:65536/cb",
    "http://127.0.0.1:80x/cb", "http://127.0.0.1:/cb", "https://127.0.0.1:8080/cb",
    "http://localhost:8080/cb", "http://127.0.0.1:8080/cb/", "http://[::1]:8080/cb?x",
    "", None, "x" * 3000,
])
def test_variants_are_refused(candidate):
    assert not redirect_uri_allowed(candidate, LISTED)


@pytest.mark.parametrize("candidate", [
    "https://app.example.com/callback", "myapp://auth/cb", "http://127.0.0.1/cb",
    "http://127.0.0.1:53124/cb", "http://[::1]:9/cb", "http://127.0.0.1:65535/cb",
])
def test_exact_and_loopback_ports_are_allowed(candidate):
    assert redirect_uri_allowed(candidate, LISTED)


uris = st.from_regex(r"https://[a-z]{1,10}\.example\.com(/[a-z0-9_-]{0,10}){0,3}", fullmatch=True)


@settings(max_examples=300)
@given(uris, st.text(min_size=1, max_size=10))
def test_anything_added_to_a_listed_uri_is_refused(listed, suffix):
    assert redirect_uri_allowed(listed, [listed])
    assert not redirect_uri_allowed(listed + suffix, [listed])
    assert not redirect_uri_allowed(suffix + listed, [listed])


@settings(max_examples=300)
@given(uris, uris)
def test_only_the_identical_uri_matches(listed, candidate):
    assert redirect_uri_allowed(candidate, [listed]) == (candidate == listed)


@settings(max_examples=200)
@given(st.integers(1, 65535), st.from_regex(r"(/[a-z0-9]{1,8}){1,3}", fullmatch=True))
def test_loopback_matches_any_port_but_nothing_else(port, path):
    listed = "http://127.0.0.1" + path
    assert redirect_uri_allowed(f"http://127.0.0.1:{port}{path}", [listed])
    assert not redirect_uri_allowed(f"http://127.0.0.1:{port}{path}/x", [listed])
    assert not redirect_uri_allowed(f"https://127.0.0.1:{port}{path}", [listed])


def test_with_query_appends_with_the_right_separator():
    assert with_query("https://a.example/cb", {"code": "c", "state": None}) == (
        "https://a.example/cb?code=c")
    assert with_query("https://a.example/cb?x=1", {"code": "c d"}) == (
        "https://a.example/cb?x=1&code=c+d")
    assert with_query("myapp://cb", {"error": "e"}) == "myapp://cb?error=e"


@pytest.mark.parametrize(("restart_url", "uris", "link"), [
    ("https://game.example.com/start", LISTED, "https://game.example.com/start"),
    (None, LISTED, "https://app.example.com/"),
    (None, ["myapp://auth/cb", "http://127.0.0.1:8765/cb?x=1", "https://app.example.com/cb"],
     "http://127.0.0.1:8765/"),
    (None, ["myapp://auth/cb", "https:///no-host"], None),
    (None, [], None),
])
def test_the_restart_link_is_the_restart_url_else_the_first_web_origin(restart_url, uris, link):
    assert restart_link(restart_url, uris) == link
