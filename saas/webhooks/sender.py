"""One webhook POST, through the back-channel's SSRF guard and socket handling.

The URL is vetted by ``saas.backchannel.addresses.vet_endpoint`` at every send
(private and loopback targets refused unless ``saas.backchannel.allow_private``)
and the request goes to the vetted address with the same connect/TLS/read
steps as the tenant call (``saas.backchannel.wire``), under one total
deadline. Redirects are not followed: only a 2xx answer counts as delivered.
"""

from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass

from saas.backchannel.addresses import (
    EndpointRefused,
    EndpointUnresolvable,
    Resolver,
    bounded_resolver,
    vet_endpoint,
)
from saas.backchannel.wire import (
    DeadlineExceeded,
    MalformedResponse,
    connect,
    parse_head,
    read_head,
    recv,
    remaining,
)
from saas.webhooks.signing import HEADER

USER_AGENT = "Bridgekeeper-Webhooks/1"
SNIPPET_CHARS = 500  # of the receiver's answer, kept for the delivery log
ERROR_CHARS = 250


@dataclass(frozen=True)
class SendResult:
    ok: bool
    status_code: int | None
    latency_ms: int
    snippet: str | None = None
    error: str | None = None


def _request(host_header: str, path: str, body: bytes, signature: str, event_id: str) -> bytes:
    head = (f"POST {path} HTTP/1.1\r\n"
            f"Host: {host_header}\r\n"
            f"User-Agent: {USER_AGENT}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"{HEADER}: {signature}\r\n"
            f"Bridgekeeper-Event-Id: {event_id}\r\n"
            "Connection: close\r\n\r\n")
    return head.encode("ascii") + body


def _snippet(sock: socket.socket, deadline_at: float, early: bytes, status: int,
             headers: dict[str, list[str]]) -> str:
    """The start of the answer's body; stops at its Content-Length (a receiver that
    keeps the connection open must not hold the worker until the deadline)."""
    if status in (204, 304) or status < 200:
        return ""
    lengths = headers.get("content-length", [])
    wanted = SNIPPET_CHARS
    if len(lengths) == 1 and lengths[0].isdigit():
        wanted = min(wanted, int(lengths[0]))
    data = early
    try:
        while len(data) < wanted:
            chunk = recv(sock, deadline_at, 1024)
            if not chunk:
                break
            data += chunk
    except (OSError, DeadlineExceeded):
        pass  # the status decided already; a slow body only shortens the snippet
    return data[:SNIPPET_CHARS].decode("utf-8", "replace")


def post_event(url: str, body: bytes, signature: str, event_id: str, *, allow_private: bool,
               timeout: float, resolve: Resolver = socket.getaddrinfo) -> SendResult:
    """POST ``body``; never raises for network trouble (the result says what happened)."""
    started = time.monotonic()
    deadline_at = started + timeout

    def result(ok: bool, status: int | None = None, snippet: str | None = None,
               error: str | None = None) -> SendResult:
        return SendResult(ok, status, int((time.monotonic() - started) * 1000),
                          snippet, error[:ERROR_CHARS] if error else None)

    try:
        vetted = vet_endpoint(url, allow_private=allow_private,
                              resolve=bounded_resolver(resolve, timeout))
    except EndpointUnresolvable as exc:
        return result(False, error=f"dns: {exc}")
    except EndpointRefused as exc:
        return result(False, error=f"endpoint refused: {exc}")
    try:
        sock = connect(vetted, deadline_at)
        try:
            sock.settimeout(remaining(deadline_at))
            sock.sendall(_request(vetted.host_header, vetted.path_and_query, body, signature,
                                  event_id))
            head, early = read_head(sock, deadline_at)
            status, headers = parse_head(head)
            snippet = _snippet(sock, deadline_at, early, status, headers)
        finally:
            sock.close()
    except MalformedResponse as exc:
        return result(False, error=f"malformed response: {exc}")
    except ssl.SSLError as exc:
        return result(False, error=f"tls: {exc.reason or type(exc).__name__}")
    except (DeadlineExceeded, TimeoutError):
        return result(False, error=f"timed out after {timeout:g} s")
    except OSError as exc:
        return result(False, error=f"{type(exc).__name__}: {exc.strerror or exc}")
    ok = 200 <= status < 300
    return result(ok, status, snippet or None, None if ok else f"HTTP {status}")
