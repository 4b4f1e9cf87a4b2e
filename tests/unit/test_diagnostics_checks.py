"""The debugger's check list agrees with the live validators: for generated
tokens (every claim valid, invalid or absent, odd headers, wrong keys), the
first failing check carries the reason ``verify_tenant_token`` /
``verify_custom_token`` raise, and a token they accept fails no check."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from saas.diagnostics.checks import (
    Secret,
    custom_token_checks,
    decode,
    first_failure,
    tenant_token_checks,
)
from saas.flows.jwt_strict import TokenRejected, verify_custom_token, verify_tenant_token

NOW = 1_800_000_000
KEY = "the-app-secret-0123456789abcdef"
STATE = "abcd1234.state-value"
ABSENT = object()


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def sign(header: dict, claims: dict, key: str) -> str:
    head = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    return head + "." + b64(hmac.new(key.encode(), head.encode(), hashlib.sha256).digest())


def choose(**options):
    """A claims dict: for each name, one of its options (ABSENT leaves it out)."""
    return st.fixed_dictionaries({name: st.sampled_from(values)
                                  for name, values in options.items()}).map(
        lambda d: {k: v for k, v in d.items() if v is not ABSENT})


def mostly(good: list, bad: list) -> list:
    """Options drawn uniformly, the good ones about six times in seven, so that
    whole tokens are often valid or fail one check only."""
    return good * (6 * max(1, len(bad)) // len(good)) + bad


HEADERS = st.sampled_from(mostly([{"alg": "HS256"}, {"alg": "HS256", "typ": "JWT"}], [
    {"alg": "HS256", "typ": "bk-request+jwt"}, {"alg": "none"}, {"alg": "HS512"},
    {"alg": "HS256", "jku": "https://x"}, {"alg": "HS256", "crit": ["exp"]},
    {"alg": "HS256", "typ": 5}, {"typ": "JWT"}]))
BAD_TIMES = [NOW + 300, NOW - 700, NOW + 90_000, str(NOW), NOW * 1000, 1.5, True, NOW - 100]
OBJECTS = mostly([ABSENT, None, {"a": 1}], [[1], "x", {"k": "v" * 17_000}])
TENANT_CLAIMS = choose(
    user_id=mostly(["u-1", 42], [ABSENT, "", "x" * 256, True, "a\x00b", None]),
    exp=mostly([ABSENT, NOW + 60], BAD_TIMES), iat=mostly([ABSENT, NOW, NOW + 20], BAD_TIMES),
    nbf=mostly([ABSENT, NOW - 10], [NOW + 300, "soon"]), custom=OBJECTS, profile=OBJECTS,
    skyprofile=mostly([ABSENT], [{"b": 2}]), state=mostly([ABSENT, STATE], ["another", 5]),
    app_id=mostly([ABSENT], ["abcd1234"]), jti=[ABSENT, "j-1"],
)
CUSTOM_CLAIMS = choose(
    sub=mostly(["u-1"], [ABSENT, "", 42, "x" * 37, "a\nb"]),
    exp=mostly([NOW + 600], [ABSENT, *BAD_TIMES, NOW + 3700]),
    iat=mostly([NOW, NOW - 100], [ABSENT, *BAD_TIMES]),
    nbf=mostly([ABSENT, NOW - 10], [NOW + 300]), custom=OBJECTS, skyprofile=OBJECTS,
    jti=mostly([ABSENT, "j-1"], [7, ""]),
)
KEYS = st.sampled_from(mostly([KEY], ["some-other-secret"]))


def live_reason(verify) -> str | None:
    try:
        verify()
    except TokenRejected as exc:
        return str(exc.reason)
    return None


def shown_reason(checks) -> str | None:
    failed = first_failure(checks)
    return failed.reason if failed else None


@settings(max_examples=400, deadline=None)
@given(header=HEADERS, claims=TENANT_CLAIMS, key=KEYS, require_bound=st.booleans())
def test_tenant_checks_agree_with_verify_tenant_token(header, claims, key, require_bound):
    token = sign(header, claims, key)
    live = live_reason(lambda: verify_tenant_token(
        token, secrets=[KEY], now=NOW, state=STATE, require_bound=require_bound))
    checks = tenant_token_checks(token, secrets=[Secret("current", KEY)], others=[], now=NOW,
                                 state=STATE, require_bound=require_bound)
    assert shown_reason(checks) == live, (header, claims, checks)


@settings(max_examples=400, deadline=None)
@given(header=HEADERS, claims=CUSTOM_CLAIMS, key=KEYS)
def test_custom_checks_agree_with_verify_custom_token(header, claims, key):
    token = sign(header, claims, key)
    live = live_reason(lambda: verify_custom_token(token, secrets=[KEY], now=NOW))
    checks = custom_token_checks(token, secrets=[Secret("current", KEY)], others=[], now=NOW)
    assert shown_reason(checks) == live, (header, claims, checks)


@given(raw=st.text(max_size=80))
def test_malformed_input_agrees_too(raw):
    live = live_reason(lambda: verify_tenant_token(raw, secrets=[KEY], now=NOW, state=STATE,
                                                   require_bound=False))
    checks = tenant_token_checks(raw, secrets=[Secret("current", KEY)], others=[], now=NOW,
                                 state=STATE, require_bound=False)
    assert shown_reason(checks) == live


def test_structure_problems_are_named():
    assert "three" in decode("a.b").problem
    assert "JSON" in decode(b64(b"{nope") + "." + b64(b"{}") + ".").problem
