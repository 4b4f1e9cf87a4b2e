"""A Skygear-style custom token (docs/protocol.md §5.1): its rules and claims."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from saas.errors import Reason
from saas.jwt.claims import (
    LEEWAY,
    OBJECTS,
    TIME_TYPES,
    VALIDITY_WINDOW,
    hide_unless_whole_seconds,
    identifier_refusal,
    is_clean_text,
    profile_name,
    skip_unless_whole_seconds,
)
from saas.jwt.hs256 import HEADER, PRESENT, SIGNATURE, SIZE, STRUCTURE, HS256Token, Secret
from saas.jwt.rules import HIDDEN, Refusal, Rule, run_fail_fast

MAX_CUSTOM_TOKEN_CHARS = 8 * 1024
MAX_SUB_CHARS = 36
MAX_JTI_CHARS = 255
MAX_CUSTOM_LIFETIME = 3600


@dataclass(frozen=True)
class CustomTokenClaims:
    """The checked claims of a Skygear-style custom token (docs/protocol.md §5.1)."""

    sub: str
    profile: dict | None
    custom: dict | None
    exp: int
    iat: int
    jti: str | None
    signature_digest: str
    replay_key: str
    replay_ttl: int
    used_previous_secret: bool


def _lacks_iat_or_exp(t: HS256Token) -> bool:
    return "iat" not in t.claims or "exp" not in t.claims


def _iat_and_exp(t: HS256Token) -> Refusal | None:
    if _lacks_iat_or_exp(t):
        return Reason.CLAIMS_INVALID, "iat and exp are required"
    return None


def _window_unjudged(t: HS256Token) -> object | None:
    """For the debugger: no window without whole-second times, or without iat and exp
    (that row says so already)."""
    return skip_unless_whole_seconds(t) or (HIDDEN if _lacks_iat_or_exp(t) else None)


def _hidden_unless_both_times(t: HS256Token) -> object | None:
    return hide_unless_whole_seconds(t) or (HIDDEN if _lacks_iat_or_exp(t) else None)


def _custom_lifetime(t: HS256Token) -> Refusal | None:
    exp, iat = t.claims["exp"], t.claims["iat"]
    if exp <= iat:
        return Reason.CLAIMS_INVALID, "exp is not after iat"
    if exp - iat > MAX_CUSTOM_LIFETIME:
        return Reason.TOKEN_LIFETIME_TOO_LONG, f"exp − iat is {exp - iat} s, more than " \
                                               f"{MAX_CUSTOM_LIFETIME} s"
    return None


def _sub(t: HS256Token) -> Refusal | None:
    return identifier_refusal(t.claims, "sub", MAX_SUB_CHARS)


def _jti(t: HS256Token) -> Refusal | None:
    if "jti" in t.claims and not is_clean_text(t.claims["jti"], MAX_JTI_CHARS):
        return Reason.CLAIMS_INVALID, "jti must be a string of 1–255 characters"
    return None


CUSTOM_TOKEN_RULES: tuple[Rule, ...] = (
    PRESENT,
    SIZE,
    STRUCTURE,
    HEADER,
    SIGNATURE,
    TIME_TYPES,
    Rule("iat and exp present", _iat_and_exp, skip=hide_unless_whole_seconds),
    dataclasses.replace(VALIDITY_WINDOW, skip=_window_unjudged),
    Rule("Lifetime (exp − iat)", _custom_lifetime,
         lambda t: f"{t.claims['exp'] - t.claims['iat']} s (at most 1 h)",
         skip=_hidden_unless_both_times),
    Rule("sub", _sub, lambda t: f"{t.claims.get('sub')!r}"),
    OBJECTS,
    Rule("jti", _jti, lambda t: "a valid identifier" if "jti" in t.claims else "absent"),
)


def custom_token(token: object, *, secrets: Sequence[str], now: int, leeway: int = LEEWAY,
                 labels: Sequence[str] = (), others: Sequence[Secret] = ()) -> HS256Token:
    """A custom token under check (its size limit answers ``claims_invalid``, §5.1)."""
    return HS256Token(token, MAX_CUSTOM_TOKEN_CHARS, Reason.CLAIMS_INVALID, secrets, now, leeway,
                      labels=labels, others=others)


def custom_claims(t: HS256Token) -> CustomTokenClaims:
    """Run the custom-token rules fail-fast; the claims of a token that passes them all."""
    run_fail_fast(CUSTOM_TOKEN_RULES, t)
    claims = t.claims
    exp, jti = claims["exp"], claims.get("jti")
    digest = hashlib.sha256(t.signature).hexdigest()
    replay_key = f"jti:{jti}" if jti is not None else f"sig:{digest}"
    return CustomTokenClaims(
        claims["sub"], claims.get(profile_name(claims)), claims.get("custom"), exp,
        claims["iat"], jti, digest, replay_key, max(1, exp + t.leeway - t.now), t.matched > 0,
    )


def verify_custom_token(
    token: str, *, secrets: Sequence[str], now: int, leeway: int = LEEWAY
) -> CustomTokenClaims:
    """Verify a Skygear-style custom token (docs/protocol.md §5.1)."""
    return custom_claims(custom_token(token, secrets=secrets, now=now, leeway=leeway))
