"""One server-to-server call to a tenant endpoint (docs/protocol.md §5.2).

The request goes to the vetted address (``addresses.vet_endpoint``) with the
tenant's name in ``Host`` and in TLS (SNI and certificate check), redirects are
never followed (the ``Location`` is only parsed), at most ``MAX_BODY`` bytes of
body are read, and one deadline covers DNS, connect, TLS, send, headers and
body: every socket operation gets the time that is left, so a tenant trickling
bytes cannot stretch it. The URL is never logged nor put in ``detail``: its
query carries the login data; neither is the body, which may echo it.
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

from saas.backchannel.addresses import (
    EndpointRefused,
    EndpointUnresolvable,
    Resolver,
    VettedEndpoint,
    bounded_resolver,
    vet_endpoint,
)
from saas.backchannel.wire import (
    RECV_SIZE,
    DeadlineExceeded,
    MalformedResponse,
    connect,
    parse_head,
    read_head,
    recv,
    remaining,
)

log = logging.getLogger(__name__)

TOTAL_DEADLINE = 5.0
MAX_BODY = 64 * 1024
USER_AGENT = "Bridgekeeper-Backchannel/1"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class Verdict:
    kind: str  # "token" | "denied" | "error" | "unreachable"
    token: str | None = None
    state: str | None = None
    error: str | None = None  # the tenant's error code, e.g. "access_denied"
    error_description: str | None = None
    status: int | None = None  # HTTP status the tenant answered
    detail: str = ""  # short text for diagnostics (never the token)
    cause: str | None = None  # why it was unreachable: a key of UNREACHABLE_CAUSES


# Why a tenant was unreachable, as the end of "the login endpoint …" sentences:
# a refused port or a name that does not resolve is not a timeout.
UNREACHABLE_CAUSES = {
    "timeout": "the login endpoint did not answer in time",
    "refused": "the login endpoint refused the connection",
    "dns": "the host name of the login endpoint did not resolve",
    "tls": "the TLS handshake with the login endpoint failed",
    "closed": "the login endpoint closed the connection without an answer",
    "network": "the login endpoint could not be reached",
}


def unreachable_description(verdict: Verdict) -> str:
    """What went wrong with an unreachable tenant, in words for people."""
    return UNREACHABLE_CAUSES.get(verdict.cause or "", UNREACHABLE_CAUSES["network"])


def with_params(endpoint: str, params: dict[str, str]) -> str:
    """Append ``params`` to the endpoint's query (``&`` when it already has one)."""
    if not params:
        return endpoint
    encoded = urlencode(params)
    if "?" not in endpoint:
        return f"{endpoint}?{encoded}"
    return f"{endpoint}{'' if endpoint.endswith(('?', '&')) else '&'}{encoded}"


def _read_body(sock: socket.socket, deadline_at: float, already: int,
               headers: dict[str, list[str]]) -> tuple[int, bool]:
    """Drain at most ``MAX_BODY`` bytes; returns (bytes read, capped)."""
    lengths = headers.get("content-length", [])
    expected = int(lengths[0]) if len(lengths) == 1 and lengths[0].isdigit() else None
    total = already
    try:
        while total < MAX_BODY and (expected is None or total < expected):
            chunk = recv(sock, deadline_at, min(RECV_SIZE, MAX_BODY - total))
            if not chunk:
                break
            total += len(chunk)
            if chunk.endswith(b"0\r\n\r\n") and "chunked" in ",".join(
                    headers.get("transfer-encoding", [])).lower():
                break
    except (OSError, DeadlineExceeded):
        pass  # the verdict is in the headers; a slow or cut body does not change it
    return min(total, MAX_BODY), total >= MAX_BODY and (expected is None or expected > MAX_BODY)


def _exchange(endpoint: VettedEndpoint, deadline_at: float) -> tuple[int, dict, str]:
    """Send the GET, read the head and a capped body; never follows anything."""
    request = (f"GET {endpoint.path_and_query} HTTP/1.1\r\n"
               f"Host: {endpoint.host_header}\r\n"
               f"User-Agent: {USER_AGENT}\r\n"
               "Accept: */*\r\n"
               "Connection: close\r\n\r\n").encode("ascii")
    sock = connect(endpoint, deadline_at)
    try:
        sock.settimeout(remaining(deadline_at))
        sock.sendall(request)
        head, early = read_head(sock, deadline_at)
        status, headers = parse_head(head)
        if status < 200 or status in (204, 304):
            read, capped = 0, False
        else:
            read, capped = _read_body(sock, deadline_at, len(early), headers)
    finally:
        sock.close()
    return status, headers, f"HTTP {status}, {read} body bytes read{' (capped)' if capped else ''}"


