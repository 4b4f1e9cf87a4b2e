"""Which host a login runs on, and whether its browser-binding cookie can come back.

A browser keeps cookies per host: the binding cookie set by ``authorize`` (or
the hosted form) on ``127.0.0.1:6543`` is never sent to ``localhost:6543``.
The tenant endpoint sends the user back to ``saas.public_base_url``, so a login
started on any other host loses its cookie on the way back. The callback tells
that apart from a genuine "other browser" (``host_mismatch`` instead of
``state_not_bound``) by comparing the host the login started on, the host the
request came to and the public base URL's host.
"""

from __future__ import annotations

from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _authority(host: str, port: int | None, scheme: str) -> str:
    host = f"[{host}]" if ":" in host else host  # an IPv6 address, as in a URL
    return f"{host.lower()}:{port or _DEFAULT_PORTS.get(scheme, 80)}"


def request_host(request) -> str:
    """``host:port`` of the request as the browser addressed it (its Host header)."""
    parts = urlsplit(f"//{request.host}")
    try:
        port = parts.port
    except ValueError:  # a malformed Host header: compare it as it came
        return request.host.lower()
    return _authority(parts.hostname or "", port, request.scheme)


def public_host(request) -> str:
    """``host:port`` of ``saas.public_base_url`` (where tenants send users back)."""
    parts = urlsplit(request.registry.settings["saas.public_base_url"])
    return _authority(parts.hostname or "", parts.port, parts.scheme)


def host_mismatch(request, started_on: str | None) -> str | None:
    """Why the binding cookie could not come back with this request, or None.

    ``started_on`` is the host recorded when the login started (None for a
    login recorded before hosts were).
    """
    here, public = request_host(request), public_host(request)
    base_url = request.registry.settings["saas.public_base_url"]
    if started_on and started_on != here:
        return (f"this login was started on {started_on} but came back to {here}; a browser "
                f"sends a host's cookies to that host only: open Bridgekeeper at {base_url} "
                "(saas.public_base_url) to start the login")
    if here != public:
        return (f"this request came to {here}, but Bridgekeeper's saas.public_base_url is "
                f"{base_url}; a browser sends a host's cookies to that host only: open "
                "Bridgekeeper at its public base URL, or set saas.public_base_url to the URL "
                "you use")
    return None
