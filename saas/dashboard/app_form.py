"""What the New app form and the settings form share: every setting checked on
its own, so that one page lists every error next to its field; messages
without API field names; and the summary at the top that links to each."""

from __future__ import annotations

from typing import Any

from saas.apps.services import checked_settings
from saas.apps.validation import InvalidSetting, validate_redirect_uri

# Where the error summary links each setting's error to (the field's id, its label).
FIELDS = {
    "name": ("name", "Name"),
    "custom_auth_endpoint": ("custom_auth_endpoint", "Custom-auth endpoint"),
    "redirect_uris": ("redirect_uris", "Redirect URIs"),
    "restart_url": ("restart_url", "Restart URL"),
    "access_token_ttl": ("access_token_ttl", "Access-token lifetime"),
    "refresh_token_ttl": ("refresh_token_ttl", "Refresh-token lifetime"),
    "backchannel": ("backchannel", "Back-channel logins"),
    "custom_token_enabled": ("custom_token_enabled", "Custom tokens"),
    "require_bound_tokens": ("require_bound_tokens", "Require bound tokens"),
    "hosted_form": ("hosted_title", "Hosted sign-in form"),
    "client_type": ("client_type", "Client type"),
    "pkce_required": ("pkce_required", "Require PKCE"),
    "post_logout_redirect_uris": ("post_logout_redirect_uris", "Post-logout redirect URIs"),
    "oidc_custom_claim": ("oidc_custom_claim", "Custom data at UserInfo"),
}
URI_LISTS = ("redirect_uris", "post_logout_redirect_uris")


def uri_lines(text: str) -> list[str]:
    """The redirect URIs of the textarea, one per non-blank line."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def uri_errors(text: str, what: str = "redirect URI") -> list[str]:
    """A message for every bad line of a URI list's textarea."""
    errors = []
    for line in uri_lines(text):
        try:
            validate_redirect_uri(line, what)
        except InvalidSetting as exc:
            errors.append(str(exc))
    return errors


def base_candidates(values: dict[str, Any], errors: dict[str, Any]) -> dict[str, Any]:
    """The fields both forms have, in the shapes ``checked_settings`` takes;
    bad redirect URI lines land in ``errors`` instead."""
    candidates: dict[str, Any] = {
        "name": values["name"],
        "custom_auth_endpoint": values["custom_auth_endpoint"] or None,
        "restart_url": values["restart_url"] or None,
    }
    bad_uris = uri_errors(values["redirect_uris"])
    if bad_uris:
        errors["redirect_uris"] = bad_uris
    else:
        candidates["redirect_uris"] = uri_lines(values["redirect_uris"])
    return candidates


def check_each(candidates: dict[str, Any], errors: dict[str, Any], *, allow_private: bool
               ) -> dict[str, Any]:
    """The candidates that pass, checked one by one; each refusal lands in
    ``errors`` under its setting (a list of messages for the URI lists)."""
    settings: dict[str, Any] = {}
    for name, value in candidates.items():
        try:
            settings.update(checked_settings({name: value}, allow_private=allow_private))
        except InvalidSetting as exc:
            message = readable(name, str(exc))
            errors[name] = [message] if name in URI_LISTS else message
    return settings


def readable(name: str, message: str) -> str:
    # The services name the API field ("access_token_ttl must be …"); the form
    # shows the message under the field already.
    if message.startswith(name + " "):
        rest = message[len(name) + 1:]
        return rest[:1].upper() + rest[1:]
    return message


def summary(errors: dict[str, Any]) -> list[tuple[str, str]]:
    """(field id, label) of each setting with an error, in the form's order."""
    return [FIELDS[name] for name in FIELDS if name in errors]
