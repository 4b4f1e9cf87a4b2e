"""Strict HS256 handling of tenant tokens, custom tokens and request tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saas.errors import Reason
from saas.jwt.claims import check_object_limits
from saas.jwt.custom_tokens import verify_custom_token
from saas.jwt.hs256 import REQUEST_TOKEN_TYP, sign_request_token, signature_digest
from saas.jwt.rules import TokenRejected
from saas.jwt.tenant_tokens import verify_tenant_token

SECRET = "current-custom-auth-secret-0123456789abcdef"
PREVIOUS = "previous-custom-auth-secret-0123456789abcdef"
OTHER = "some-other-secret-entirely-0123456789abcdef"
NOW = 1_700_000_000
STATE = "nonce-abc123"


def b64(raw: bytes | str) -> str:
    raw = raw.encode() if isinstance(raw, str) else raw
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64json(value) -> str:
    return b64(json.dumps(value, separators=(",", ":")))


def hand_sign(header: str, payload: str, secret: str = SECRET) -> str:
    """Sign already-encoded header and payload segments."""
    signing_input = f"{header}.{payload}".encode()
    return f"{header}.{payload}." + b64(hmac.new(secret.encode(), signing_input, "sha256").digest())


def hand_token(payload_json: str, header_json: str = '{"alg":"HS256","typ":"JWT"}', **kw) -> str:
    return hand_sign(b64(header_json), b64(payload_json), **kw)


def make(payload: dict, secret: str = SECRET, headers: dict | None = None, alg="HS256") -> str:
    return jwt.encode(payload, secret, algorithm=alg, headers=headers)


def tenant_payload(**claims) -> dict:
    return {"user_id": "u-1", "iat": NOW - 5, "exp": NOW + 120, **claims}


def custom_payload(**claims) -> dict:
    return {"sub": "user-1", "iat": NOW - 5, "exp": NOW + 600, **claims}


def verify(token, *, state=STATE, require_bound=False, secrets=(SECRET, PREVIOUS), now=NOW):
    return verify_tenant_token(
        token, secrets=list(secrets), now=now, state=state, require_bound=require_bound
    )


def verify_custom(token, *, secrets=(SECRET, PREVIOUS), now=NOW):
    return verify_custom_token(token, secrets=list(secrets), now=now)


def reason_of(call, *args, **kwargs) -> Reason:
    with pytest.raises(TokenRejected) as info:
        call(*args, **kwargs)
    assert SECRET not in str(info.value) and SECRET not in info.value.message
    return info.value.reason


def flip_low_bits(token: str) -> str:
    """Rewrite the signature's last char with its unused low bits set."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    head, last = token[:-1], token[-1]
    return head + alphabet[alphabet.index(last) | 0b11]  # 32 bytes -> 43 chars, 2 spare bits


def nested(depth: int):
    value: dict = {}
    for _ in range(depth - 1):
        value = {"k": value}
    return value


# -- tenant tokens: accepted ---------------------------------------------------------


def test_a_valid_tenant_token_yields_its_claims():
    token = make(tenant_payload(custom={"plan": "pro"}, profile={"name": "Ann"}, state=STATE))
    claims = verify(token)
    assert claims.user_id == "u-1"
    assert claims.custom == {"plan": "pro"} and claims.profile == {"name": "Ann"}
    assert (claims.exp, claims.iat) == (NOW + 120, NOW - 5)
    assert claims.replay_ttl == 120 + 30
    assert claims.used_previous_secret is False
    signature = base64.urlsafe_b64decode(token.rsplit(".", 1)[1] + "=")
    assert claims.signature_digest == hashlib.sha256(signature).hexdigest()
    assert claims.signature_digest == signature_digest(token)


def test_minimal_token_without_times_is_remembered_for_a_day():
    claims = verify(make({"user_id": "u-1"}))
    assert (claims.exp, claims.iat, claims.custom, claims.profile) == (None, None, None, None)
    assert claims.replay_ttl == 86400


def test_replay_ttl_is_at_least_one_second_inside_the_leeway():
    assert verify(make(tenant_payload(exp=NOW - 29))).replay_ttl == 1


def test_previous_secret_is_accepted_and_flagged():
    claims = verify(make(tenant_payload(), secret=PREVIOUS))
    assert claims.used_previous_secret is True


def test_kid_is_ignored_and_typ_jwt_is_fine_in_any_case():
    for typ in ("JWT", "jwt", "application/jwt"):
        assert verify(make(tenant_payload(), headers={"kid": PREVIOUS, "typ": typ})).user_id


