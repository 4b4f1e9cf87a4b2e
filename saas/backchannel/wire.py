"""One HTTP/1.x exchange over a socket, every step under one deadline.

The tenant call (``client``) and the webhook sender (``saas.webhooks.sender``)
both connect to a vetted address, verify TLS and read a bounded response head
with the time that is left; these are the steps they share.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time

from saas.backchannel.addresses import VettedEndpoint

MAX_HEAD = 16 * 1024
RECV_SIZE = 8192


class DeadlineExceeded(TimeoutError):
    """The total deadline passed."""


class MalformedResponse(Exception):
    """The tenant answered something that is not an HTTP/1.x response."""


def remaining(deadline_at: float) -> float:
    left = deadline_at - time.monotonic()
    if left <= 0:
        raise DeadlineExceeded("deadline exceeded")
    return left


def tls_context() -> ssl.SSLContext:
    """Certificate and host name verification with the system's trust store."""
    return ssl.create_default_context()


def connect(endpoint: VettedEndpoint, deadline_at: float) -> socket.socket:
    """A connected (and, for https, verified TLS) socket to the vetted address."""
    family = socket.AF_INET6 if ipaddress.ip_address(endpoint.address).version == 6 \
        else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(remaining(deadline_at))
        sock.connect((endpoint.address, endpoint.port))
        if endpoint.scheme == "https":
            tls = tls_context().wrap_socket(sock, server_hostname=endpoint.host,
                                             do_handshake_on_connect=False)
            sock = tls
            tls.settimeout(remaining(deadline_at))
            tls.do_handshake()
        return sock
    except BaseException:
        sock.close()
        raise


def recv(sock: socket.socket, deadline_at: float, size: int = RECV_SIZE) -> bytes:
    sock.settimeout(remaining(deadline_at))
    return sock.recv(size)


def read_head(sock: socket.socket, deadline_at: float) -> tuple[bytes, bytes]:
    """Status line and headers, and whatever body bytes came with them."""
    buf = b""
    while True:
        for marker in (b"\r\n\r\n", b"\n\n"):
            index = buf.find(marker)
            if index >= 0:
                return buf[:index], buf[index + len(marker):]
        if len(buf) > MAX_HEAD:
            raise MalformedResponse("response headers too large")
        chunk = recv(sock, deadline_at)
        if not chunk:
            raise ConnectionResetError("closed before the response headers" if buf
                                       else "closed without a response")
        buf += chunk


def parse_head(head: bytes) -> tuple[int, dict[str, list[str]]]:
    lines = head.decode("latin-1").replace("\r\n", "\n").split("\n")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if version not in ("HTTP/1.0", "HTTP/1.1") or not (code.isascii() and code.isdigit()) \
            or rest[3:4] not in ("", " "):
        raise MalformedResponse("not an HTTP/1.x status line")
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise MalformedResponse("malformed header line")
        headers.setdefault(name.lower(), []).append(value.strip())
    return int(code), headers
