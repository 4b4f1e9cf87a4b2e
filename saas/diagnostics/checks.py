"""Every check of docs/protocol.md §4.2 step 2 and §5.1, evaluated one by one for display.

The live validators (``saas.flows.jwt_strict``) stop at the first failure, as
a login must; a developer wants to see every check at once. So the token is
decoded here and each check runs on its own, in the live order, and reports
pass, fail (with the reason the service would give) or skip. The verdict
itself never comes from here: ``saas.diagnostics.debugger`` asks the live
validators and shows this list as the explanation (a test checks that the
first failure here is the verdict, for every failing token of the flow tests).

Pure functions: no Redis, no database; ``now`` is passed in. Rows never hold
a secret; the token's own header and claims are shown to the member who
pasted it, nowhere else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from saas.errors import Reason
from saas.flows.jwt_strict import (
    LEEWAY,
    MAX_CUSTOM_LIFETIME,
    MAX_CUSTOM_TOKEN_CHARS,
    MAX_JTI_CHARS,
    MAX_SUB_CHARS,
    MAX_TENANT_LIFETIME,
    MAX_TENANT_TOKEN_CHARS,
    MAX_TIMESTAMP,
    MAX_TOKEN_AGE,
    MAX_USER_ID_CHARS,
    REQUEST_TOKEN_TYP,
    TokenRejected,
    b64url_decode,
    check_object_limits,
    is_clean_text,
    json_object,
)

_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_KEY_HEADERS = ("jku", "jwk", "x5u", "x5c")

PASS, FAIL, SKIP = "pass", "fail", "skip"


@dataclass(frozen=True)
class Check:
    name: str
    outcome: str  # pass | fail | skip
    detail: str
    reason: str | None = None  # the contract reason, on failures


@dataclass(frozen=True)
class Secret:
    """A key to try, with the words that name it on the page (never its value)."""

    label: str
    value: str


@dataclass
class Decoded:
    """The token's parts as far as they decode (strictly, as the service does)."""

    header: dict | None = None
    claims: dict | None = None
    signing_input: bytes | None = None
    signature: bytes | None = None
    problem: str | None = None  # why the structure is refused


@dataclass
class Rows:
    items: list[Check] = field(default_factory=list)

    def add(self, name: str, failure: tuple[Reason, str] | None, passed: str) -> bool:
        if failure is None:
            self.items.append(Check(name, PASS, passed))
            return True
        reason, detail = failure
        self.items.append(Check(name, FAIL, detail, str(reason)))
        return False

    def skip(self, name: str, detail: str) -> None:
        self.items.append(Check(name, SKIP, detail))


# -- decoding -------------------------------------------------------------------


def decode(token: str) -> Decoded:
    """Split and decode a compact JWT; ``problem`` says why it is malformed."""
    decoded = Decoded()
    parts = token.split(".")
    if len(parts) != 3:
        decoded.problem = f"a JWT has three dot-separated parts, this has {len(parts)}"
        return decoded
    try:
        # The live validator's own decoding, so both refuse exactly the same parts.
        decoded.header = json_object(b64url_decode(parts[0]))
        decoded.claims = json_object(b64url_decode(parts[1]))
        decoded.signature = b64url_decode(parts[2])
    except TokenRejected as exc:
        decoded.problem = exc.message or str(exc)
        return decoded
    decoded.signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    return decoded


def lenient_parts(token: str) -> tuple[Any, Any]:
    """Header and claims for display even when the token is malformed (None if not JSON)."""
    shown = []
    for part in [*token.split("."), "", ""][:2]:
        try:
            shown.append(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))
        except (ValueError, RecursionError):
            shown.append(None)
    return shown[0], shown[1]


# -- the shared checks -------------------------------------------------------------


def _header_failure(header: dict) -> tuple[Reason, str] | None:
    if header.get("alg") != "HS256":
        return Reason.TOKEN_ALG_NOT_ALLOWED, f"alg is {header.get('alg')!r}; only HS256 is allowed"
    present = [name for name in _KEY_HEADERS if name in header]
    if present:
        return Reason.TOKEN_ALG_NOT_ALLOWED, f"keys carried by the token ({', '.join(present)}) " \
                                             "are refused"
    if "crit" in header:
        return Reason.TOKEN_MALFORMED, "critical header extensions (crit) are refused"
    if "typ" not in header:
        return None
    typ = header["typ"]
    if not isinstance(typ, str):
        return Reason.TOKEN_MALFORMED, "typ is not a string"
    typ = typ.lower().removeprefix("application/")
    if typ == REQUEST_TOKEN_TYP:
        return Reason.CLAIMS_INVALID, "this is the request token we sent, not a login token"
    if typ != "jwt":
        return Reason.TOKEN_MALFORMED, f"typ must be JWT when present, not {header['typ']!r}"
    return None


