"""SSRF guard: every address form of the issue is refused, public ones pass.

A fake resolver maps test names to chosen addresses: no real DNS is used.
"""

from __future__ import annotations

import ipaddress
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from saas.backchannel.addresses import (
    EndpointRefused,
    EndpointUnresolvable,
    is_public_address,
    parse_ipv4_loose,
    validate_endpoint_for_saving,
    vet_endpoint,
)

NAMES = {
    "example.com": ["93.184.216.34"],
    "public.test": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
    "loopback.test": ["127.0.0.1"],
    "mixed.test": ["93.184.216.34", "10.0.0.7"],
    "mixed6.test": ["2606:2800:220:1:248:1893:25c8:1946", "fd00::1"],
    "metadata.test": ["169.254.169.254"],
    "localhost": ["127.0.0.1", "::1"],
    "x": ["93.184.216.34"],
}


def fake_resolve(host, port, family=0, type=0, proto=0, flags=0):
    """``getaddrinfo`` over ``NAMES``; unknown names fail as NXDOMAIN would."""
    if host not in NAMES:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    result = []
    for address in NAMES[host]:
        fam = socket.AF_INET6 if ":" in address else socket.AF_INET
        sockaddr = (address, port, 0, 0) if fam == socket.AF_INET6 else (address, port)
        result.append((fam, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr))
    return result


def vet(url: str, allow_private: bool = False):
    return vet_endpoint(url, allow_private=allow_private, resolve=fake_resolve)


# (url, what the refusal says): the reason matters, not only the refusal.
NOT_PUBLIC = "not a public"
RESOLVES = "resolves to an address that is not public"
HTTPS = "must use https"
REFUSED = [
    ("http://127.0.0.1/", HTTPS),
    ("https://127.0.0.1/", NOT_PUBLIC),
    ("https://2130706433/", NOT_PUBLIC),
    ("https://0177.0.0.1/", NOT_PUBLIC),
    ("https://0x7f000001/", NOT_PUBLIC),
    ("https://0x7f.1/", NOT_PUBLIC),
    ("https://127.1/", NOT_PUBLIC),
    ("https://127.0.0.1./", NOT_PUBLIC),
    ("https://10.0.0.1/", NOT_PUBLIC),
    ("https://172.16.5.4/", NOT_PUBLIC),
    ("https://192.168.1.1/", NOT_PUBLIC),
    ("https://169.254.169.254/latest/meta-data", NOT_PUBLIC),
    ("https://100.64.0.1/", NOT_PUBLIC),
    ("https://0.0.0.0/", NOT_PUBLIC),
    ("https://0/", NOT_PUBLIC),
    ("https://224.0.0.1/", NOT_PUBLIC),
    ("https://255.255.255.255/", NOT_PUBLIC),
    ("https://198.18.0.1/", NOT_PUBLIC),
    ("https://192.0.2.1/", NOT_PUBLIC),
    ("https://240.0.0.1/", NOT_PUBLIC),
    ("https://[::1]/", NOT_PUBLIC),
    ("https://[::]/", NOT_PUBLIC),
    ("https://[fe80::1]/", NOT_PUBLIC),
    ("https://[fe80::1%25eth0]/", "zone identifier"),
    ("https://[fc00::1]/", NOT_PUBLIC),
    ("https://[fd12:3456::1]/", NOT_PUBLIC),
    ("https://[fec0::1]/", NOT_PUBLIC),
    ("https://[ff02::1]/", NOT_PUBLIC),
    ("https://[2001:db8::1]/", NOT_PUBLIC),
    ("https://[::ffff:127.0.0.1]/", NOT_PUBLIC),
    ("https://[::ffff:7f00:1]/", NOT_PUBLIC),
    ("https://[::ffff:a9fe:a9fe]/", NOT_PUBLIC),
    ("https://[::127.0.0.1]/", NOT_PUBLIC),
    ("https://[64:ff9b::7f00:1]/", NOT_PUBLIC),
    ("https://[64:ff9b::a00:1]/", NOT_PUBLIC),
    ("https://[64:ff9b:1::a00:1]/", NOT_PUBLIC),
    ("https://[2002:7f00:1::]/", NOT_PUBLIC),
    ("https://[2002:a00:1::1]/", NOT_PUBLIC),
    ("https://[2001:0::1]/", NOT_PUBLIC),
    ("https://loopback.test/", RESOLVES),
    ("https://metadata.test/latest/meta-data", RESOLVES),
    ("https://mixed.test/", RESOLVES),
    ("https://mixed6.test/", RESOLVES),
    ("https://localhost/", RESOLVES),
    ("https://１２７.０.０.１/", NOT_PUBLIC),
    ("https://08.0.0.1/", "looks like an IP address"),
    ("https://1.2.3.4.5/", "looks like an IP address"),
    ("https://example.123/", "looks like an IP address"),
    ("ftp://example.com/", HTTPS),
    ("file:///etc/passwd", HTTPS),
    ("gopher://x/", HTTPS),
    ("javascript:alert(1)", HTTPS),
    ("http://example.com/", HTTPS),
    ("https://user:pw@example.com/", "user name or password"),
    ("https://user@example.com/", "user name or password"),
    ("https://example.com@127.0.0.1/", "user name or password"),
    ("https:///nohost", "needs a host"),
    ("https://", "needs a host"),
    ("https://nonexistent.invalid/", "could not be resolved"),
    ("https://example.com:0/", "port"),
    ("https://example.com:65536/", "port"),
    ("https://example.com:+443/", "port"),
    ("https://example.com:/", "port"),
    ("https://exa mple.com/", "spaces, control characters"),
    ("https://example.com/a\r\nX-Injected: 1", "spaces, control characters"),
    ("https://example.com\\@127.0.0.1/", "spaces, control characters"),
    ("https://%31%32%37.0.0.1/", "host name is not valid"),
    ("https://example.com/#frag", "fragment"),
    ("", "missing"),
]


