"""Fuzzing: 10,000 Hypothesis examples for each validator on the login path.

Each property compares the validator with an oracle written from the contract
(DESIGN §4–§7), not from the code: for every generated input the validator
must accept exactly what the oracle accepts, and refuse everything else with a
contract reason — never another exception. Inputs are built near the edges
(times around the leeway, lengths around the limits, look-alike URIs and
verifiers, malformed bodies) so that most examples exercise a decision.

Marked ``fuzz``; ``make test`` runs them (about 10 s per validator here).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from webob import Request

from saas.errors import ApiError, Reason
from saas.flows.pkce import valid_challenge, verifier_matches
from saas.flows.redirect_uris import redirect_uri_allowed
from saas.flows.request_body import read_params
from saas.jwt.custom_tokens import verify_custom_token
from saas.jwt.rules import TokenRejected
from saas.jwt.tenant_tokens import verify_tenant_token

pytestmark = pytest.mark.fuzz

FUZZ = settings(max_examples=10_000, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                       HealthCheck.data_too_large])

SECRET = "fuzz-current-secret-0123456789abcdefghijkl"
PREVIOUS = "fuzz-previous-secret-0123456789abcdefghij"
FOREIGN = "fuzz-foreign-secret-0123456789abcdefghijk"
NOW = 1_700_000_000
LEEWAY = 30
STATE = "abcd1234.state-value"
CONTRACT_REASONS = {reason.value for reason in Reason}


# -- tokens ---------------------------------------------------------------------


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def sign(header: dict, payload: dict, secret: str) -> str:
    signing_input = (b64(json.dumps(header).encode()) + "." +
                     b64(json.dumps(payload).encode()))
    mac = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(mac)


TIME_OFFSETS = st.integers(-700, 700) | st.integers(-90_000, 90_000)
TIMES = (TIME_OFFSETS.map(lambda d: NOW + d)
         | st.sampled_from([True, 1.5, "1700000000", None, -1, 10**12, NOW * 1000]))
TEXT = st.text(st.characters(codec="utf-8"), max_size=6) | st.sampled_from(
    ["u-1", "a\x00b", "line\nbreak", "\u2028", "x" * 36, "y" * 37, "z" * 255, "w" * 256, ""])
SMALL = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | TEXT,
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(TEXT, inner, max_size=2),
    max_leaves=3)
OBJECTS = st.none() | st.dictionaries(TEXT, SMALL, max_size=3) | SMALL
HEADERS = st.fixed_dictionaries(
    {"alg": st.sampled_from(["HS256"] * 6 + ["HS512", "none", "RS256", "hs256"])},
    optional={"typ": st.sampled_from(["JWT", "jwt", "application/jwt", "bk-request+jwt",
                                      "JOSE", 7]),
              "kid": TEXT, "jku": st.just("https://evil.example/jwks"),
              "crit": st.just(["exp"])})
SECRETS = st.sampled_from([SECRET, SECRET, SECRET, PREVIOUS, FOREIGN])


def _payloads(id_name: str, ids):
    return st.fixed_dictionaries({}, optional={
        id_name: ids, "exp": TIMES, "iat": TIMES, "nbf": TIMES, "custom": OBJECTS,
        "profile": OBJECTS, "skyprofile": OBJECTS,
        "state": st.sampled_from([STATE, STATE + "x", 5]), "jti": TEXT, "app_id": TEXT})


TENANT_IDS = TEXT | st.integers(-(10**300), 10**300) | st.sampled_from([True, 1.0, ["u"]])
SUB_IDS = TEXT | st.integers(0, 10**6)


def _mutate(token: str, data) -> str:
    """Sometimes damage the token: flip a character, cut it, or pad it."""
    how = data.draw(st.sampled_from(["keep"] * 6 + ["flip", "cut", "pad", "dots"]))
    if how == "keep" or not token:
        return token
    at = data.draw(st.integers(0, len(token) - 1))
    if how == "flip":
        return token[:at] + data.draw(st.sampled_from("A_-.=+/ \x00é")) + token[at + 1:]
    if how == "cut":
        return token[:at]
    if how == "pad":
        return token + "="
    return token.replace(".", "..", 1)


def _clean(value, max_chars: int) -> bool:
    return (isinstance(value, str) and 1 <= len(value) <= max_chars and not any(
        unicodedata.category(c) in ("Cc", "Cs") or c in "\u2028\u2029" for c in value))


def _is_time(value) -> bool:
    return type(value) is int and 0 <= value <= 10**11


def _storable(value) -> bool:
    """An object the contract accepts: small generated ones only fail on NUL."""
    if value is None:
        return True
    if not isinstance(value, dict):
        return False
    return not _holds_nul(value)


def _holds_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


def _header_ok(header: dict) -> bool:
    if header.get("alg") != "HS256" or {"jku", "jwk", "x5u", "x5c", "crit"} & set(header):
        return False
    typ = header.get("typ", "JWT")
    return isinstance(typ, str) and typ.lower().removeprefix("application/") == "jwt"


def _objects_ok(payload: dict) -> bool:
    if "profile" in payload and "skyprofile" in payload:
        return False
    return all(_storable(payload.get(name)) for name in ("custom", "profile", "skyprofile"))


def _window_ok(payload: dict) -> bool:
    exp, iat, nbf = payload.get("exp"), payload.get("iat"), payload.get("nbf")
    return ((exp is None or exp + LEEWAY > NOW) and (nbf is None or nbf <= NOW + LEEWAY)
            and (iat is None or iat <= NOW + LEEWAY))


def tenant_oracle(header: dict, payload: dict, secret: str) -> bool:
    """DESIGN §4.2 step 2, as written."""
    if not _header_ok(header) or secret == FOREIGN:
        return False
    if any(not _is_time(payload[n]) for n in ("exp", "iat", "nbf") if n in payload):
        return False
    if not _window_ok(payload):
        return False
    exp, iat = payload.get("exp"), payload.get("iat")
    if (iat is not None and NOW - iat > 600) or (exp is not None and exp - NOW > 86400):
        return False
    user_id = payload.get("user_id")
    if type(user_id) is int:
        user_id = str(user_id)
    if not _clean(user_id, 255) or not _objects_ok(payload):
        return False
    return "state" not in payload or payload["state"] == STATE


def custom_oracle(header: dict, payload: dict, secret: str) -> bool:
    """DESIGN §5.1, as written."""
    if not _header_ok(header) or secret == FOREIGN:
        return False
    if any(not _is_time(payload[n]) for n in ("exp", "iat", "nbf") if n in payload):
        return False
    if "iat" not in payload or "exp" not in payload or not _window_ok(payload):
        return False
    if not 0 < payload["exp"] - payload["iat"] <= 3600:
        return False
    if not _clean(payload.get("sub"), 36) or not _objects_ok(payload):
        return False
    return "jti" not in payload or _clean(payload["jti"], 255)


def _outcome(call) -> bool:
    try:
        call()
    except TokenRejected as exc:
        assert exc.reason.value in CONTRACT_REASONS
        assert SECRET not in exc.message and PREVIOUS not in exc.message
        return False
    return True


@FUZZ
@given(HEADERS, _payloads("user_id", TENANT_IDS), SECRETS, st.data())
def test_fuzz_tenant_token_validator(header, payload, secret, data):
    token = sign(header, payload, secret)
    mutated = _mutate(token, data)
    accepted = _outcome(lambda: verify_tenant_token(
        mutated, secrets=[SECRET, PREVIOUS], now=NOW, state=STATE, require_bound=False))
    if mutated == token:
        assert accepted == tenant_oracle(header, payload, secret), (header, payload)
    else:  # any change to a signed token, even a non-canonical spelling, is refused
        assert not accepted, mutated


@FUZZ
@given(HEADERS, _payloads("sub", SUB_IDS), SECRETS, st.data())
def test_fuzz_custom_token_validator(header, payload, secret, data):
    token = sign(header, payload, secret)
    mutated = _mutate(token, data)
    accepted = _outcome(lambda: verify_custom_token(mutated, secrets=[SECRET, PREVIOUS],
                                                    now=NOW))
    if mutated == token:
        assert accepted == custom_oracle(header, payload, secret), (header, payload)
    else:  # any change to a signed token, even a non-canonical spelling, is refused
        assert not accepted, mutated


# -- redirect URIs ------------------------------------------------------------------

LISTED = ["https://app.example.com/callback", "myapp://auth/cb", "http://127.0.0.1/cb",
          "http://[::1]/native?x=1"]
LOOPBACK = re.compile(r"^http://(127\.0\.0\.1|\[::1\]):([0-9]{1,5})([/?].*)?$", re.S)
PIECES = st.sampled_from(["https://", "http://", "HTTPS://", "//", "app.example.com", "APP",
                          "127.0.0.1", "[::1]", ":", "8080", "0", "65536", "/callback", "/cb",
                          "/", "?", "#", "@", "evil.com", "\\", "%2e", "..", "\x00", " ", "\n",
                          "myapp://auth/cb", "native?x=1", "x=1", "&"])


def redirect_oracle(candidate: str) -> bool:
    """Exact match; an http loopback URI also matches with any port 1–65535."""
    if candidate in LISTED:
        return True
    match = LOOPBACK.match(candidate)
    if not match or not 0 < int(match.group(2)) < 65536:
        return False
    return f"http://{match.group(1)}{match.group(3) or ''}" in LISTED


@FUZZ
@given(st.one_of(
    st.sampled_from(LISTED).flatmap(lambda u: st.tuples(st.just(u), st.lists(PIECES, max_size=3))
                                    .map(lambda t: t[0] + "".join(t[1]))),
    st.lists(PIECES, max_size=8).map("".join),
    st.integers(0, 70000).flatmap(lambda p: st.sampled_from(
        [f"http://127.0.0.1:{p}/cb", f"http://[::1]:{p}/native?x=1",
         f"http://127.0.0.1:{p:06d}/cb", f"http://127.0.0.1:{p}/cb/"])),
    st.text(max_size=40)))
def test_fuzz_redirect_uri_matcher(candidate):
    assert redirect_uri_allowed(candidate, LISTED) == redirect_oracle(candidate), candidate


# -- PKCE ---------------------------------------------------------------------------

VERIFIER_CHARS = "ABCXYZabcxyz0189-._~" + "+/= %é\x00"


def s256_oracle(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@FUZZ
@given(st.text(VERIFIER_CHARS, min_size=0, max_size=130)
       | st.integers(40, 131).map(lambda n: "a" * n), st.data())
def test_fuzz_pkce_verifier(verifier, data):
    how = data.draw(st.sampled_from(["right", "right", "other", "padded", "random"]))
    if how == "right":
        challenge = s256_oracle(verifier)
    elif how == "other":
        challenge = s256_oracle(verifier + "x")
    elif how == "padded":
        challenge = s256_oracle(verifier) + "="
    else:
        challenge = data.draw(st.text("ABCabc012-_=+/", max_size=130))
    valid = re.fullmatch(r"[A-Za-z0-9._~-]{43,128}", verifier) is not None
    assert verifier_matches(verifier, challenge) == (valid and challenge ==
                                                     s256_oracle(verifier))
    assert valid_challenge(challenge) == (
        re.fullmatch(r"[A-Za-z0-9_-]{43,128}", challenge) is not None)


# -- request bodies -------------------------------------------------------------------

CONTENT_TYPES = st.sampled_from([
    "application/json", "application/json; charset=utf-8", "application/x-www-form-urlencoded",
    "text/plain", "multipart/form-data", "", "application/jwt", "APPLICATION/JSON"])
JSON_TEXT = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                               max_size=3),
    max_leaves=8).map(json.dumps).map(str.encode)
BODIES = st.one_of(
    JSON_TEXT, st.binary(max_size=64),
    st.sampled_from([b"NaN", b'{"a": NaN}', b'{"a": Infinity}', b"[" * 5000, b"{}",
                     b'{"token": "x"', b"\xff\xfe{}", b"a=1&b=%ZZ&c", b"token=a%0d%0ab",
                     b"x" * (64 * 1024), b"x" * (64 * 1024 + 1), b'{"a":1}' + b" " * 65530]),
)


@FUZZ
@given(BODIES, CONTENT_TYPES, st.booleans())
def test_fuzz_request_body_parser(body, content_type, allow_form):
    # As the views get it: saas.hardening has already bounded chunked bodies
    # and set their length (tests/functional/test_hardening.py).
    request = Request.blank("/v1/apps/abcd1234/token", method="POST", body=body)
    request.content_type = content_type
    try:
        params = read_params(request, allow_form=allow_form)
    except ApiError as exc:
        assert (exc.status, exc.reason) in {(400, "claims_invalid"), (413, "payload_too_large")}
        if exc.status == 413:
            assert len(body) > 64 * 1024
        return
    assert isinstance(params, dict) and len(body) <= 64 * 1024
    mime = content_type.split(";")[0].strip().lower()
    if mime == "application/json":
        assert params == json.loads(body)
    else:
        assert allow_form and mime == "application/x-www-form-urlencoded"
