"""A tenant's login verdict token (docs/protocol.md §4.2 steps 2 and 3): its rules and claims."""

from __future__ import annotations

import hashlib
import hmac
import re
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
    profile_name,
)
from saas.jwt.hs256 import HEADER, PRESENT, SIGNATURE, SIZE, STRUCTURE, HS256Token, Secret
from saas.jwt.rules import Refusal, Rule, run_fail_fast

MAX_TENANT_TOKEN_CHARS = 6 * 1024
MAX_USER_ID_CHARS = 255
MAX_TENANT_LIFETIME = 86400
MAX_TOKEN_AGE = 600  # a tenant token issued longer ago is stale
DEFAULT_REPLAY_TTL = 86400  # how long a token without exp is remembered as used


@dataclass(frozen=True)
class TenantClaims:
    """The checked claims of a tenant token (docs/protocol.md §4.2 step 2)."""

    user_id: str
    custom: dict | None
    profile: dict | None
    exp: int | None
    iat: int | None
    signature_digest: str
    replay_ttl: int
    used_previous_secret: bool
    amr: tuple[str, ...] = ()  # the tenant's own authentication methods (docs/oidc.md)


def _not_request_token(t: HS256Token) -> Refusal | None:
    claims = t.claims
    if "app_id" in claims and "jti" in claims and "user_id" not in claims:
        return Reason.CLAIMS_INVALID, "app_id and jti without user_id: this is the request " \
                                      "token we sent to your endpoint"
    return None


def _issued_recently(t: HS256Token) -> Refusal | None:
    iat = t.claims.get("iat")
    if iat is not None and t.now - iat > t.max_age:
        return Reason.TOKEN_TOO_OLD, f"issued {t.now - iat} s ago, more than {t.max_age} s"
    return None


def _issued_passed(t: HS256Token) -> str:
    iat = t.claims.get("iat")
    return "no iat claim" if iat is None else f"issued {t.now - iat} s ago"


def _tenant_lifetime(t: HS256Token) -> Refusal | None:
    exp = t.claims.get("exp")
    if exp is not None and exp - t.now > MAX_TENANT_LIFETIME:
        return Reason.TOKEN_LIFETIME_TOO_LONG, f"exp is {exp - t.now} s ahead, more than " \
                                               f"{MAX_TENANT_LIFETIME} s"
    return None


def _user_id(t: HS256Token) -> Refusal | None:
    return identifier_refusal(t.claims, "user_id", MAX_USER_ID_CHARS)


_AMR_VALUE = re.compile(r"[A-Za-z0-9_.-]{1,32}")
MAX_AMR_VALUES = 10


def _amr(t: HS256Token) -> Refusal | None:
    """``amr``, when sent: how the tenant authenticated the user (RFC 8176
    values such as ``pwd`` or ``mfa``), copied into the ID token."""
    amr = t.claims.get("amr")
    if amr is None:
        return None
    if not isinstance(amr, list) or len(amr) > MAX_AMR_VALUES or not all(
            isinstance(v, str) and _AMR_VALUE.fullmatch(v) for v in amr):
        return Reason.CLAIMS_INVALID, (f"amr must be a list of at most {MAX_AMR_VALUES} "
                                       "short method names")
    return None


def _state_claim(t: HS256Token) -> Refusal | None:
    if "state" not in t.claims:
        if t.require_bound:
            return Reason.CLAIMS_INVALID, "the app requires bound tokens (a state claim)"
        return None
    claim, state = t.claims["state"], t.state
    if (
        not isinstance(claim, str)
        or state is None
        or not hmac.compare_digest(
            claim.encode("utf-8", "surrogatepass"), state.encode("utf-8", "surrogatepass")
        )
    ):
        return Reason.CLAIMS_INVALID, "differs from the state given"
    return None


def _state_unknown(t: HS256Token) -> str | None:
    """For the debugger: without the login's state, a state claim cannot be compared."""
    if t.state is None and "state" in t.claims:
        return "present; give the login's state to compare it"
    return None


TENANT_TOKEN_RULES: tuple[Rule, ...] = (
    PRESENT,
    SIZE,
    STRUCTURE,
    HEADER,
    Rule("Not our request token", _not_request_token, "a login token"),
    SIGNATURE,
    TIME_TYPES,
    VALIDITY_WINDOW,
    Rule("Issued recently (iat)", _issued_recently, _issued_passed,
         skip=hide_unless_whole_seconds),
    Rule("Lifetime", _tenant_lifetime, "at most 24 h ahead", skip=hide_unless_whole_seconds),
    Rule("user_id", _user_id, lambda t: f"{t.claims.get('user_id')!r}"),
    OBJECTS,
    Rule("amr", _amr),
    Rule("state claim", _state_claim, lambda t: "equals the state given" if "state" in t.claims
         else "absent (allowed: the app does not require it)", skip=_state_unknown),
)


def tenant_token(token: object, *, secrets: Sequence[str], now: int, state: str | None,
                 require_bound: bool, leeway: int = LEEWAY, max_age: int = MAX_TOKEN_AGE,
                 labels: Sequence[str] = (), others: Sequence[Secret] = ()) -> HS256Token:
    """A tenant's token under check (``state`` None: the login has none to compare)."""
    return HS256Token(token, MAX_TENANT_TOKEN_CHARS, Reason.PAYLOAD_TOO_LARGE, secrets, now,
                      leeway, labels=labels, others=others, state=state,
                      require_bound=require_bound, max_age=max_age)


def tenant_claims(t: HS256Token) -> TenantClaims:
    """Run the tenant rules fail-fast; the claims of a token that passes them all."""
    run_fail_fast(TENANT_TOKEN_RULES, t)
    claims = t.claims
    user_id, exp = claims["user_id"], claims.get("exp")
    ttl = DEFAULT_REPLAY_TTL if exp is None else max(1, exp + t.leeway - t.now)
    return TenantClaims(
        str(user_id) if type(user_id) is int else user_id, claims.get("custom"),
        claims.get(profile_name(claims)), exp, claims.get("iat"),
        hashlib.sha256(t.signature).hexdigest(), ttl, t.matched > 0,
        tuple(claims.get("amr") or ()),
    )


def verify_tenant_token(
    token: str,
    *,
    secrets: Sequence[str],
    now: int,
    state: str | None,
    require_bound: bool,
    leeway: int = LEEWAY,
    max_age: int = MAX_TOKEN_AGE,
) -> TenantClaims:
    """Verify a tenant's login verdict token (docs/protocol.md §4.2 steps 2 and 3)."""
    return tenant_claims(tenant_token(token, secrets=secrets, now=now, state=state,
                                      require_bound=require_bound, leeway=leeway,
                                      max_age=max_age))