@pytest.mark.parametrize(("url", "reason"), REFUSED)
def test_refused_in_production(url, reason):
    with pytest.raises(EndpointRefused) as info:
        vet(url)
    message = str(info.value)
    assert reason in message
    assert message and "\n" not in message
    assert "?" not in message  # the URL (and its query) is never echoed


ACCEPTED = [
    ("https://93.184.216.34/x?a=1", "93.184.216.34", "https://93.184.216.34/x?a=1"),
    ("https://[2606:2800:220:1:248:1893:25c8:1946]/", "2606:2800:220:1:248:1893:25c8:1946",
     "https://[2606:2800:220:1:248:1893:25c8:1946]/"),
    ("https://example.com/auth?x=1", "93.184.216.34", "https://example.com/auth?x=1"),
    ("HTTPS://Public.TEST:443/auth", "93.184.216.34", "https://public.test/auth"),
    ("https://[64:ff9b::5db8:d822]/", "64:ff9b::5db8:d822", "https://[64:ff9b::5db8:d822]/"),
    ("https://0x5db8d822:8443", "93.184.216.34", "https://93.184.216.34:8443/"),
]


@pytest.mark.parametrize(("url", "address", "normalised"), ACCEPTED)
def test_accepted_in_production(url, address, normalised):
    endpoint = vet(url)
    assert endpoint.address == address
    assert endpoint.url == normalised
    assert endpoint.scheme == "https"


def test_vetted_endpoint_keeps_the_name_for_host_and_tls():
    endpoint = vet("https://example.com:8443/cb?flow=custom")
    assert (endpoint.host, endpoint.port, endpoint.address) == ("example.com", 8443,
                                                                "93.184.216.34")
    assert endpoint.path_and_query == "/cb?flow=custom"
    assert endpoint.host_header == "example.com:8443"


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/auth", "http://localhost:8000/",
                                 "https://10.0.0.1/", "http://[::1]:8000/", "https://mixed.test/"])
def test_allow_private_accepts_local_endpoints(url):
    endpoint = vet(url, allow_private=True)
    assert endpoint.scheme in ("http", "https")


def test_allow_private_prefers_ipv4_of_a_name():
    assert vet("http://localhost:8000/", allow_private=True).address == "127.0.0.1"


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/", "file:///etc/passwd", "gopher://x/",
                                 "http://user:pw@localhost/", "http:///nohost"])
