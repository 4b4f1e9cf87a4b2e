"""Redirect URIs: exact allow-list matching (RFC 8252 loopback ports),
building the redirect back to the client, and where a failed login restarts."""

from __future__ import annotations

import re
from urllib.parse import urlencode, urlsplit

MAX_REDIRECT_URI_LENGTH = 2048
_LOOPBACK_HOSTS = ("127.0.0.1", "[::1]")
_PORT = re.compile(r"^[0-9]{1,5}$")


def _without_loopback_port(uri: str) -> str | None:
    """The URI with its port removed if it is an http loopback URI, else None.

    Works on the text, not on a parsed-and-rebuilt URL, so nothing but the
    port can differ between the candidate and the listed URI.
    """
    for host in _LOOPBACK_HOSTS:
        prefix = "http://" + host
        if not uri.startswith(prefix):
            continue
        rest = uri[len(prefix):]
        if rest.startswith(":"):
            port, sep, path = rest[1:].partition("/")
            if not _PORT.match(port) or not 0 < int(port) < 65536:
                return None
            rest = sep + path
        if rest and not rest.startswith("/") and not rest.startswith("?"):
            return None
        return prefix + rest
    return None


def redirect_uri_allowed(candidate: str | None, allowed: list[str]) -> bool:
    """Exact match against the allow-list; loopback http URIs match any port."""
    if not candidate or len(candidate) > MAX_REDIRECT_URI_LENGTH:
        return False
    if candidate in allowed:
        return True
    portless = _without_loopback_port(candidate)
    if portless is None:
        return False
    return any(_without_loopback_port(listed) == portless for listed in allowed)


def with_query(uri: str, params: dict[str, str | None]) -> str:
    """Append parameters to a URI that may already have a query string."""
    query = urlencode({k: v for k, v in params.items() if v is not None})
    if not query:
        return uri
    base, hash_, fragment = uri.partition("#")
    separator = "&" if urlsplit(base).query or base.endswith("?") else "?"
    if base.endswith(("?", "&")):
        separator = ""
    return base + separator + query + hash_ + fragment


def restart_link(restart_url: str | None, redirect_uris: list[str]) -> str | None:
    """Where a user whose login cannot go on starts again: the app's restart
    URL, else the web origin of its first http(s) redirect URI (a custom
    scheme names no page a browser can show); None when there is neither."""
    if restart_url:
        return restart_url
    for uri in redirect_uris:
        parts = urlsplit(uri)
        if parts.scheme in ("http", "https") and parts.netloc:
            return f"{parts.scheme}://{parts.netloc}/"
    return None
