"""Checks of claims shared by every kind of token: times, identifiers, objects.

A rule here reads ``token.claims`` (and ``token.now``, ``token.leeway`` for
times) of whichever token is under check (docs/protocol.md §4.2 step 2, §5.1, §6, §7).
"""

from __future__ import annotations

import json
import unicodedata

from saas.errors import Reason
from saas.jwt.rules import HIDDEN, Refusal, Rule, TokenRejected

MAX_TIMESTAMP = 10**11  # larger values are milliseconds
LEEWAY = 30  # seconds of clock difference allowed on exp, nbf and iat of tenants' tokens
MAX_OBJECT_BYTES = 16 * 1024
MAX_OBJECT_KEYS = 100
MAX_OBJECT_DEPTH = 8

_LINE_SEPARATORS = frozenset("\u2028\u2029")
_TIME_CLAIMS = ("exp", "iat", "nbf")


# -- text and objects -------------------------------------------------------------


def is_clean_text(value: object, max_chars: int) -> bool:
    """A string of 1..max_chars characters without control or surrogate characters."""
    return (
        isinstance(value, str)
        and 1 <= len(value) <= max_chars
        and not any(
            unicodedata.category(char) in ("Cc", "Cs") or char in _LINE_SEPARATORS for char in value
        )
    )


def identifier_refusal(claims: dict, name: str, max_chars: int) -> Refusal | None:
    """The end user's id: ``user_id`` (a JSON integer stands for its decimal string) or ``sub``."""
    value = claims.get(name)
    if value is None:
        return Reason.USER_ID_MISSING, f"{name} is required"
    if name == "user_id" and type(value) is int:
        value = str(value)
    if not is_clean_text(value, max_chars):
        return Reason.USER_ID_INVALID, f"{name} must be a string of 1–{max_chars} characters " \
                                       "without control characters"
    return None


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


def object_refusal(value: object, name: str = "object") -> Refusal | None:
    """A ``custom``/``profile`` object against docs/protocol.md §7's limits."""
    if not isinstance(value, dict):
        return Reason.CLAIMS_INVALID, f"{name} is not a JSON object"
    try:
        size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    except (UnicodeEncodeError, ValueError, RecursionError):
        return Reason.CLAIMS_INVALID, f"{name} is not storable JSON"
    if size > MAX_OBJECT_BYTES or len(value) > MAX_OBJECT_KEYS:
        return Reason.CLAIMS_INVALID, f"{name} is too large"
    if not 0 <= _depth(value) <= MAX_OBJECT_DEPTH:
        return Reason.CLAIMS_INVALID, f"{name} is too deep or holds a NUL"
    return None


def check_object_limits(value: object, name: str = "object") -> dict:
    """``value`` if it is an object within docs/protocol.md §7's limits, else TokenRejected."""
    refusal = object_refusal(value, name)
    if refusal is not None:
        raise TokenRejected(*refusal)
    return value


def profile_name(claims: dict) -> str:
    """``profile``, or its alias ``skyprofile`` when ``profile`` is absent."""
    return "profile" if "profile" in claims else "skyprofile"


def _objects(token) -> Refusal | None:
    """``custom`` and ``profile`` (alias ``skyprofile``); null counts as absent."""
    claims = token.claims
    if "profile" in claims and "skyprofile" in claims:
        return Reason.CLAIMS_INVALID, "both profile and skyprofile are present"
    for name in ("custom", profile_name(claims)):
        value = claims.get(name)
        if value is not None:
            refusal = object_refusal(value, name)
            if refusal is not None:
                return refusal
    return None


# -- times --------------------------------------------------------------------------


def _time_types(token) -> Refusal | None:
    claims = token.claims
    for name in _TIME_CLAIMS:
        if name in claims:
            value = claims[name]
            if type(value) is not int or not 0 <= value <= MAX_TIMESTAMP:
                return Reason.CLAIMS_INVALID, f"{name} must be an integer time in seconds, " \
                                              f"not {json.dumps(value)[:40]}"
    return None


def _window(token) -> Refusal | None:
    claims, now, leeway = token.claims, token.now, token.leeway
    exp, nbf, iat = claims.get("exp"), claims.get("nbf"), claims.get("iat")
    if exp is not None and exp + leeway <= now:
        return Reason.TOKEN_EXPIRED, f"expired {now - exp} s ago (leeway {leeway} s)"
    if nbf is not None and nbf > now + leeway:
        return Reason.TOKEN_NOT_YET_VALID, f"nbf is {nbf - now} s in the future"
    if iat is not None and iat > now + leeway:
        return Reason.TOKEN_NOT_YET_VALID, f"iat is {iat - now} s in the future"
    return None


def _window_passed(token) -> str:
    exp = token.claims.get("exp")
    return "no exp claim" if exp is None else f"expires in {exp - token.now} s"


def skip_unless_whole_seconds(token) -> str | None:
    """For the debugger: times that are not whole seconds cannot be compared."""
    return "the time claims are not whole seconds" if _time_types(token) else None


def hide_unless_whole_seconds(token) -> object | None:
    return HIDDEN if _time_types(token) else None


TIME_TYPES = Rule("Time claims are whole seconds", _time_types, "exp, iat, nbf are integers")
VALIDITY_WINDOW = Rule("Validity window", _window, _window_passed,
                       skip=skip_unless_whole_seconds)
OBJECTS = Rule("custom and profile", _objects, "objects within the limits, or absent")