def test_missing_typ_is_fine():
    token = hand_token(json.dumps(tenant_payload()), header_json='{"alg":"HS256"}')
    assert verify(token).user_id == "u-1"


def test_skyprofile_is_an_alias_of_profile():
    assert verify(make(tenant_payload(skyprofile={"a": 1}))).profile == {"a": 1}


def test_null_custom_and_profile_count_as_absent():
    claims = verify(make(tenant_payload(custom=None, profile=None)))
    assert (claims.custom, claims.profile) == (None, None)


# -- tenant tokens: structure --------------------------------------------------------


@pytest.mark.parametrize("token", ["", "   ", "\n", None])
def test_empty_token_is_missing(token):
    assert reason_of(verify, token) == Reason.TOKEN_MISSING


def test_token_over_6_kib_is_too_large():
    token = make(tenant_payload(custom={"pad": "x" * 5000}))
    assert len(token) > 6144
    assert reason_of(verify, token) == Reason.PAYLOAD_TOO_LARGE


GOOD_HEADER = b64json({"alg": "HS256", "typ": "JWT"})
GOOD_PAYLOAD = b64json(tenant_payload())


@pytest.mark.parametrize(
    "token",
    [
        "abc",
        "a.b",
        f"{GOOD_HEADER}.{GOOD_PAYLOAD}.sig.extra",
        f"{GOOD_HEADER}={GOOD_PAYLOAD}.abc",
        hand_sign(GOOD_HEADER + "=", GOOD_PAYLOAD),
        hand_sign(GOOD_HEADER, GOOD_PAYLOAD.replace("e", "+")),
        hand_sign(b64("not json"), GOOD_PAYLOAD),
        hand_sign(b64('["alg","HS256"]'), GOOD_PAYLOAD),
        hand_sign(GOOD_HEADER, b64('"a string"')),
        hand_sign(GOOD_HEADER, b64(b"\xff\xfe{}")),
        hand_sign(GOOD_HEADER, b64('\ufeff{"user_id":"u"}')),
        hand_sign(GOOD_HEADER, "A"),
        hand_token('{"user_id":"u","exp":NaN}'),
        hand_token('{"user_id":"u","exp":Infinity}'),
        hand_token('{"user_id":"u","custom":{"x":1e400}}'),
        hand_token('{"user_id":"u","exp":1' + "0" * 4400 + "}"),  # over int's digit limit
        hand_token('{"user_id":"u","user_id":"admin"}'),
        hand_token('{"user_id":"u","custom":{"a":1,"a":2}}'),
        hand_token('{"user_id":"u"}', header_json='{"alg":"HS256","alg":"HS256"}'),
        hand_token('{"user_id":"u","x":' + "[" * 40 + "]" * 40 + "}"),
    ],
)
def test_malformed_tokens(token):
    assert reason_of(verify, token) == Reason.TOKEN_MALFORMED


def test_deep_nesting_is_malformed_not_a_recursion_error():
    # 10,000 levels cannot fit in a token (the size limit answers first) ...
    huge = hand_token("[" * 10_000 + "]" * 10_000)
    assert reason_of(verify, huge) == Reason.PAYLOAD_TOO_LARGE
    assert reason_of(verify_custom, huge) == Reason.CLAIMS_INVALID
    # ... so go as deep as each size limit allows, far past the interpreter's recursion limit.
    deep_payload = hand_token('{"user_id":"u","x":' + "[" * 4_400)
    assert len(deep_payload) <= 6144
    assert reason_of(verify, deep_payload) == Reason.TOKEN_MALFORMED
    deep_header = b64('{"alg":"HS256","a":' + "[" * 5_000)
    assert len(deep_header) < 7_000
    assert reason_of(verify_custom, f"{deep_header}.{GOOD_PAYLOAD}.x") == Reason.TOKEN_MALFORMED


def test_brackets_inside_strings_do_not_count_as_nesting():
    claims = verify(make(tenant_payload(custom={"s": "[[[[" * 20 + '\\"{{' * 20})))
    assert claims.custom["s"].startswith("[[[[")


