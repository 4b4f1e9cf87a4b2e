"""Access tokens: ES256 JWTs this service signs and checks (docs/protocol.md §6).

Encoded and checked with ``cryptography`` directly: one fixed header shape,
one algorithm, the claims this service writes. PyJWT's generic machinery
(header and option handling, claim dispatch) cost about as much CPU as the
ECDSA operation itself on every ``/me`` and token response. The checks are
named rules run fail-fast, the time rules the same as the login tokens'
(without leeway: these tokens are ours, timed by our clock).

The three parts are decoded as they always were (Python's forgiving
base64url decoder); the header and claims that count are the signed ones.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from saas.errors import Reason
from saas.jwt.claims import TIME_TYPES, VALIDITY_WINDOW
from saas.jwt.codec import Malformed, b64url_decode_lenient, b64url_encode, json_object
from saas.jwt.rules import Refusal, Rule, TokenRejected, run_fail_fast

MAX_ACCESS_TOKEN_CHARS = 8192
ACCESS_TOKEN_TYP = "at+jwt"  # RFC 9068: an access token is never mistaken for an ID token
ID_TOKEN_TYP = "JWT"

_ECDSA = ec.ECDSA(hashes.SHA256())
_REQUIRED = ("exp", "iat", "sub", "sid", "ext", "aud", "iss")


class InvalidAccessToken(TokenRejected):
    """Any problem with a presented access token; callers answer 401."""


@dataclass(frozen=True)
class AccessClaims:
    user_id: str
    external_id: str
    sid: str
    exp: int
    iat: int = 0
    scope: str | None = None  # the granted OpenID Connect scopes, when any


@dataclass(frozen=True)
class IdTokenHint:
    """The claims of one of our ID tokens, checked but for its expiry (end-session)."""

    user_id: str
    sid: str


def sign_access_token(private_key: ec.EllipticCurvePrivateKey, kid: str, claims: dict,
                      typ: str = ACCESS_TOKEN_TYP) -> str:
    """The compact JWT of ``claims``, signed with the app's current key
    (``typ``: an access token's, or ``JWT`` for an ID token)."""
    header = {"alg": "ES256", "kid": kid, "typ": typ}
    signing_input = ".".join(
        b64url_encode(json.dumps(part, separators=(",", ":")).encode("utf-8"))
        for part in (header, claims)).encode("ascii")
    r, s = decode_dss_signature(private_key.sign(signing_input, _ECDSA))
    signature = b64url_encode(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    return signing_input.decode("ascii") + "." + signature


class AccessToken:
    """A presented access token as the rules see it (``leeway`` is always 0)."""

    __slots__ = ("audience", "claims", "header", "issuer", "jwk", "keys", "leeway", "load_key",
                 "now", "parts", "raw")

    def __init__(self, raw: str, *, keys: Sequence[dict[str, Any]],
                 load_key: Callable[[dict[str, Any]], Any], now: float, audience: str,
                 issuer: str) -> None:
        self.raw, self.keys, self.load_key = raw, keys, load_key
        self.now, self.leeway = now, 0
        self.audience, self.issuer = audience, issuer
        self.parts: list[str] = []
        self.header = self.claims = self.jwk = None  # dicts, once read


def _size(t: AccessToken) -> Refusal | None:
    if not t.raw or len(t.raw) > MAX_ACCESS_TOKEN_CHARS:
        return Reason.TOKEN_MALFORMED, "missing or oversized token"
    return None


def _structure(t: AccessToken) -> Refusal | None:
    t.parts = t.raw.split(".")
    if len(t.parts) != 3:
        return Reason.TOKEN_MALFORMED, "a JWT has three dot-separated parts"
    try:
        t.header = json_object(b64url_decode_lenient(t.parts[0]))
    except Malformed as exc:
        return Reason.TOKEN_MALFORMED, f"header is {exc}"
    return None


def _access_token_type(t: AccessToken) -> Refusal | None:
    if t.header.get("typ") != ACCESS_TOKEN_TYP:
        return Reason.TOKEN_MALFORMED, "not an access token (typ)"
    return None


def _known_key(t: AccessToken) -> Refusal | None:
    """ES256 with a key the app publishes (the ``kid`` only picks among those)."""
    kid = t.header.get("kid")
    t.jwk = next((key for key in t.keys if key["kid"] == kid), None)
    if t.jwk is None or t.header.get("alg") != "ES256":
        return Reason.TOKEN_BAD_SIGNATURE, "unknown key"
    return None


def _signature(t: AccessToken) -> Refusal | None:
    try:
        signature = b64url_decode_lenient(t.parts[2])
    except Malformed as exc:
        return Reason.TOKEN_MALFORMED, f"signature is {exc}"
    if len(signature) != 64:
        return Reason.TOKEN_BAD_SIGNATURE, "bad signature"
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"),
                               int.from_bytes(signature[32:], "big"))
    try:
        t.load_key(t.jwk).verify(der, (t.parts[0] + "." + t.parts[1]).encode("ascii"), _ECDSA)
    except (InvalidSignature, UnicodeEncodeError):
        return Reason.TOKEN_BAD_SIGNATURE, "bad signature"
    return None


def _claims_present(t: AccessToken) -> Refusal | None:
    try:
        t.claims = json_object(b64url_decode_lenient(t.parts[1]))
    except Malformed as exc:
        return Reason.TOKEN_MALFORMED, f"claims are {exc}"
    if any(name not in t.claims for name in _REQUIRED):
        return Reason.CLAIMS_INVALID, "missing claim"
    return None


def _audience(t: AccessToken) -> Refusal | None:
    audience = t.claims["aud"]
    if audience == t.audience or (isinstance(audience, list) and t.audience in audience):
        return None
    return Reason.CLAIMS_INVALID, "audience"


def _issuer(t: AccessToken) -> Refusal | None:
    return None if t.claims["iss"] == t.issuer else (Reason.CLAIMS_INVALID, "issuer")


def _identifiers(t: AccessToken) -> Refusal | None:
    if all(isinstance(t.claims[name], str) for name in ("sub", "sid", "ext")):
        return None
    return Reason.CLAIMS_INVALID, "claim types"


_SIGNED_BY_APP: tuple[Rule, ...] = (
    Rule("Size", _size),
    Rule("Structure", _structure),
    Rule("Known key", _known_key),
    Rule("Signature (ES256)", _signature),
)

ACCESS_TOKEN_RULES: tuple[Rule, ...] = (
    Rule("Size", _size),
    Rule("Structure", _structure),
    Rule("Type (at+jwt)", _access_token_type),
    Rule("Known key", _known_key),
    Rule("Signature (ES256)", _signature),
    Rule("Claims present", _claims_present),
    TIME_TYPES,
    VALIDITY_WINDOW,
    Rule("Audience", _audience),
    Rule("Issuer", _issuer),
    Rule("sub, sid and ext", _identifiers),
)


def verify_access_token(token: str, *, keys: Sequence[dict[str, Any]],
                        load_key: Callable[[dict[str, Any]], Any], now: float, audience: str,
                        issuer: str) -> AccessClaims:
    """The claims of an access token signed with one of ``keys`` (the app's published
    JWKs; ``load_key`` turns one into a public key), or InvalidAccessToken."""
    t = AccessToken(token, keys=keys, load_key=load_key, now=now, audience=audience,
                    issuer=issuer)
    run_fail_fast(ACCESS_TOKEN_RULES, t, InvalidAccessToken)
    claims = t.claims
    scope = claims.get("scope")
    return AccessClaims(claims["sub"], claims["ext"], claims["sid"], int(claims["exp"]),
                        int(claims["iat"]), scope if isinstance(scope, str) else None)


def verify_id_token_hint(token: str, *, keys: Sequence[dict[str, Any]],
                         load_key: Callable[[dict[str, Any]], Any], audience: str,
                         issuer: str) -> IdTokenHint:
    """One of our ID tokens for ``audience``: signature, type, issuer and
    audience checked, its expiry not (OpenID RP-Initiated Logout §2: a hint
    may have expired). InvalidAccessToken otherwise."""
    t = AccessToken(token, keys=keys, load_key=load_key, now=0, audience=audience,
                    issuer=issuer)
    run_fail_fast(_SIGNED_BY_APP, t, InvalidAccessToken)
    try:
        t.claims = json_object(b64url_decode_lenient(t.parts[1]))
    except Malformed as exc:
        raise InvalidAccessToken(Reason.TOKEN_MALFORMED, f"claims are {exc}") from exc
    claims = t.claims
    if (t.header.get("typ") != ID_TOKEN_TYP or "ext" in claims
            or any(not isinstance(claims.get(name), str) for name in ("sub", "sid", "iss"))
            or "aud" not in claims or _audience(t) or _issuer(t)):
        raise InvalidAccessToken(Reason.CLAIMS_INVALID, "not an ID token of this app")
    return IdTokenHint(claims["sub"], claims["sid"])
