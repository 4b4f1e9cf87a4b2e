"""SSRF guard for tenant endpoints (docs/protocol.md §5.2;
the switch ``saas.backchannel.allow_private`` in README.md).

An endpoint is vetted once: its scheme, its host (literal IPs in every spelling
an ``inet_aton``-style parser or a browser would accept, IDNA names) and every
address the name resolves to. The caller then connects to the vetted address,
never to the name again, so a second DNS answer cannot point elsewhere.
Messages of ``EndpointRefused`` are shown to tenants: they never echo the URL,
whose query may carry login data.
"""

from __future__ import annotations

import concurrent.futures
import ipaddress
import os
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., list]

SAVE_RESOLVE_TIMEOUT = 5.0
MAX_URL_LENGTH = 2048
_DEFAULT_PORTS = {"http": 80, "https": 443}
_NAME_RE = re.compile(r"^[a-z0-9_-]{1,63}(\.[a-z0-9_-]{1,63})*\.?$")
_NUMERIC_LABEL_RE = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_HEX_RE = re.compile(r"0x[0-9a-f]*")
_OCTAL_RE = re.compile(r"0[0-7]+")
_DECIMAL_RE = re.compile(r"0|[1-9][0-9]*")
_SAFE_PATH_CHARS = "!$%&'()*+,/:;=?@~[]"

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network
_BLOCKED_V4 = tuple(_V4(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
    "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
))
_GLOBAL_UNICAST_V6 = _V6("2000::/3")
_BLOCKED_V6 = tuple(_V6(n) for n in (
    "2001::/23", "2001:db8::/32", "3fff::/20", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
))
_IPV4_COMPATIBLE = _V6("::/96")
_NAT64_WELL_KNOWN = _V6("64:ff9b::/96")
_NAT64_LOCAL = _V6("64:ff9b:1::/48")
_SIX_TO_FOUR = _V6("2002::/16")
_TEREDO = _V6("2001::/32")


class EndpointRefused(ValueError):
    """The endpoint may not be called; the message is a sentence for tenants."""


class EndpointUnresolvable(EndpointRefused):
    """The endpoint's host name did not resolve (in time): a reachability problem."""


@dataclass(frozen=True)
class VettedEndpoint:
    url: str  # normalised URL
    scheme: str
    host: str  # IDNA/lower-case name, or canonical IP (IPv6 without brackets)
    port: int
    path_and_query: str
    address: str  # the vetted IP to connect to

    @property
    def host_header(self) -> str:
        """``Host`` value: the vetted name (not the address), port only when not default."""
        return _authority(self.scheme, self.host, self.port)


def _authority(scheme: str, host: str, port: int) -> str:
    host = f"[{host}]" if ":" in host else host
    return host if _DEFAULT_PORTS[scheme] == port else f"{host}:{port}"


def parse_ipv4_loose(host: str) -> ipaddress.IPv4Address | None:
    """Read every ``inet_aton``/WHATWG spelling of an IPv4 address.

    Decimal ``2130706433``, octal ``0177.0.0.1``, hex ``0x7f.1``, short ``127.1``,
    a trailing dot. None when ``host`` is not such a spelling (or out of range).
    """
    text = host.lower()
    if text.endswith("."):
        text = text[:-1]
    parts = text.split(".")
    if not 1 <= len(parts) <= 4 or len(text) > 64:
        return None
    numbers = []
    for part in parts:
        if _HEX_RE.fullmatch(part):
            numbers.append(int(part[2:], 16) if part[2:] else 0)
        elif _OCTAL_RE.fullmatch(part):
            numbers.append(int(part, 8))
        elif _DECIMAL_RE.fullmatch(part):
            numbers.append(int(part, 10))
        else:
            return None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for index, number in enumerate(head):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _embedded_v4(ip: ipaddress.IPv6Address, shift: int = 0) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address((int(ip) >> shift) & 0xFFFFFFFF)