def test_non_canonical_base64_signature_is_malformed():
    token = make(tenant_payload())
    twin = flip_low_bits(token)
    assert twin != token
    assert base64.urlsafe_b64decode(twin.rsplit(".", 1)[1] + "=") == base64.urlsafe_b64decode(
        token.rsplit(".", 1)[1] + "="
    )
    assert reason_of(verify, twin) == Reason.TOKEN_MALFORMED
    assert signature_digest(twin) == signature_digest(token)  # digest of bytes, not text


# -- tenant tokens: header -----------------------------------------------------------


def test_alg_none_is_refused():
    token = "eyJhbGciOiJub25lIn0." + b64json(tenant_payload()) + "."
    assert reason_of(verify, token) == Reason.TOKEN_ALG_NOT_ALLOWED


def test_hs512_is_refused():
    assert reason_of(verify, make(tenant_payload(), alg="HS512")) == Reason.TOKEN_ALG_NOT_ALLOWED


def test_rs256_header_with_an_hmac_signature_is_refused():
    token = hand_token(json.dumps(tenant_payload()), header_json='{"alg":"RS256","typ":"JWT"}')
    assert reason_of(verify, token) == Reason.TOKEN_ALG_NOT_ALLOWED


@pytest.mark.parametrize(
    "header", ['{"typ":"JWT"}', '{"alg":"ES256"}', '{"alg":"hs256"}', '{"alg":256}', '{"alg":null}']
)
def test_other_or_missing_algs_are_refused(header):
    token = hand_token(json.dumps(tenant_payload()), header_json=header)
    assert reason_of(verify, token) == Reason.TOKEN_ALG_NOT_ALLOWED


@pytest.mark.parametrize("name", ["jku", "jwk", "x5u", "x5c"])
def test_key_carrying_headers_are_refused(name):
    token = make(tenant_payload(), headers={name: "https://evil.example/keys"})
    assert reason_of(verify, token) == Reason.TOKEN_ALG_NOT_ALLOWED


def test_crit_header_is_malformed():
    token = make(tenant_payload(), headers={"crit": ["exp"]})
    assert reason_of(verify, token) == Reason.TOKEN_MALFORMED


@pytest.mark.parametrize("typ", ["at+jwt", "JWS", 1, None])
def test_other_typ_is_malformed(typ):
    token = hand_token(json.dumps(tenant_payload()), json.dumps({"alg": "HS256", "typ": typ}))
    assert reason_of(verify, token) == Reason.TOKEN_MALFORMED


def test_our_own_request_token_sent_back_is_claims_invalid():
    token = sign_request_token(SECRET, app_id="abcd1234", now=NOW, jti="j-1")
    assert reason_of(verify, token) == Reason.CLAIMS_INVALID
    with_typ = make(tenant_payload(), headers={"typ": REQUEST_TOKEN_TYP.upper()})
    assert reason_of(verify, with_typ) == Reason.CLAIMS_INVALID
    shaped_like_it = make({"app_id": "abcd1234", "jti": "j-1", "iat": NOW, "exp": NOW + 300})
    assert reason_of(verify, shaped_like_it) == Reason.CLAIMS_INVALID


# -- tenant tokens: signature --------------------------------------------------------


def test_wrong_secret_is_a_bad_signature():
    assert reason_of(verify, make(tenant_payload(), secret=OTHER)) == Reason.TOKEN_BAD_SIGNATURE


def test_no_secrets_or_an_empty_secret_never_verify():
    token = make(tenant_payload())
    assert reason_of(verify, token, secrets=()) == Reason.TOKEN_BAD_SIGNATURE
    assert reason_of(verify, hand_token('{"user_id":"u"}', secret=""), secrets=("",)) == (
        Reason.TOKEN_BAD_SIGNATURE
    )


def test_truncated_or_empty_signature_is_bad():
    header, payload, _ = make(tenant_payload()).split(".")
    assert reason_of(verify, f"{header}.{payload}.") == Reason.TOKEN_BAD_SIGNATURE
    assert reason_of(verify, f"{header}.{payload}.{b64(b'x' * 16)}") == Reason.TOKEN_BAD_SIGNATURE


def test_a_tampered_payload_is_a_bad_signature():
    header, _, signature = make(tenant_payload()).split(".")
    forged = b64json(tenant_payload(user_id="admin"))
    assert reason_of(verify, f"{header}.{forged}.{signature}") == Reason.TOKEN_BAD_SIGNATURE