def _signature(rows: Rows, decoded: Decoded, secrets: Sequence[Secret],
               others: Sequence[Secret]) -> None:
    matched = None
    if decoded.signature is not None and len(decoded.signature) == 32:
        for secret in secrets:
            mac = hmac.new(secret.value.encode("utf-8"), decoded.signing_input, hashlib.sha256)
            if secret.value and hmac.compare_digest(mac.digest(), decoded.signature):
                matched = secret
                break
    if matched is not None:
        rows.add("Signature (HS256)", None, f"verifies with the {matched.label}")
        return
    hint = ""
    for other in others:  # the other kind of secret: a classic mix-up
        mac = hmac.new(other.value.encode("utf-8"), decoded.signing_input, hashlib.sha256)
        if other.value and len(decoded.signature or b"") == 32 \
                and hmac.compare_digest(mac.digest(), decoded.signature):
            hint = f"; it was signed with the {other.label}"
    tried = " and the ".join(secret.label for secret in secrets)
    rows.add("Signature (HS256)", (Reason.TOKEN_BAD_SIGNATURE,
                                   f"does not verify with the {tried}{hint}"), "")


def _time_types(claims: dict) -> tuple[Reason, str] | None:
    for name in ("exp", "iat", "nbf"):
        if name in claims:
            value = claims[name]
            if type(value) is not int or not 0 <= value <= MAX_TIMESTAMP:
                return Reason.CLAIMS_INVALID, f"{name} must be an integer time in seconds, " \
                                              f"not {json.dumps(value)[:40]}"
    return None


def _window(claims: dict, now: int) -> tuple[Reason, str] | None:
    exp, nbf, iat = claims.get("exp"), claims.get("nbf"), claims.get("iat")
    if exp is not None and exp + LEEWAY <= now:
        return Reason.TOKEN_EXPIRED, f"expired {now - exp} s ago (leeway {LEEWAY} s)"
    if nbf is not None and nbf > now + LEEWAY:
        return Reason.TOKEN_NOT_YET_VALID, f"nbf is {nbf - now} s in the future"
    if iat is not None and iat > now + LEEWAY:
        return Reason.TOKEN_NOT_YET_VALID, f"iat is {iat - now} s in the future"
    return None


def _window_passed(claims: dict, now: int) -> str:
    exp = claims.get("exp")
    return "no exp claim" if exp is None else f"expires in {exp - now} s"


def _identifier(claims: dict, name: str, max_chars: int) -> tuple[Reason, str] | None:
    value = claims.get(name)
    if value is None:
        return Reason.USER_ID_MISSING, f"{name} is required"
    if name == "user_id" and type(value) is int:
        value = str(value)
    if not is_clean_text(value, max_chars):
        return Reason.USER_ID_INVALID, f"{name} must be a string of 1–{max_chars} characters " \
                                       "without control characters"
    return None


def _objects(claims: dict) -> tuple[Reason, str] | None:
    if "profile" in claims and "skyprofile" in claims:
        return Reason.CLAIMS_INVALID, "both profile and skyprofile are present"
    for name in ("custom", "profile" if "profile" in claims else "skyprofile"):
        if claims.get(name) is not None:
            try:
                check_object_limits(claims[name], name)
            except TokenRejected as exc:
                return exc.reason, exc.message
    return None


# -- the two kinds of token ----------------------------------------------------------


def _structure(rows: Rows, token: object, limit: int, too_large: Reason) -> Decoded | None:
    if token is None or not isinstance(token, str) or not token.strip():
        rows.add("Token present", (Reason.TOKEN_MISSING, "no token was given"), "")
        return None
    rows.add("Size", (too_large, f"{len(token)} characters, more than {limit}")
             if len(token) > limit else None, f"{len(token)} characters (at most {limit})")
    decoded = decode(token)
    if not rows.add("Structure", (Reason.TOKEN_MALFORMED, decoded.problem)
                    if decoded.problem else None, "three base64url parts, JSON header and claims"):
        return None
    rows.add("Header", _header_failure(decoded.header), f"alg {decoded.header.get('alg')}")
    return decoded