def is_public_address(ip: IPAddress) -> bool:
    """True only for globally routable unicast; IPv6 forms embedding an IPv4 judge it."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return False
        if ip.ipv4_mapped is not None:
            return is_public_address(ip.ipv4_mapped)
        if ip in _IPV4_COMPATIBLE or ip in _NAT64_WELL_KNOWN:
            return is_public_address(_embedded_v4(ip))
        if ip in _NAT64_LOCAL:
            # The prefix length inside the /48 is the operator's choice: the address
            # sits in the last 32 bits (/96) or around the u-octet (RFC 6052 /48).
            rfc6052 = (((int(ip) >> 64) & 0xFFFF) << 16) | ((int(ip) >> 40) & 0xFFFF)
            return is_public_address(_embedded_v4(ip)) and is_public_address(
                ipaddress.IPv4Address(rfc6052))
        if ip in _SIX_TO_FOUR:
            return is_public_address(_embedded_v4(ip, 80))
        if ip in _TEREDO or ip not in _GLOBAL_UNICAST_V6:
            return False
        if any(ip in net for net in _BLOCKED_V6) or ip.is_site_local:
            return False
    elif any(ip in net for net in _BLOCKED_V4):
        return False
    return not (ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast
                or ip.is_unspecified or ip.is_reserved) and ip.is_global


def _split_netloc(netloc: str) -> tuple[str, str | None]:
    """``host`` and the raw port text of a netloc without userinfo."""
    if netloc.startswith("["):
        end = netloc.find("]")
        if end < 0:
            raise EndpointRefused("The endpoint URL has an unterminated IPv6 address.")
        rest = netloc[end + 1:]
        if rest and not rest.startswith(":"):
            raise EndpointRefused("The endpoint URL's host is not valid.")
        return netloc[: end + 1], (rest[1:] if rest else None)
    host, colon, port = netloc.rpartition(":")
    return (host, port) if colon else (netloc, None)


def _parse_port(text: str | None, scheme: str) -> int:
    if text is None:
        return _DEFAULT_PORTS[scheme]
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 65535:
        raise EndpointRefused("The endpoint URL's port must be a number from 1 to 65535.")
    return int(text)


def _literal_or_name(raw_host: str) -> tuple[str, IPAddress | None]:
    """Normalise the host: a literal IP (any spelling) or a lower-case ASCII name."""
    if raw_host.startswith("["):
        inner = raw_host[1:-1]
        if "%" in inner:
            raise EndpointRefused("The endpoint URL may not use an IPv6 zone identifier.")
        try:
            ip6 = ipaddress.IPv6Address(inner)
        except ValueError:
            raise EndpointRefused("The endpoint URL's IPv6 address is not valid.") from None
        return ip6.compressed, ip6
    host = raw_host
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise EndpointRefused("The endpoint URL's host name is not valid.") from None
    host = host.lower()
    ip4 = parse_ipv4_loose(host)
    if ip4 is not None:
        return str(ip4), ip4
    if not host or len(host) > 253 or not _NAME_RE.match(host):
        raise EndpointRefused("The endpoint URL's host name is not valid.")
    if _NUMERIC_LABEL_RE.match(host.rstrip(".").rsplit(".", 1)[-1]):
        raise EndpointRefused("The endpoint URL's host looks like an IP address but is not one.")
    return host, None


def _resolve_all(host: str, port: int, resolve: Resolver) -> list[IPAddress]:
    try:
        infos = resolve(host, port, 0, socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise EndpointUnresolvable(
            f"The endpoint host {host} could not be resolved ({type(exc).__name__}).") from None
    addresses = []
    for family, _type, _proto, _canon, sockaddr in infos or ():
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        try:
            addresses.append(ipaddress.ip_address(sockaddr[0]))
        except ValueError:
            raise EndpointRefused(
                f"The endpoint host {host} resolves to an unusable address.") from None
    if not addresses:
        raise EndpointUnresolvable(f"The endpoint host {host} could not be resolved (no address).")
    return addresses


def vet_endpoint(url: str, *, allow_private: bool,
                 resolve: Resolver = socket.getaddrinfo) -> VettedEndpoint:
    """Check ``url`` and pick the address to connect to, or raise ``EndpointRefused``."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise EndpointRefused("The endpoint URL is missing or too long.")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F or c == "\\" for c in url):
        raise EndpointRefused("The endpoint URL may not contain spaces, control characters "
                              "or backslashes.")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise EndpointRefused("The endpoint URL is not a valid URL.") from None
    scheme = parts.scheme.lower()
    if scheme != "https" and not (allow_private and scheme == "http"):
        raise EndpointRefused("The endpoint URL must use http or https." if allow_private
                              else "The endpoint URL must use https.")
    if "@" in parts.netloc:
        raise EndpointRefused("The endpoint URL may not contain a user name or password.")
    if "#" in url:
        raise EndpointRefused("The endpoint URL may not contain a fragment (#…).")
    raw_host, port_text = _split_netloc(parts.netloc)
    if not raw_host:
        raise EndpointRefused("The endpoint URL needs a host.")
    port = _parse_port(port_text, scheme)
    host, literal = _literal_or_name(raw_host)
    addresses = [literal] if literal is not None else _resolve_all(host, port, resolve)
    if not allow_private and not all(is_public_address(a) for a in addresses):
        raise EndpointRefused("The endpoint address is not a public internet address."
                              if literal is not None else
                              "The endpoint host resolves to an address that is not public.")
    # One vetted address is used; IPv4 first, as most servers have IPv4 routes.
    chosen = sorted(addresses, key=lambda a: a.version)[0]
    path = quote(parts.path or "/", safe=_SAFE_PATH_CHARS)
    query = quote(parts.query, safe=_SAFE_PATH_CHARS)
    path_and_query = f"{path}?{query}" if "?" in url else path
    return VettedEndpoint(url=f"{scheme}://{_authority(scheme, host, port)}{path_and_query}",
                          scheme=scheme, host=host, port=port, path_and_query=path_and_query,
                          address=str(chosen))