# -- tenant tokens: claim types and times -------------------------------------------------


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": str(NOW + 60)},
        {"exp": float(NOW + 60)},
        {"iat": True},
        {"exp": (NOW + 60) * 1000},
        {"nbf": -1},
        {"exp": None},
        {"iat": [NOW]},
    ],
)
def test_time_claims_must_be_integer_seconds(claims):
    assert reason_of(verify, make(tenant_payload(**claims))) == Reason.CLAIMS_INVALID


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"exp": NOW - 30}, Reason.TOKEN_EXPIRED),
        ({"nbf": NOW + 31}, Reason.TOKEN_NOT_YET_VALID),
        ({"iat": NOW + 31}, Reason.TOKEN_NOT_YET_VALID),
        ({"iat": NOW - 11 * 60}, Reason.TOKEN_TOO_OLD),
        ({"exp": NOW + 25 * 3600}, Reason.TOKEN_LIFETIME_TOO_LONG),
    ],
)
def test_time_windows(claims, reason):
    assert reason_of(verify, make(tenant_payload(**claims))) == reason


def test_times_inside_the_leeway_pass():
    claims = verify(make(tenant_payload(exp=NOW - 29, nbf=NOW + 30, iat=NOW + 30)))
    assert claims.iat == NOW + 30
    assert verify(make(tenant_payload(iat=NOW - 600, exp=NOW + 86400))).iat == NOW - 600


# -- tenant tokens: user_id ------------------------------------------------------------


def test_integer_user_id_becomes_its_decimal_string():
    assert verify(make(tenant_payload(user_id=1234))).user_id == "1234"
    assert verify(make(tenant_payload(user_id=-7))).user_id == "-7"


def test_user_id_is_kept_as_is_up_to_255_characters():
    for user_id in ("x" * 255, "Ünïcødé 🔑", " spaced "):
        assert verify(make(tenant_payload(user_id=user_id))).user_id == user_id


@pytest.mark.parametrize("missing", [{}, {"user_id": None}])
def test_missing_user_id(missing):
    payload = {k: v for k, v in tenant_payload(**missing).items() if k != "user_id" or missing}
    assert reason_of(verify, make(payload)) == Reason.USER_ID_MISSING


@pytest.mark.parametrize(
    "user_id",
    ["", "a\nb", "tab\t", "del\x7f", "nul\x00", "line\u2028sep", "x" * 256, 1.5, True,
     ["u"], {"id": 1}, int("9" * 256)],
)  # fmt: skip
def test_invalid_user_id(user_id):
    assert reason_of(verify, make(tenant_payload(user_id=user_id))) == Reason.USER_ID_INVALID


def test_lone_surrogate_user_id_is_invalid():
    token = hand_token('{"user_id":"a\\ud800"}')
    assert reason_of(verify, token) == Reason.USER_ID_INVALID


# -- tenant tokens: custom and profile ---------------------------------------------------


@pytest.mark.parametrize(
    "claims",
    [
        {"custom": "text"},
        {"custom": [1, 2]},
        {"profile": 5},
        {"skyprofile": []},
        {"profile": {}, "skyprofile": {}},
        {"custom": {f"k{i}": i for i in range(101)}},
        {"profile": nested(9)},
        {"custom": {"list": [[[[[[[[]]]]]]]]}},
        {"custom": {"nul": "a\x00b"}},
        {"custom": {"a\x00": 1}},
    ],
)
def test_custom_and_profile_limits(claims):
    assert reason_of(verify, make(tenant_payload(**claims))) == Reason.CLAIMS_INVALID


def test_objects_at_the_limits_pass():
    keys = {f"k{i}": i for i in range(100)}
    claims = verify(make(tenant_payload(custom=keys, profile=nested(8))))
    assert len(claims.custom) == 100 and claims.profile == nested(8)


def test_lone_surrogate_in_custom_is_claims_invalid():
    token = hand_token('{"user_id":"u","custom":{"a":"\\udc00"}}')
    assert reason_of(verify, token) == Reason.CLAIMS_INVALID


def test_object_size_limit_is_16_kib_of_compact_utf8():
    at_limit = {"a": "x" * (16 * 1024 - len('{"a":""}'))}
    assert check_object_limits(at_limit) is at_limit
    with pytest.raises(TokenRejected) as info:
        check_object_limits({"a": "é" * (8 * 1024)})  # 16 KiB + 8 bytes in UTF-8
    assert info.value.reason == Reason.CLAIMS_INVALID


# -- tenant tokens: state binding --------------------------------------------------------


