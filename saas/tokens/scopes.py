"""OpenID Connect scopes and the standard claims each one releases (docs/oidc.md).

Granted scopes are what the client asked for that we support, in a fixed
order; unknown scopes are ignored (OIDC Core §3.1.2.1 lets a provider do so).
A login without ``scope`` (every client older than OIDC) grants nothing and
gets no ID token.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

OPENID = "openid"
PROFILE_SCOPES = ("profile", "email")  # the scopes that release claims of the profile
SUPPORTED_SCOPES = ("openid", "profile", "email", "offline_access")

PROFILE_CLAIMS = ("name", "given_name", "family_name", "preferred_username", "picture",
                  "locale", "zoneinfo", "updated_at")
EMAIL_CLAIMS = ("email", "email_verified")
_RELEASED = {"profile": PROFILE_CLAIMS, "email": EMAIL_CLAIMS}
_STRING_CLAIMS = frozenset(PROFILE_CLAIMS) - {"updated_at"} | {"email"}


def granted_scopes(requested: str | None) -> tuple[str, ...]:
    """The supported part of a space-separated ``scope`` parameter, in our order."""
    asked = set((requested or "").split())
    return tuple(scope for scope in SUPPORTED_SCOPES if scope in asked)


def scope_string(scopes: Iterable[str]) -> str:
    return " ".join(scopes)


def standard_claims(profile: dict[str, Any] | None, scopes: Iterable[str]) -> dict[str, Any]:
    """The claims the scopes release, taken from the user's ``profile`` object
    where present under their standard names and of their standard types
    (a string, ``email_verified`` a boolean, ``updated_at`` whole seconds)."""
    if not profile:
        return {}
    claims: dict[str, Any] = {}
    for scope in scopes:
        for name in _RELEASED.get(scope, ()):
            value = profile.get(name)
            if _fits(name, value):
                claims[name] = value
    return claims


def _fits(name: str, value: Any) -> bool:
    if name in _STRING_CLAIMS:
        return isinstance(value, str) and value != ""
    if name == "email_verified":
        return isinstance(value, bool)
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
