"""Strict HS256 JWT handling for the login protocol (docs/protocol.md §4.1, §4.2, §5.1).

Pure functions: no Redis, no database, no Pyramid; ``now`` is passed in.
Every refusal is a :class:`TokenRejected` carrying one contract reason code.
The key always comes from the caller, never from the token (``kid``, ``jku``
and friends are ignored or refused). Messages never contain the token, a
secret or whole claims.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from saas.errors import Reason

REQUEST_TOKEN_TYP = "bk-request+jwt"

MAX_TENANT_TOKEN_CHARS = 6 * 1024
MAX_CUSTOM_TOKEN_CHARS = 8 * 1024
MAX_JSON_DEPTH = 32  # deeper header or payload JSON is malformed, not a claims problem
MAX_OBJECT_BYTES = 16 * 1024
MAX_OBJECT_KEYS = 100
MAX_OBJECT_DEPTH = 8
MAX_TIMESTAMP = 10**11  # larger values are milliseconds
MAX_USER_ID_CHARS = 255
MAX_SUB_CHARS = 36
MAX_JTI_CHARS = 255
MAX_TENANT_LIFETIME = 86400
MAX_CUSTOM_LIFETIME = 3600
DEFAULT_REPLAY_TTL = 86400
LEEWAY = 30  # seconds of clock difference allowed on exp, nbf and iat
MAX_TOKEN_AGE = 600  # a tenant token issued longer ago is stale

_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_KEY_HEADERS = ("jku", "jwk", "x5u", "x5c")
_LINE_SEPARATORS = frozenset("\u2028\u2029")


class TokenRejected(Exception):
    """A token failed a check; ``reason`` is the contract reason code."""

    def __init__(self, reason: Reason, message: str = "") -> None:
        super().__init__(message or str(reason))
        self.reason = reason
        self.message = message or str(reason).replace("_", " ")


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


@dataclass(frozen=True)
class _Parsed:
    header: dict
    payload: dict
    signing_input: bytes
    signature: bytes


# -- encoding ---------------------------------------------------------------


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str, *, canonical: bool = True) -> bytes:
    """Decode unpadded base64url (canonical unless told) or refuse it as malformed."""
    try:
        if not _B64URL.fullmatch(text):
            raise ValueError("not base64url")
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        if canonical and _b64encode(raw) != text:
            raise ValueError("not canonical")
    except ValueError:  # binascii.Error included
        raise TokenRejected(Reason.TOKEN_MALFORMED, "token part is not base64url") from None
    return raw


def _hs256(secret: str, signing_input: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), signing_input, hashlib.sha256).digest()


def sign_request_token(
    secret: str,
    *,
    app_id: str,
    now: int,
    jti: str,
    data: dict | None = None,
    lifetime: int = 300,
) -> str:
    """Sign the request token sent to the tenant endpoint (docs/protocol.md §4.1)."""
    header = {"alg": "HS256", "typ": REQUEST_TOKEN_TYP}
    claims: dict[str, Any] = {"app_id": app_id, "iat": now, "exp": now + lifetime, "jti": jti}
    if data is not None:
        claims["data"] = data
    compact = {"separators": (",", ":"), "ensure_ascii": False, "allow_nan": False}
    signing_input = ".".join(
        _b64encode(json.dumps(part, **compact).encode("utf-8")) for part in (header, claims)
    ).encode("ascii")
    return signing_input.decode("ascii") + "." + _b64encode(_hs256(secret, signing_input))


# -- structure ----------------------------------------------------------------


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key")
    return result


def _finite(text: str) -> float:
    """Parse a JSON number; NaN, Infinity and overflowing floats are refused."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("non-finite number")
    return value


def _nesting_depth(text: str) -> int:
    """Deepest bracket nesting of JSON text, ignoring brackets inside strings."""
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return 0  # cannot be too deep: skip the character loop
    depth = peak = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            peak = max(peak, depth)
        elif char in "]}":
            depth -= 1
    return peak


def json_object(raw: bytes) -> dict:
    """Parse a JSON object strictly: UTF-8, no duplicates, NaN or deep nesting."""
    try:
        text = raw.decode("utf-8")
        if _nesting_depth(text) > MAX_JSON_DEPTH:
            raise ValueError("too deeply nested")
        value = json.loads(
            text,
            object_pairs_hook=_refuse_duplicates,
            parse_constant=_finite,
            parse_float=_finite,
        )
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError included
        raise TokenRejected(Reason.TOKEN_MALFORMED, "token part is not valid JSON") from None
    if not isinstance(value, dict):
        raise TokenRejected(Reason.TOKEN_MALFORMED, "token part is not a JSON object")
    return value


def _check_size(token: object, limit: int, too_large: Reason) -> str:
    if token is None or (isinstance(token, str) and not token.strip()):
        raise TokenRejected(Reason.TOKEN_MISSING, "no token")
    if not isinstance(token, str):
        raise TokenRejected(Reason.TOKEN_MALFORMED, "token is not a string")
    if len(token) > limit:
        raise TokenRejected(too_large, f"token longer than {limit} characters")
    return token


