"""Named checks: fail-fast for the login path, all at once for the debugger.

There is one list of rules per kind of token; the debugger shows the rows of
the very rules the login path runs. What is left to show is that the two
runners agree: ``run_all`` never hides or skips the check that
``run_fail_fast`` refuses with, for any token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saas.diagnostics import debugger
from saas.errors import Reason
from saas.jwt import custom_tokens, tenant_tokens
from saas.jwt.rules import (
    FAIL,
    HIDDEN,
    PASS,
    SKIP,
    Row,
    Rule,
    TokenRejected,
    run_all,
    run_fail_fast,
)

NOW = 1_800_000_000
KEY = "the-app-secret-0123456789abcdef"
STATE = "abcd1234.state-value"
ABSENT = object()


def _refuse(reason: Reason, message: str):
    return lambda _token: (reason, message)


def _accept(_token):
    return None


def test_fail_fast_raises_the_first_refusal_in_order():
    rules = (Rule("one", _accept), Rule("two", _refuse(Reason.TOKEN_EXPIRED, "too late")),
             Rule("three", _refuse(Reason.CLAIMS_INVALID, "never reached")))
    with pytest.raises(TokenRejected) as info:
        run_fail_fast(rules, object())
    assert (info.value.reason, info.value.message) == (Reason.TOKEN_EXPIRED, "too late")
    assert run_fail_fast(rules[:1], object()) is None


def test_fail_fast_raises_the_callers_kind_of_refusal():
    class Special(TokenRejected):
        pass

    with pytest.raises(Special):
        run_fail_fast((Rule("x", _refuse(Reason.CLAIMS_INVALID, "no")),), object(), Special)


def test_run_all_shows_every_check_skips_hides_and_stops():
    rules = (
        Rule("quiet", _accept),  # no text for a pass: no row
        Rule("passes", _accept, "fine"),
        Rule("computed", _accept, lambda token: f"saw {token}"),
        Rule("fails", _refuse(Reason.TOKEN_EXPIRED, "too late"), "fine"),
        Rule("skipped", _refuse(Reason.CLAIMS_INVALID, "not judged"),
             skip=lambda _token: "cannot tell"),
        Rule("hidden", _refuse(Reason.CLAIMS_INVALID, "not judged"), skip=lambda _token: HIDDEN),
        Rule("last", _refuse(Reason.TOKEN_MALFORMED, "broken"), stops=True),
        Rule("after the end", _accept, "never shown"),
    )
    assert run_all(rules, 7) == [
        Row("passes", PASS, "fine"),
        Row("computed", PASS, "saw 7"),
        Row("fails", FAIL, "too late", "token_expired"),
        Row("skipped", SKIP, "cannot tell"),
        Row("last", FAIL, "broken", "token_malformed"),
    ]


def test_the_debugger_runs_the_login_paths_own_rules():
    assert debugger.TENANT_TOKEN_RULES is tenant_tokens.TENANT_TOKEN_RULES
    assert debugger.CUSTOM_TOKEN_RULES is custom_tokens.CUSTOM_TOKEN_RULES


# -- both runners agree on real tokens --------------------------------------------------


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
    """Good options about six times in seven, so tokens often fail one check only."""
    return good * (6 * max(1, len(bad)) // len(good)) + bad


HEADERS = st.sampled_from(mostly([{"alg": "HS256"}, {"alg": "HS256", "typ": "JWT"}], [
    {"alg": "HS256", "typ": "bk-request+jwt"}, {"alg": "none"}, {"alg": "HS256", "jku": "x"},
    {"alg": "HS256", "crit": ["exp"]}, {"alg": "HS256", "typ": 5}]))
BAD_TIMES = [NOW + 300, NOW - 700, NOW + 90_000, str(NOW), NOW * 1000, 1.5, True]
OBJECTS = mostly([ABSENT, None, {"a": 1}], [[1], {"k": "v" * 17_000}])
TENANT_CLAIMS = choose(
    user_id=mostly(["u-1", 42], [ABSENT, "", True]),
    exp=mostly([ABSENT, NOW + 60], BAD_TIMES), iat=mostly([ABSENT, NOW], BAD_TIMES),
    nbf=mostly([ABSENT, NOW - 10], [NOW + 300]), custom=OBJECTS, profile=OBJECTS,
    state=mostly([ABSENT, STATE], ["another", 5]), app_id=mostly([ABSENT], ["abcd1234"]),
    jti=[ABSENT, "j-1"],
)
CUSTOM_CLAIMS = choose(
    sub=mostly(["u-1"], [ABSENT, 42]), exp=mostly([NOW + 600], [ABSENT, *BAD_TIMES, NOW + 3700]),
    iat=mostly([NOW], [ABSENT, *BAD_TIMES]), custom=OBJECTS, jti=mostly([ABSENT, "j-1"], [7]),
)
KEYS = st.sampled_from(mostly([KEY], ["some-other-secret"]))


def fail_fast_reason(rules, token) -> str | None:
    try:
        run_fail_fast(rules, token)
    except TokenRejected as exc:
        return str(exc.reason)
    return None


def first_failed_row(rules, token) -> str | None:
    return next((row.reason for row in run_all(rules, token) if row.outcome == FAIL), None)


@settings(max_examples=200, deadline=None)
@given(header=HEADERS, claims=TENANT_CLAIMS, key=KEYS, require_bound=st.booleans())
def test_tenant_rows_fail_first_where_the_login_path_refuses(header, claims, key, require_bound):
    token = sign(header, claims, key)

    def under_check():
        return tenant_tokens.tenant_token(token, secrets=[KEY], now=NOW, state=STATE,
                                          require_bound=require_bound)

    rules = tenant_tokens.TENANT_TOKEN_RULES
    assert first_failed_row(rules, under_check()) == fail_fast_reason(rules, under_check())


@settings(max_examples=200, deadline=None)
@given(header=HEADERS, claims=CUSTOM_CLAIMS, key=KEYS)
def test_custom_rows_fail_first_where_the_login_path_refuses(header, claims, key):
    token = sign(header, claims, key)

    def under_check():
        return custom_tokens.custom_token(token, secrets=[KEY], now=NOW)

    rules = custom_tokens.CUSTOM_TOKEN_RULES
    assert first_failed_row(rules, under_check()) == fail_fast_reason(rules, under_check())


@given(raw=st.text(max_size=80))
def test_malformed_input_fails_first_where_the_login_path_refuses(raw):
    rules = tenant_tokens.TENANT_TOKEN_RULES

    def under_check():
        return tenant_tokens.tenant_token(raw, secrets=[KEY], now=NOW, state=STATE,
                                          require_bound=False)

    assert first_failed_row(rules, under_check()) == fail_fast_reason(rules, under_check())