def test_state_claim_must_match():
    assert verify(make(tenant_payload(state=STATE)), require_bound=True).user_id == "u-1"
    assert verify(make(tenant_payload(state="é-state")), state="é-state").user_id == "u-1"
    for claim in ("other-state", STATE.upper(), "", 12, None):
        token = make(tenant_payload(state=claim))
        assert reason_of(verify, token) == Reason.CLAIMS_INVALID
    assert reason_of(verify, make(tenant_payload(state=STATE)), state=None) == (
        Reason.CLAIMS_INVALID
    )


def test_require_bound_refuses_a_token_without_state():
    assert verify(make(tenant_payload())).user_id == "u-1"
    assert reason_of(verify, make(tenant_payload()), require_bound=True) == Reason.CLAIMS_INVALID


def test_check_order_signature_before_claims_and_times_before_user_id():
    bad_everything = make(tenant_payload(exp="soon", user_id=""), secret=OTHER)
    assert reason_of(verify, bad_everything) == Reason.TOKEN_BAD_SIGNATURE
    expired_without_user = make({"exp": NOW - 100})
    assert reason_of(verify, expired_without_user) == Reason.TOKEN_EXPIRED
    assert reason_of(verify, make({"iat": NOW - 700, "custom": 1})) == Reason.TOKEN_TOO_OLD


# -- custom tokens ------------------------------------------------------------------------


def test_a_valid_custom_token():
    token = make(custom_payload(skyprofile={"name": "Ann"}, custom={"tier": 2}, state="ignored"))
    claims = verify_custom(token)
    assert (claims.sub, claims.profile, claims.custom) == ("user-1", {"name": "Ann"}, {"tier": 2})
    assert (claims.exp, claims.iat, claims.jti) == (NOW + 600, NOW - 5, None)
    assert claims.replay_key == f"sig:{claims.signature_digest}"
    assert claims.signature_digest == signature_digest(token)
    assert claims.replay_ttl == 630 and claims.used_previous_secret is False


def test_custom_token_jti_is_the_replay_key():
    claims = verify_custom(make(custom_payload(jti="abc-1", profile={"a": 1}), secret=PREVIOUS))
    assert claims.replay_key == "jti:abc-1" and claims.jti == "abc-1"
    assert claims.profile == {"a": 1} and claims.used_previous_secret is True


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"sub": "x" * 37}, Reason.USER_ID_INVALID),
        ({"sub": 42}, Reason.USER_ID_INVALID),
        ({"sub": ""}, Reason.USER_ID_INVALID),
        ({"sub": "a\nb"}, Reason.USER_ID_INVALID),
        ({"sub": None}, Reason.USER_ID_MISSING),
        ({"iat": None}, Reason.CLAIMS_INVALID),
        ({"exp": NOW + 600.0}, Reason.CLAIMS_INVALID),
        ({"iat": NOW - 10, "exp": NOW - 10 + 3601}, Reason.TOKEN_LIFETIME_TOO_LONG),
        ({"iat": NOW + 10, "exp": NOW + 10}, Reason.CLAIMS_INVALID),
        ({"exp": NOW - 30}, Reason.TOKEN_EXPIRED),
        ({"iat": NOW + 31, "exp": NOW + 100}, Reason.TOKEN_NOT_YET_VALID),
        ({"nbf": NOW + 31}, Reason.TOKEN_NOT_YET_VALID),
        ({"jti": ""}, Reason.CLAIMS_INVALID),
        ({"jti": 7}, Reason.CLAIMS_INVALID),
        ({"jti": "j" * 256}, Reason.CLAIMS_INVALID),
        ({"profile": {}, "skyprofile": {}}, Reason.CLAIMS_INVALID),
        ({"skyprofile": "Ann"}, Reason.CLAIMS_INVALID),
        ({"custom": {f"k{i}": i for i in range(101)}}, Reason.CLAIMS_INVALID),
        ({"custom": nested(9)}, Reason.CLAIMS_INVALID),
    ],
)
def test_custom_token_claims(claims, reason):
    assert reason_of(verify_custom, make(custom_payload(**claims))) == reason


@pytest.mark.parametrize("name", ["iat", "exp"])
def test_custom_token_requires_iat_and_exp(name):
    payload = {k: v for k, v in custom_payload().items() if k != name}
    assert reason_of(verify_custom, make(payload)) == Reason.CLAIMS_INVALID


