"""Back-channel client against small tenant servers on 127.0.0.1 (DESIGN §5.2).

Each server runs in a thread, records every connection and request, and is
shut down after its test; every handler that waits is released at teardown
and bounded anyway.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from saas.backchannel import client, wire
from saas.backchannel.client import MAX_BODY, TOTAL_DEADLINE, call_tenant
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

# Upper time bounds leave this much for a busy machine's scheduling; each failure
# they catch (a hang of 10-30 s, a deadline ignored, a retry) is slower still.
SLACK = 4.0
TOKEN = "T0KEN.secret.value"
PASSWORD = "hunter2-passphrase"
PARAMS = {"redirect_uri": "http://bk.test/v1/apps/a/callback?flow=custom", "state": "S",
          "token": "REQUEST.JWT", "data": json.dumps({"id": "ann", "passphrase": PASSWORD})}


class TenantServer(ThreadingHTTPServer):
    """Records connections and requests; ``behaviour(handler)`` answers."""

    daemon_threads = True

    def __init__(self, behaviour: Callable[[BaseHTTPRequestHandler], None],
                 tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.behaviour = behaviour
        self.connections = 0
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.release = threading.Event()
        self.done = threading.Event()
        self.facts: dict[str, object] = {}

    @property
    def port(self) -> int:
        return self.server_address[1]

    def verify_request(self, request, client_address) -> bool:
        self.connections += 1
        return True


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.server.requests.append((self.path, dict(self.headers.items())))
        try:
            self.server.behaviour(self)
        finally:
            self.server.done.set()

    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def serving(behaviour, tls: ssl.SSLContext | None = None) -> Iterator[TenantServer]:
    server = TenantServer(behaviour, tls)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def answer(status: int, location: str | None = None, body: bytes = b""):
    def behaviour(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        if location is not None:
            handler.send_header("Location", location)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
    return behaviour


def hang(handler: BaseHTTPRequestHandler) -> None:
    handler.server.release.wait(30)


def trickle(handler: BaseHTTPRequestHandler) -> None:
    """One byte of a status line a second, until the client leaves (or 30 s)."""
    for byte in b"HTTP/1.1 302 Found\r\nLocation: /?token=late" * 2:
        try:
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
        except OSError:
            return
        if handler.server.release.wait(1.0):
            return


def call(url: str, allow_private: bool = True, **kwargs) -> tuple[client.Verdict, float]:
    started = time.monotonic()
    verdict = call_tenant(url, PARAMS, allow_private=allow_private, **kwargs)
    return verdict, time.monotonic() - started


def test_302_with_token_is_a_token_verdict(caplog):
    location = f"{PARAMS['redirect_uri']}&token={TOKEN}&state=S"
    with caplog.at_level(logging.DEBUG), serving(answer(302, location)) as tenant:
        verdict, _ = call(f"http://127.0.0.1:{tenant.port}/auth?tenant=1")
    assert (verdict.kind, verdict.token, verdict.state, verdict.status) == ("token", TOKEN, "S",
                                                                           302)
    path, headers = tenant.requests[0]
    assert path.startswith("/auth?tenant=1&redirect_uri=http%3A%2F%2Fbk.test")
    assert "state=S" in path and "token=REQUEST.JWT" in path
    assert headers["User-Agent"] == "Bridgekeeper-Backchannel/1"
    assert headers["Accept"] == "*/*"
    assert headers["Host"] == f"127.0.0.1:{tenant.port}"
    for secret in (TOKEN, PASSWORD, "REQUEST.JWT"):
        assert secret not in verdict.detail
        assert secret not in caplog.text
    assert "outcome=token" in caplog.text


def test_303_with_access_denied_is_denied():
    location = f"{PARAMS['redirect_uri']}&error=access_denied&error_description=No&state=S"
    with serving(answer(303, location)) as tenant:
        verdict, _ = call(f"http://127.0.0.1:{tenant.port}/auth")
    assert (verdict.kind, verdict.error, verdict.error_description, verdict.state) == (
        "denied", "access_denied", "No", "S")
    assert verdict.token is None


def test_other_tenant_error_code_is_an_error():
    with serving(answer(302, "/cb?error=server_error&state=S")) as tenant:
        verdict, _ = call(f"http://127.0.0.1:{tenant.port}/auth")
    assert (verdict.kind, verdict.error) == ("error", "server_error")


def test_duplicate_token_in_location_is_an_error():
    with serving(answer(302, "/cb?token=A&token=B&state=S")) as tenant:
        verdict, _ = call(f"http://127.0.0.1:{tenant.port}/auth")
    assert verdict.kind == "error" and verdict.token is None


def test_401_is_denied_within_two_seconds():
    with serving(answer(401, body=b"no")) as tenant:
        verdict, elapsed = call(f"http://127.0.0.1:{tenant.port}/auth")
    assert (verdict.kind, verdict.status) == ("denied", 401)
    assert elapsed < TOTAL_DEADLINE  # answered, not timed out


@pytest.mark.parametrize(("status", "kind"), [(403, "denied"), (500, "error"), (200, "error"),
                                              (404, "error"), (302, "error")])
def test_status_without_verdict_location(status, kind):
    with serving(answer(status, body=b"<html>a page</html>")) as tenant:
        verdict, _ = call(f"http://127.0.0.1:{tenant.port}/auth")
    assert (verdict.kind, verdict.status, verdict.token) == (kind, status, None)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_to_an_internal_url_is_not_followed(status):
    with serving(answer(200, body=b"internal secret")) as internal:
        target = f"http://127.0.0.1:{internal.port}/internal"
        with serving(answer(status, target)) as tenant:
            verdict, _ = call(f"http://127.0.0.1:{tenant.port}/auth")
        assert internal.connections == 0 and internal.requests == []
    assert (verdict.kind, verdict.status, verdict.token) == ("error", status, None)


def test_hanging_tenant_is_unreachable_after_one_deadline():
    with serving(hang) as tenant:
        verdict, elapsed = call(f"http://127.0.0.1:{tenant.port}/auth")
    assert (verdict.kind, verdict.cause) == ("unreachable", "timeout")
    assert TOTAL_DEADLINE - 0.5 <= elapsed < TOTAL_DEADLINE + SLACK  # the tenant hangs 30 s
    assert tenant.connections == 1  # no retry: one connection, one deadline


def test_trickling_tenant_cannot_stretch_the_deadline():
    with serving(trickle) as tenant:
        verdict, elapsed = call(f"http://127.0.0.1:{tenant.port}/auth", deadline=2.0)
    assert verdict.kind == "unreachable" and verdict.token is None
    assert 1.5 <= elapsed < 2.0 + SLACK  # trickling to the end would take over a minute


def test_body_over_the_cap_is_not_read():
    total = 32 * 1024 * 1024

    def flood(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(total))
        handler.end_headers()
        written, chunk = 0, b"x" * 65536
        try:
            while written < total:
                handler.wfile.write(chunk)
                written += len(chunk)
        except OSError as exc:
            handler.server.facts["stopped_by"] = type(exc).__name__
        handler.server.facts["written"] = written

    with serving(flood) as tenant:
        verdict, elapsed = call(f"http://127.0.0.1:{tenant.port}/auth")
        wait_until(tenant.done.is_set, "the flooding tenant to stop")
    assert (verdict.kind, verdict.status) == ("error", 200)
    assert f"{MAX_BODY} body bytes read (capped)" in verdict.detail
    assert elapsed < TOTAL_DEADLINE
    assert "stopped_by" in tenant.facts  # the client closed long before the end
    assert tenant.facts["written"] < total


def test_closed_port_is_unreachable_quickly():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    verdict, elapsed = call(f"http://127.0.0.1:{port}/auth")
    assert (verdict.kind, verdict.cause) == ("unreachable", "refused")
    assert client.unreachable_description(verdict) == "the login endpoint refused the connection"
    assert elapsed < TOTAL_DEADLINE


def test_tenant_closing_without_an_answer_is_unreachable():
    with serving(lambda handler: None) as tenant:
        verdict, _ = call(f"http://127.0.0.1:{tenant.port}/auth")
    assert (verdict.kind, verdict.cause) == ("unreachable", "closed")


def test_garbage_answer_is_a_tenant_error():
    def garbage(handler: BaseHTTPRequestHandler) -> None:
        handler.wfile.write(b"SSH-2.0-OpenSSH\r\n\r\n")

    with serving(garbage) as tenant:
        verdict, _ = call(f"http://127.0.0.1:{tenant.port}/auth")
    assert verdict.kind == "error" and "malformed" in verdict.detail


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_private_endpoint_refused_in_production_without_connecting(scheme):
    with serving(answer(302, f"/cb?token={TOKEN}&state=S")) as tenant:
        verdict, _ = call(f"{scheme}://127.0.0.1:{tenant.port}/auth", allow_private=False)
        assert tenant.connections == 0 and tenant.requests == []
    assert verdict.kind == "error" and verdict.token is None
    assert verdict.detail.startswith("endpoint refused: ")


def _resolver(answers: list[str], calls: list[str]):
    """``getaddrinfo`` stand-in: the n-th lookup gets ``answers[n]`` (the last one after)."""
    def resolve(host, port, family=0, type=0, proto=0, flags=0):
        calls.append(host)
        address = answers[min(len(calls), len(answers)) - 1]
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))]
    return resolve


def test_connection_goes_to_the_vetted_address_with_the_name_in_host():
    calls: list[str] = []
    # A second lookup would get TEST-NET-1 (unroutable): only the first answer may be used.
    resolve = _resolver(["127.0.0.1", "192.0.2.1"], calls)
    with serving(answer(302, f"/cb?token={TOKEN}&state=S")) as tenant:
        verdict, _ = call(f"http://tenant.test:{tenant.port}/auth", resolve=resolve)
    assert verdict.kind == "token"
    assert calls == ["tenant.test"]
    assert tenant.requests[0][1]["Host"] == f"tenant.test:{tenant.port}"


def test_dns_failure_is_unreachable():
    def failing(*args):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    verdict, _ = call("http://tenant.test/auth", resolve=failing)
    assert verdict.kind == "unreachable" and verdict.detail.startswith("dns:")
    assert verdict.cause == "dns"


def test_slow_dns_counts_against_the_deadline():
    release = threading.Event()

    def slow(*args):
        release.wait(10)
        raise socket.gaierror(socket.EAI_AGAIN, "late")

    try:
        verdict, elapsed = call("http://tenant.test/auth", resolve=slow, deadline=1.0)
    finally:
        release.set()
    assert verdict.kind == "unreachable"
    assert elapsed < 1.0 + SLACK  # the resolver alone takes 10 s


# --- TLS: verified against the tenant's name while connecting to the vetted address ---

def _certificates(tmp_path, name: str) -> tuple[str, str, str]:
    """A CA, and a server certificate for ``name`` signed by it: (ca, cert, key) paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def build(subject, issuer, key, signer, ca: bool, san: str | None):
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(minutes=5))
                   .not_valid_after(now + dt.timedelta(hours=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if ca:
            builder = builder.add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            builder = builder.add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(san)]),
                                            critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    ca = build(ca_name, ca_name, ca_key, ca_key, True, None)
    leaf_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    leaf = build(leaf_name, ca_name, key, ca_key, False, name)
    paths = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return tuple(str(p) for p in paths)


