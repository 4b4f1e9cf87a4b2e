"""Checks of app settings entered on the dashboard, the API or the CLI."""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit

from saas.apps.models import ClientType
from saas.backchannel.addresses import EndpointRefused, validate_endpoint_for_saving

MAX_REDIRECT_URIS = 50
MAX_URI_LENGTH = 2048
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")
_APP_ID = re.compile(r"[a-z0-9]{8}")


class InvalidSetting(ValueError):
    """A setting value is refused; the message is shown to the tenant."""


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    address = _ip(host)
    return address is not None and address.is_loopback


def _any_name_resolves(host, port, *args, **kwargs):
    """Stand-in resolver where private targets are allowed anyway: only the
    URL's shape is checked when saving (the call itself still resolves)."""
    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port or 443))]


def validate_endpoint(url: str, *, allow_private: bool) -> str:
    """A tenant's custom-auth endpoint, checked by the back-channel's SSRF guard.

    In production the name must resolve, and only to public addresses, over
    https. With ``saas.backchannel.allow_private`` (development, tests) http and
    private targets are fine and the name need not resolve yet.
    """
    if len(url.strip()) > MAX_URI_LENGTH:
        raise InvalidSetting("The endpoint URL is too long.")
    resolve = _any_name_resolves if allow_private else socket.getaddrinfo
    try:
        return validate_endpoint_for_saving(url, allow_private=allow_private, resolve=resolve)
    except EndpointRefused as exc:
        raise InvalidSetting(str(exc)) from exc


def validate_redirect_uri(uri: str, what: str = "redirect URI") -> str:
    """An allow-listed redirect URI: absolute, no fragment, compared exactly later.

    ``what`` names the setting in the messages (the restart URL follows the
    same rules and must not be reported as a redirect URI).
    """
    uri = uri.strip()
    if not uri or len(uri) > MAX_URI_LENGTH:
        raise InvalidSetting(f"A {what} must have 1 to 2048 characters.")
    if any(ord(c) < 0x21 or c in "\\" for c in uri):
        raise InvalidSetting(f"The {what} {uri!r} contains spaces or odd characters.")
    parts = urlsplit(uri)
    if not parts.scheme or not _SCHEME.match(parts.scheme):
        raise InvalidSetting(f"The {what} {uri!r} needs a scheme.")
    if parts.fragment or "#" in uri:
        raise InvalidSetting(f"The {what} {uri!r} must not contain a fragment.")
    if parts.scheme in ("http", "https"):
        if not parts.hostname:
            raise InvalidSetting(f"The {what} {uri!r} needs a host.")
        if parts.username or parts.password:
            raise InvalidSetting(f"The {what} {uri!r} must not contain credentials.")
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            raise InvalidSetting(f"The {what} {uri!r} must use https (http is for loopback).")
    elif parts.scheme in ("javascript", "data", "file", "vbscript"):
        raise InvalidSetting(f"The {what} scheme {parts.scheme!r} is not allowed.")
    return uri


def validate_restart_url(url: str) -> str:
    """Where users start a failed login again: the rules of a redirect URI."""
    return validate_redirect_uri(url, what="restart URL")


def validate_redirect_uris(uris: list[str], what: str = "redirect URI") -> list[str]:
    cleaned = [validate_redirect_uri(u, what) for u in uris if u.strip()]
    if len(cleaned) > MAX_REDIRECT_URIS:
        raise InvalidSetting(f"At most {MAX_REDIRECT_URIS} {what}s.")
    return list(dict.fromkeys(cleaned))


def validate_post_logout_redirect_uris(uris: list[str]) -> list[str]:
    """Where end-session may send users back: the rules of redirect URIs."""
    return validate_redirect_uris(uris, what="post-logout redirect URI")


def validate_client_type(value: object) -> str:
    """An OpenID Connect client type: ``public`` or ``confidential``."""
    if not isinstance(value, str) or value not in {t.value for t in ClientType}:
        raise InvalidSetting("client_type must be public or confidential.")
    return value


def is_app_id(value: str) -> bool:
    return _APP_ID.fullmatch(value) is not None


def validate_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise InvalidSetting("The name must have 1 to 200 characters.")
    return name