def _single(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    if values is None:
        return None
    if len(values) > 1:
        raise MalformedResponse(f"duplicate {name} parameter in Location")
    return values[0]


def _verdict(status: int, headers: dict[str, list[str]], detail: str) -> Verdict:
    if status in (401, 403):
        return Verdict("denied", status=status, detail=detail)
    locations = headers.get("location", [])
    if status not in REDIRECT_STATUSES or not locations:
        return Verdict("error", status=status, detail=detail + ("" if locations
                                                               else ", no Location"))
    if len(locations) > 1:
        return Verdict("error", status=status, detail=detail + ", several Location headers")
    query: dict[str, list[str]] = {}
    for name, value in parse_qsl(urlsplit(locations[0]).query, keep_blank_values=True):
        query.setdefault(name, []).append(value)
    try:
        error, token, state = (_single(query, n) for n in ("error", "token", "state"))
        description = _single(query, "error_description")
    except MalformedResponse as exc:
        return Verdict("error", status=status, detail=f"{detail}, {exc}")
    if error is not None:
        kind = "denied" if error == "access_denied" else "error"
        return Verdict(kind, error=error, error_description=description, state=state,
                       status=status, detail=detail)
    if token is not None:
        return Verdict("token", token=token, state=state, status=status, detail=detail)
    return Verdict("error", status=status, detail=detail + ", Location has no token or error")


def call_tenant(endpoint: str, params: dict[str, str], *, allow_private: bool,
                deadline: float = TOTAL_DEADLINE,
                resolve: Resolver = socket.getaddrinfo) -> Verdict:
    """Ask the tenant endpoint for a verdict; never raises for network trouble."""
    started = time.monotonic()
    deadline_at = started + deadline
    verdict = _call(endpoint, params, allow_private, deadline_at, resolve)
    log.info("backchannel host=%s outcome=%s status=%s ms=%d detail=%s", _host(endpoint),
             verdict.kind, verdict.status, (time.monotonic() - started) * 1000, verdict.detail)
    return verdict


def _host(endpoint: str) -> str | None:
    """The host alone, for logs: the URL's query may hold login data."""
    try:
        return urlsplit(endpoint).hostname
    except (TypeError, ValueError, AttributeError):
        return None


def _call(endpoint: str, params: dict[str, str], allow_private: bool, deadline_at: float,
          resolve: Resolver) -> Verdict:
    if not isinstance(endpoint, str) or not endpoint:
        return Verdict("error", detail="endpoint refused: no endpoint is configured")
    try:
        url = with_params(endpoint, params)
        vetted = vet_endpoint(url, allow_private=allow_private,
                              resolve=bounded_resolver(resolve, remaining(deadline_at)))
    except DeadlineExceeded:
        return Verdict("unreachable", detail="deadline exceeded before the call",
                       cause="timeout")
    except EndpointUnresolvable as exc:
        return Verdict("unreachable", detail=f"dns: {exc}", cause="dns")
    except EndpointRefused as exc:
        return Verdict("error", detail=f"endpoint refused: {exc}")
    try:
        status, headers, detail = _exchange(vetted, deadline_at)
    except MalformedResponse as exc:
        return Verdict("error", detail=f"malformed response: {exc}")
    except ssl.SSLError as exc:  # includes certificate and host name verification
        return Verdict("unreachable", detail=f"tls: {exc.reason or type(exc).__name__}",
                       cause="tls")
    except (DeadlineExceeded, TimeoutError):
        return Verdict("unreachable", detail="deadline exceeded", cause="timeout")
    except OSError as exc:
        return Verdict("unreachable", detail=f"{type(exc).__name__}: {exc.strerror or exc}"[:200],
                       cause=_network_cause(exc))
    return _verdict(status, headers, detail)


def _network_cause(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return "closed"
    return "network"