def test_allow_private_still_refuses_other_schemes_and_forms(url):
    with pytest.raises(EndpointRefused):
        vet(url, allow_private=True)


def test_dns_failure_is_a_distinct_refusal():
    with pytest.raises(EndpointUnresolvable, match="could not be resolved"):
        vet("https://nonexistent.invalid/")


def test_validate_for_saving_normalises_and_refuses():
    assert validate_endpoint_for_saving(" HTTPS://Example.COM/auth ", allow_private=False,
                                        resolve=fake_resolve) == "https://example.com/auth"
    with pytest.raises(EndpointRefused, match="could not be resolved"):
        validate_endpoint_for_saving("https://nonexistent.invalid/", allow_private=False,
                                     resolve=fake_resolve)
    with pytest.raises(EndpointRefused, match="https"):
        validate_endpoint_for_saving("http://example.com/", allow_private=False,
                                     resolve=fake_resolve)


def test_validate_for_saving_bounds_a_hanging_resolver(monkeypatch):
    import threading

    import saas.backchannel.addresses as addresses

    release = threading.Event()

    def hanging(*args):
        release.wait(5)
        raise socket.gaierror(socket.EAI_AGAIN, "late")

    monkeypatch.setattr(addresses, "SAVE_RESOLVE_TIMEOUT", 0.2)
    try:
        with pytest.raises(EndpointUnresolvable, match="could not be resolved"):
            validate_endpoint_for_saving("https://slow.test/", allow_private=False,
                                         resolve=hanging)
    finally:
        release.set()


@pytest.mark.parametrize(("spelling", "expected"), [
    ("2130706433", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"), ("0x7f.1", "127.0.0.1"),
    ("127.1", "127.0.0.1"), ("0x7F000001", "127.0.0.1"), ("127.0.0.1.", "127.0.0.1"),
    ("10.1.256", "10.1.1.0"), ("017700000001", "127.0.0.1"),
    ("0", "0.0.0.0"),  # noqa: S104 - an expected parse result, not a bind address
    ("example.com", None), ("08.1.1.1", None), ("1.2.3.4.5", None), ("256.1.1.1", None),
    ("1.2.3.4294967296", None), ("0x7_f.1", None), ("+1.2.3.4", None), ("", None),
    ("1..2", None), ("١٢٧.0.0.1", None),
])
def test_parse_ipv4_loose(spelling, expected):
    result = parse_ipv4_loose(spelling)
    assert (str(result) if result else None) == expected


ipv4s = st.integers(min_value=0, max_value=2**32 - 1).map(ipaddress.IPv4Address)


@given(ipv4s)
def test_loose_spellings_read_back(ip):
    octets = ip.packed
    assert parse_ipv4_loose(str(int(ip))) == ip
    assert parse_ipv4_loose(".".join(f"0{b:o}" for b in octets)) == ip
    assert parse_ipv4_loose(f"0x{int(ip):x}") == ip
    assert parse_ipv4_loose(".".join(f"0x{b:x}" for b in octets)) == ip
    assert parse_ipv4_loose(f"{octets[0]}.{int.from_bytes(octets[1:], 'big')}") == ip


@given(ipv4s)
def test_embedded_ipv4_forms_are_judged_like_the_ipv4(ip):
    value = int(ip)
    mapped = ipaddress.IPv6Address((0xFFFF << 32) | value)
    six_to_four = ipaddress.IPv6Address((0x2002 << 112) | (value << 80))
    nat64 = ipaddress.IPv6Address((0x0064FF9B << 96) | value)
    expected = is_public_address(ip)
    assert is_public_address(mapped) == expected
    assert is_public_address(six_to_four) == expected
    assert is_public_address(nat64) == expected


@given(ipv4s)
def test_refused_ipv4_is_refused_in_every_url_spelling(ip):
    if is_public_address(ip):
        return
    for host in (str(ip), str(int(ip)), f"0x{int(ip):x}", f"[::ffff:{ip}]",
                 f"[64:ff9b::{ip}]"):
        with pytest.raises(EndpointRefused):
            vet(f"https://{host}/")