def test_custom_token_without_sub_and_limits_at_the_edge():
    assert reason_of(verify_custom, make({"iat": NOW, "exp": NOW + 60})) == Reason.USER_ID_MISSING
    edge = make(custom_payload(sub="s" * 36, iat=NOW - 100, exp=NOW - 100 + 3600, jti="j" * 255))
    assert verify_custom(edge).sub == "s" * 36


def test_custom_token_size_limit_is_claims_invalid():
    token = make(custom_payload(custom={"pad": "x" * 6500}))
    assert len(token) > 8192
    assert reason_of(verify_custom, token) == Reason.CLAIMS_INVALID
    assert reason_of(verify_custom, "") == Reason.TOKEN_MISSING
    assert reason_of(verify_custom, 12) == Reason.TOKEN_MALFORMED


def test_custom_token_header_rules():
    none = "eyJhbGciOiJub25lIn0." + b64json(custom_payload()) + "."
    assert reason_of(verify_custom, none) == Reason.TOKEN_ALG_NOT_ALLOWED
    reflected = make(custom_payload(), headers={"typ": REQUEST_TOKEN_TYP})
    assert reason_of(verify_custom, reflected) == Reason.CLAIMS_INVALID
    assert reason_of(verify_custom, make(custom_payload(), secret=OTHER)) == (
        Reason.TOKEN_BAD_SIGNATURE
    )
    assert reason_of(verify_custom, flip_low_bits(make(custom_payload()))) == (
        Reason.TOKEN_MALFORMED
    )


# -- request tokens -----------------------------------------------------------------------


def test_request_token_shape():
    token = sign_request_token(SECRET, app_id="abcd1234", now=NOW, jti="j-1")
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": REQUEST_TOKEN_TYP}
    claims = jwt.decode(
        token, SECRET, algorithms=["HS256"], options={"verify_exp": False, "verify_iat": False}
    )
    assert claims == {"app_id": "abcd1234", "iat": NOW, "exp": NOW + 300, "jti": "j-1"}


def test_request_token_carries_data_and_verifies_with_pyjwt_now():
    import time

    now = int(time.time())
    data = {"id": "ann", "note": "ünïcode"}
    token = sign_request_token(SECRET, app_id="abcd1234", now=now, jti="j-2", data=data)
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert set(claims) == {"app_id", "iat", "exp", "jti", "data"}
    assert claims["data"] == data and claims["exp"] - claims["iat"] == 300
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, OTHER, algorithms=["HS256"])


# -- properties ---------------------------------------------------------------------------

B64_PART = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=")
TOKENS = st.one_of(
    st.text(max_size=300),
    st.lists(B64_PART, min_size=1, max_size=4).map(".".join),
    st.tuples(st.just(GOOD_HEADER), B64_PART, B64_PART).map(".".join),
)
JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(NOW - 1000, NOW + 100_000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
CLAIM_NAMES = st.sampled_from(
    ["user_id", "sub", "exp", "iat", "nbf", "custom", "profile", "skyprofile", "state", "jti",
     "app_id"]
)  # fmt: skip
PAYLOADS = st.dictionaries(CLAIM_NAMES | st.text(max_size=8), JSON_VALUES, max_size=8)
HEADERS = st.fixed_dictionaries(
    {"alg": st.sampled_from(["HS256", "HS256", "HS512", "none"])},
    optional={"typ": st.sampled_from(["JWT", REQUEST_TOKEN_TYP, "x"]), "kid": st.text(max_size=5)},
)


def only_token_rejected(call, token) -> None:
    try:
        call(token)
    except TokenRejected as exc:
        assert isinstance(exc.reason, Reason)


@settings(max_examples=200, deadline=None)
@given(TOKENS)
def test_arbitrary_text_is_only_ever_rejected_cleanly(token):
    only_token_rejected(verify, token)
    only_token_rejected(verify_custom, token)


@settings(max_examples=200, deadline=None)
@given(HEADERS, PAYLOADS)
def test_arbitrary_signed_payloads_are_only_ever_rejected_cleanly(header, payload):
    token = hand_sign(b64json(header), b64(json.dumps(payload)))
    only_token_rejected(verify, token)
    only_token_rejected(verify_custom, token)


USER_IDS = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\u2028\u2029"),
    min_size=1,
    max_size=255,
)


@settings(max_examples=200, deadline=None)
@given(USER_IDS, st.integers(NOW - 29, NOW + 86400))
def test_valid_user_ids_survive_unchanged(user_id, exp):
    assert verify(make({"user_id": user_id, "exp": exp})).user_id == user_id