_executor: concurrent.futures.ThreadPoolExecutor | None = None
_executor_pid = 0
_executor_lock = threading.Lock()


def _dns_executor() -> concurrent.futures.ThreadPoolExecutor:
    """A per-process pool (re-created after fork): getaddrinfo itself has no timeout.

    A lookup that outlives its caller's deadline keeps its worker until the system
    resolver gives up; the pool is sized so a few slow tenant zones cannot starve it.
    """
    global _executor, _executor_pid
    with _executor_lock:
        if _executor is None or _executor_pid != os.getpid():
            _executor = concurrent.futures.ThreadPoolExecutor(32, thread_name_prefix="bk-dns")
            _executor_pid = os.getpid()
        return _executor


def bounded_resolver(resolve: Resolver, timeout: float) -> Resolver:
    """Wrap ``resolve`` so a slow DNS answer fails after ``timeout`` seconds."""

    def run(*args):
        future = _dns_executor().submit(resolve, *args)
        try:
            return future.result(timeout=max(timeout, 0.0))
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise socket.gaierror(socket.EAI_AGAIN, "DNS lookup timed out") from None

    return run


def validate_endpoint_for_saving(url: str, *, allow_private: bool,
                                 resolve: Resolver = socket.getaddrinfo) -> str:
    """The checks of a call, at save time; a name that does not resolve is refused too.

    Returns the normalised URL to store (lower-case scheme and host, canonical
    IP spelling, default port dropped, non-ASCII path characters percent-encoded).
    """
    if isinstance(url, str):
        url = url.strip()
    resolver = bounded_resolver(resolve, SAVE_RESOLVE_TIMEOUT)
    return vet_endpoint(url, allow_private=allow_private, resolve=resolver).url
