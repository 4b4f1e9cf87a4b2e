"""The client's address behind trusted proxies (``saas.trusted_proxies``).

Rate limits and every audit record key on it, so it is its own concern, not
a part of the rate limiter: which proxies to trust, and how to walk
X-Forwarded-For from the right past them.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from typing import Any

DEFAULT_TRUSTED_PROXIES = ("127.0.0.1", "::1")


@functools.lru_cache(maxsize=16)
def _trusted(proxies: tuple[str, ...]) -> tuple[bool, tuple[Any, ...]]:
    return "*" in proxies, tuple(ipaddress.ip_network(p, strict=False)
                                 for p in proxies if p != "*")


def proxy_list(value: Any) -> tuple[str, ...]:
    """Coerce ``saas.trusted_proxies``: addresses or networks, or ``*``; fails at startup."""
    items = value if isinstance(value, list | tuple) else str(value).replace(",", " ").split()
    proxies = tuple(str(item).strip() for item in items if str(item).strip())
    _trusted(proxies)  # raises ValueError on a malformed entry
    return proxies


def _parse(addr: str) -> Any:
    """An address from REMOTE_ADDR or X-Forwarded-For, ports and brackets removed."""
    addr = addr.strip()
    if addr.startswith("["):
        addr = addr[1:].partition("]")[0]
    elif addr.count(":") == 1:
        addr = addr.partition(":")[0]
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return None
    return (ip.ipv4_mapped or ip) if ip.version == 6 else ip


def is_trusted_proxy(remote_addr: str, trusted_proxies: tuple[str, ...]) -> bool:
    """Whether the peer ``remote_addr`` is one of ``trusted_proxies`` (a unix-socket
    peer, with no address, is local and trusted)."""
    if not remote_addr:
        return True
    trust_all, networks = _trusted(trusted_proxies)
    ip = _parse(remote_addr)
    return trust_all or (ip is not None and any(ip in net for net in networks))


def client_ip(request, trusted_proxies: Iterable[str] | None = None) -> str:
    """The client's address for rate limits: IPv4 as is, IPv6 as its /64 network.

    Not ``request.client_addr``: WebOb returns the *leftmost* X-Forwarded-For
    entry whoever sent it, and gunicorn's ``forwarded_allow_ips`` does not
    strip or rewrite that header (it only governs scheme and underscore
    headers). So we start at REMOTE_ADDR and walk X-Forwarded-For from the
    right while the hop is a trusted proxy (``saas.trusted_proxies``, same
    syntax as gunicorn's FORWARDED_ALLOW_IPS; a unix-socket peer is local and
    trusted). An IPv6 host owns a whole /64, so it is limited as one client.
    """
    if trusted_proxies is None:
        settings = getattr(getattr(request, "registry", None), "settings", None) or {}
        trusted_proxies = settings.get("saas.trusted_proxies", DEFAULT_TRUSTED_PROXIES)
    environ = request.environ
    return _client_ip(environ.get("HTTP_X_FORWARDED_FOR", ""), environ.get("REMOTE_ADDR") or "",
                      tuple(trusted_proxies))


# A login request asks for its client's address several times (rate limits,
# every audit record) and parsing addresses showed up at ~4 % of its CPU; the
# answer depends only on these three strings.
@functools.lru_cache(maxsize=4096)
def _client_ip(forwarded_for: str, remote_addr: str, trusted_proxies: tuple[str, ...]) -> str:
    trust_all, networks = _trusted(trusted_proxies)
    client = None
    for hop in reversed([*forwarded_for.split(","), remote_addr]):
        ip = _parse(hop)
        if ip is None:
            if hop.strip():
                break  # garbage passed on by a trusted proxy: keep that proxy's address
            continue
        client = ip
        if not trust_all and not any(ip in net for net in networks):
            break
    if client is None:
        return "unknown"
    if client.version == 6:
        return str(ipaddress.IPv6Network((client, 64), strict=False))
    return str(client)