def _parse(token: str) -> _Parsed:
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenRejected(Reason.TOKEN_MALFORMED, "token does not have three parts")
    header, payload = (json_object(b64url_decode(part)) for part in parts[:2])
    signature = b64url_decode(parts[2])
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    return _Parsed(header, payload, signing_input, signature)


# -- header and signature -------------------------------------------------------


def _check_header(header: dict) -> None:
    if header.get("alg") != "HS256":
        raise TokenRejected(Reason.TOKEN_ALG_NOT_ALLOWED, "only HS256 is allowed")
    if any(name in header for name in _KEY_HEADERS):
        raise TokenRejected(Reason.TOKEN_ALG_NOT_ALLOWED, "keys from the token are refused")
    if "crit" in header:
        raise TokenRejected(Reason.TOKEN_MALFORMED, "critical header extensions are refused")
    if "typ" not in header:
        return
    typ = header["typ"]
    if not isinstance(typ, str):
        raise TokenRejected(Reason.TOKEN_MALFORMED, "typ header is not a string")
    typ = typ.lower().removeprefix("application/")
    if typ == REQUEST_TOKEN_TYP:
        raise TokenRejected(Reason.CLAIMS_INVALID, "a request token is not a login token")
    if typ != "jwt":
        raise TokenRejected(Reason.TOKEN_MALFORMED, "unexpected typ header")


def _verify_signature(parsed: _Parsed, secrets: Sequence[str]) -> bool:
    """Check the HMAC against each secret in order; True when a previous one matched."""
    if len(parsed.signature) == hashlib.sha256().digest_size:
        for index, secret in enumerate(secrets):
            if secret and hmac.compare_digest(
                _hs256(secret, parsed.signing_input), parsed.signature
            ):
                return index > 0
    raise TokenRejected(Reason.TOKEN_BAD_SIGNATURE, "signature does not verify")


def signature_digest(token: str) -> str:
    """Hex SHA-256 of the decoded signature bytes (the replay marker,
    docs/protocol.md §4.2 step 3)."""
    return hashlib.sha256(b64url_decode(token.rsplit(".", 1)[-1], canonical=False)).hexdigest()


# -- claims ---------------------------------------------------------------------


def _check_times(payload: dict) -> None:
    for name in ("exp", "iat", "nbf"):
        if name not in payload:
            continue
        value = payload[name]
        if type(value) is not int or not 0 <= value <= MAX_TIMESTAMP:
            raise TokenRejected(Reason.CLAIMS_INVALID, f"{name} is not a time in seconds")


def _check_window(payload: dict, now: int, leeway: int) -> None:
    exp, nbf, iat = payload.get("exp"), payload.get("nbf"), payload.get("iat")
    if exp is not None and exp + leeway <= now:
        raise TokenRejected(Reason.TOKEN_EXPIRED, "token has expired")
    if nbf is not None and nbf > now + leeway:
        raise TokenRejected(Reason.TOKEN_NOT_YET_VALID, "token is not valid yet (nbf)")
    if iat is not None and iat > now + leeway:
        raise TokenRejected(Reason.TOKEN_NOT_YET_VALID, "token is issued in the future")


def is_clean_text(value: object, max_chars: int) -> bool:
    """A string of 1..max_chars characters without control or surrogate characters."""
    return (
        isinstance(value, str)
        and 1 <= len(value) <= max_chars
        and not any(
            unicodedata.category(char) in ("Cc", "Cs") or char in _LINE_SEPARATORS for char in value
        )
    )


def _identifier(payload: dict, name: str, max_chars: int) -> str:
    """The end user's id: ``user_id`` (a JSON integer becomes its decimal string) or ``sub``."""
    value = payload.get(name)
    if value is None:
        raise TokenRejected(Reason.USER_ID_MISSING, f"{name} is required")
    if name == "user_id" and type(value) is int:
        value = str(value)
    if not is_clean_text(value, max_chars):
        raise TokenRejected(Reason.USER_ID_INVALID, f"{name} is not a valid identifier")
    return value


def _depth(value: object) -> int:
    """Container nesting depth; -1 anywhere when a string holds NUL (Postgres refuses it)."""
    if isinstance(value, str):
        return -1 if "\x00" in value else 0
    if isinstance(value, dict):
        value = [*value.keys(), *value.values()]
    if not isinstance(value, list):
        return 0
    depths = [_depth(item) for item in value]
    return -1 if -1 in depths else 1 + max(depths, default=0)