def tenant_token_checks(token: object, *, secrets: Sequence[Secret], others: Sequence[Secret],
                        now: int, state: str | None, require_bound: bool) -> list[Check]:
    """docs/protocol.md §4.2 step 2, check by check (``state`` None: not compared)."""
    rows = Rows()
    decoded = _structure(rows, token, MAX_TENANT_TOKEN_CHARS, Reason.PAYLOAD_TOO_LARGE)
    if decoded is None:
        return rows.items
    claims = decoded.claims
    looks_like_request = "app_id" in claims and "jti" in claims and "user_id" not in claims
    rows.add("Not our request token", (Reason.CLAIMS_INVALID, "app_id and jti without user_id: "
             "this is the request token we sent to your endpoint")
             if looks_like_request else None, "a login token")
    _signature(rows, decoded, secrets, others)
    rows.add("Time claims are whole seconds", _time_types(claims), "exp, iat, nbf are integers")
    if _time_types(claims) is None:
        rows.add("Validity window", _window(claims, now), _window_passed(claims, now))
        iat, exp = claims.get("iat"), claims.get("exp")
        stale = iat is not None and now - iat > MAX_TOKEN_AGE
        rows.add("Issued recently (iat)", (Reason.TOKEN_TOO_OLD, f"issued {now - iat} s ago, "
                 f"more than {MAX_TOKEN_AGE} s") if stale else None,
                 "no iat claim" if iat is None else f"issued {now - iat} s ago")
        rows.add("Lifetime", (Reason.TOKEN_LIFETIME_TOO_LONG, f"exp is {exp - now} s ahead, more "
                 f"than {MAX_TENANT_LIFETIME} s") if exp is not None
                 and exp - now > MAX_TENANT_LIFETIME else None, "at most 24 h ahead")
    else:
        rows.skip("Validity window", "the time claims are not whole seconds")
    rows.add("user_id", _identifier(claims, "user_id", MAX_USER_ID_CHARS),
             f"{claims.get('user_id')!r}")
    rows.add("custom and profile", _objects(claims), "objects within the limits, or absent")
    _state_claim(rows, claims, state, require_bound)
    return rows.items


def _state_claim(rows: Rows, claims: dict, state: str | None, require_bound: bool) -> None:
    name = "state claim"
    if "state" not in claims:
        rows.add(name, (Reason.CLAIMS_INVALID, "the app requires bound tokens (a state claim)")
                 if require_bound else None, "absent (allowed: the app does not require it)")
    elif state is None:
        rows.skip(name, "present; give the login's state to compare it")
    else:
        claim = claims["state"]
        same = isinstance(claim, str) and hmac.compare_digest(
            claim.encode("utf-8", "surrogatepass"), state.encode("utf-8", "surrogatepass"))
        rows.add(name, None if same else (Reason.CLAIMS_INVALID, "differs from the state given"),
                 "equals the state given")


def custom_token_checks(token: object, *, secrets: Sequence[Secret], others: Sequence[Secret],
                        now: int) -> list[Check]:
    """docs/protocol.md §5.1, check by check."""
    rows = Rows()
    decoded = _structure(rows, token, MAX_CUSTOM_TOKEN_CHARS, Reason.CLAIMS_INVALID)
    if decoded is None:
        return rows.items
    claims = decoded.claims
    _signature(rows, decoded, secrets, others)
    rows.add("Time claims are whole seconds", _time_types(claims), "exp, iat, nbf are integers")
    if _time_types(claims) is not None:
        rows.skip("Validity window", "the time claims are not whole seconds")
    elif "iat" not in claims or "exp" not in claims:
        rows.add("iat and exp present", (Reason.CLAIMS_INVALID, "iat and exp are required"), "")
    else:
        rows.add("Validity window", _window(claims, now), _window_passed(claims, now))
        exp, iat = claims["exp"], claims["iat"]
        lifetime = exp - iat
        failure = None
        if exp <= iat:
            failure = (Reason.CLAIMS_INVALID, "exp is not after iat")
        elif lifetime > MAX_CUSTOM_LIFETIME:
            failure = (Reason.TOKEN_LIFETIME_TOO_LONG, f"exp − iat is {lifetime} s, more than "
                                                       f"{MAX_CUSTOM_LIFETIME} s")
        rows.add("Lifetime (exp − iat)", failure, f"{lifetime} s (at most 1 h)")
    rows.add("sub", _identifier(claims, "sub", MAX_SUB_CHARS), f"{claims.get('sub')!r}")
    rows.add("custom and profile", _objects(claims), "objects within the limits, or absent")
    jti_bad = "jti" in claims and not is_clean_text(claims["jti"], MAX_JTI_CHARS)
    rows.add("jti", (Reason.CLAIMS_INVALID, "jti must be a string of 1–255 characters")
             if jti_bad else None, "absent" if "jti" not in claims else "a valid identifier")
    return rows.items


def first_failure(checks: Sequence[Check]) -> Check | None:
    return next((check for check in checks if check.outcome == FAIL), None)