@pytest.fixture
def tls_tenant(tmp_path, monkeypatch):
    ca, cert, key = _certificates(tmp_path, "tenant.test")
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    monkeypatch.setattr(wire, "tls_context", lambda: ssl.create_default_context(cafile=ca))
    with serving(answer(302, f"/cb?token={TOKEN}&state=S"), tls=server_context) as tenant:
        yield tenant


def test_https_verifies_the_tenant_name_at_the_vetted_address(tls_tenant):
    calls: list[str] = []
    verdict, _ = call(f"https://tenant.test:{tls_tenant.port}/auth",
                      resolve=_resolver(["127.0.0.1"], calls))
    assert (verdict.kind, verdict.token) == ("token", TOKEN)
    assert tls_tenant.requests[0][1]["Host"] == f"tenant.test:{tls_tenant.port}"


def test_https_with_a_certificate_for_another_name_is_unreachable(tls_tenant):
    verdict, _ = call(f"https://other.test:{tls_tenant.port}/auth",
                      resolve=_resolver(["127.0.0.1"], []))
    assert verdict.kind == "unreachable" and verdict.detail.startswith("tls:")
    assert verdict.cause == "tls"
    assert tls_tenant.requests == []


def test_https_to_a_plain_http_server_is_unreachable():
    with serving(answer(302, f"/cb?token={TOKEN}&state=S")) as tenant:
        verdict, elapsed = call(f"https://127.0.0.1:{tenant.port}/auth")
    assert verdict.kind == "unreachable" and verdict.token is None
    assert elapsed < TOTAL_DEADLINE


@pytest.mark.parametrize("endpoint", [None, ""])
def test_missing_endpoint_is_a_tenant_error(endpoint):
    verdict = call_tenant(endpoint, PARAMS, allow_private=True)
    assert verdict.kind == "error" and verdict.detail.startswith("endpoint refused")