def check_object_limits(value: object, name: str = "object") -> dict:
    """Check a ``custom``/``profile`` object against docs/protocol.md §7's limits."""
    if not isinstance(value, dict):
        raise TokenRejected(Reason.CLAIMS_INVALID, f"{name} is not a JSON object")
    try:
        size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    except (UnicodeEncodeError, ValueError, RecursionError):
        raise TokenRejected(Reason.CLAIMS_INVALID, f"{name} is not storable JSON") from None
    if size > MAX_OBJECT_BYTES or len(value) > MAX_OBJECT_KEYS:
        raise TokenRejected(Reason.CLAIMS_INVALID, f"{name} is too large")
    if not 0 <= _depth(value) <= MAX_OBJECT_DEPTH:
        raise TokenRejected(Reason.CLAIMS_INVALID, f"{name} is too deep or holds a NUL")
    return value


def _objects(payload: dict) -> tuple[dict | None, dict | None]:
    """``custom`` and ``profile`` (alias ``skyprofile``); null counts as absent."""
    if "profile" in payload and "skyprofile" in payload:
        raise TokenRejected(Reason.CLAIMS_INVALID, "both profile and skyprofile are present")
    found = []
    for name in ("custom", "profile" if "profile" in payload else "skyprofile"):
        value = payload.get(name)
        found.append(None if value is None else check_object_limits(value, name))
    return found[0], found[1]


def _check_state(payload: dict, state: str | None, require_bound: bool) -> None:
    if "state" not in payload:
        if require_bound:
            raise TokenRejected(Reason.CLAIMS_INVALID, "token is not bound to the state")
        return
    claim = payload["state"]
    if (
        not isinstance(claim, str)
        or state is None
        or not hmac.compare_digest(
            claim.encode("utf-8", "surrogatepass"), state.encode("utf-8", "surrogatepass")
        )
    ):
        raise TokenRejected(Reason.CLAIMS_INVALID, "state claim does not match")


def _looks_like_request_token(payload: dict) -> bool:
    return "app_id" in payload and "jti" in payload and "user_id" not in payload


# -- entry points ------------------------------------------------------------------


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
    token = _check_size(token, MAX_TENANT_TOKEN_CHARS, Reason.PAYLOAD_TOO_LARGE)
    parsed = _parse(token)
    _check_header(parsed.header)
    payload = parsed.payload
    if _looks_like_request_token(payload):
        raise TokenRejected(Reason.CLAIMS_INVALID, "a request token is not a login token")
    used_previous = _verify_signature(parsed, secrets)
    _check_times(payload)
    _check_window(payload, now, leeway)
    exp, iat = payload.get("exp"), payload.get("iat")
    if iat is not None and now - iat > max_age:
        raise TokenRejected(Reason.TOKEN_TOO_OLD, "token was issued too long ago")
    if exp is not None and exp - now > MAX_TENANT_LIFETIME:
        raise TokenRejected(Reason.TOKEN_LIFETIME_TOO_LONG, "token expires too far ahead")
    user_id = _identifier(payload, "user_id", MAX_USER_ID_CHARS)
    custom, profile = _objects(payload)
    _check_state(payload, state, require_bound)
    ttl = DEFAULT_REPLAY_TTL if exp is None else max(1, exp + leeway - now)
    return TenantClaims(
        user_id, custom, profile, exp, iat, signature_digest(token), ttl, used_previous
    )


def _custom_window(payload: dict, now: int, leeway: int) -> tuple[int, int]:
    if "iat" not in payload or "exp" not in payload:
        raise TokenRejected(Reason.CLAIMS_INVALID, "iat and exp are required")
    _check_window(payload, now, leeway)
    exp, iat = payload["exp"], payload["iat"]
    if exp <= iat:
        raise TokenRejected(Reason.CLAIMS_INVALID, "exp is not after iat")
    if exp - iat > MAX_CUSTOM_LIFETIME:
        raise TokenRejected(Reason.TOKEN_LIFETIME_TOO_LONG, "token lifetime exceeds one hour")
    return exp, iat


def _jti(payload: dict) -> str | None:
    if "jti" not in payload:
        return None
    if not is_clean_text(payload["jti"], MAX_JTI_CHARS):
        raise TokenRejected(Reason.CLAIMS_INVALID, "jti is not a valid identifier")
    return payload["jti"]


def verify_custom_token(
    token: str, *, secrets: Sequence[str], now: int, leeway: int = LEEWAY
) -> CustomTokenClaims:
    """Verify a Skygear-style custom token (docs/protocol.md §5.1)."""
    token = _check_size(token, MAX_CUSTOM_TOKEN_CHARS, Reason.CLAIMS_INVALID)
    parsed = _parse(token)
    _check_header(parsed.header)
    used_previous = _verify_signature(parsed, secrets)
    payload = parsed.payload
    _check_times(payload)
    exp, iat = _custom_window(payload, now, leeway)
    sub = _identifier(payload, "sub", MAX_SUB_CHARS)
    custom, profile = _objects(payload)
    jti = _jti(payload)
    digest = signature_digest(token)
    replay_key = f"jti:{jti}" if jti is not None else f"sig:{digest}"
    ttl = max(1, exp + leeway - now)
    return CustomTokenClaims(
        sub, profile, custom, exp, iat, jti, digest, replay_key, ttl, used_previous
    )
