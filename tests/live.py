"""A real HTTP server for the web app on loopback, over committed data.

Integration tests that need real concurrency or a real tenant endpoint use
this instead of WebTest: the app is configured for its own URL, serves with
waitress threads, and reads data the test committed (cleaned up after).
"""

from __future__ import annotations

import contextlib
import html
import re
import socket
import threading
import uuid
from collections.abc import Iterator
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
from sqlalchemy import create_engine, delete, text, update
from sqlalchemy.orm import Session

from saas.apps.models import App
from saas.apps.services import create_app
from saas.config import configure
from saas.crypto import SecretBox
from saas.passwords import Passwords
from saas.redis import Keys, redis_from_url
from saas.tenants.models import Tenant
from saas.tenants.services import sign_up
from tests.waiting import REQUEST_SECONDS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def live_server(settings: dict) -> Iterator[str]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    app = configure(dict(settings, **{"saas.public_base_url": base_url})).make_wsgi_app()
    try:
        with _serving(app, port):
            yield base_url
    finally:
        app.registry["saas.db_engine"].dispose()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    """A thread per request (concurrency tests), stopped cleanly by shutdown()."""

    daemon_threads = True
    request_queue_size = 128


@contextlib.contextmanager
def _serving(wsgi_app, port: int) -> Iterator[None]:
    server = make_server("127.0.0.1", port, wsgi_app, server_class=_ThreadingServer,
                         handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextlib.contextmanager
def committed_app(settings: dict, **app_fields) -> Iterator[tuple[object, dict]]:
    """A tenant and an app really committed to the test database; deleted after."""
    # Pre-ping: fault tests restart the database under this engine.
    engine = create_engine(settings["sqlalchemy.url"], pool_pre_ping=True)
    box = SecretBox(settings["saas.master_key"])
    with Session(engine, expire_on_commit=False) as session:
        member = sign_up(session, Passwords(), tenant_name="Live",
                         email=f"live-{uuid.uuid4().hex[:10]}@example.com",
                         password="correct horse battery staple")
        app, secrets = create_app(session, box, tenant_id=member.tenant_id, allow_private=True,
                                  name="Live app", **app_fields)
        session.commit()
    try:
        yield app, secrets
    finally:
        with Session(engine) as session:
            session.execute(delete(Tenant).where(Tenant.id == member.tenant_id))
            session.commit()
        engine.dispose()


def sign_in_at_tenant(tenant_url: str, user: str, passphrase: str) -> httpx.Response:
    """What the end user does on the tenant's page: read the form, submit it."""
    page = httpx.get(tenant_url, timeout=REQUEST_SECONDS)
    assert page.status_code == 200 and "Sign in" in page.text
    hidden = {name: html.unescape(value)
              for name, value in re.findall(r'name="(\w+)" value="([^"]*)"', page.text)}
    verdict = httpx.post(tenant_url.split("?")[0],
                         data={**hidden, "id": user, "passphrase": passphrase},
                         timeout=REQUEST_SECONDS)
    assert verdict.status_code == 302
    return verdict


def point_app_at(settings, app, endpoint: str) -> None:
    """Set the app's endpoint in PostgreSQL and write the cache through."""
    engine = create_engine(settings["sqlalchemy.url"])
    with Session(engine) as session:
        session.execute(update(App).where(App.id == app.id)
                        .values(custom_auth_endpoint=endpoint))
        session.commit()
    engine.dispose()
    redis_from_url(settings["redis.url"]).delete(
        Keys(settings["saas.redis_prefix"]).app(app.app_id, "config"))


@contextlib.contextmanager
def serve_wsgi(wsgi_app, port: int | None = None) -> Iterator[str]:
    """Any WSGI app on a loopback port (a free one unless given), in a thread;
    yields its base URL."""
    port = port or free_port()
    with _serving(wsgi_app, port):
        yield f"http://127.0.0.1:{port}"


def python_example(secret: str):
    """The WSGI app of examples/python/tenant_endpoint.py, loaded from its file."""
    import importlib.util
    import os

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "examples", "python", "tenant_endpoint.py")
    spec = importlib.util.spec_from_file_location("tenant_endpoint_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_app(secret)


def forget_tenant(connection, tenant_id) -> None:
    """Delete a tenant made by a test over real connections, with its audit rows
    (the audit log has no foreign keys: it outlives deleted tenants on purpose)."""
    connection.execute(text("DELETE FROM audit_events WHERE tenant_id = :t"), {"t": tenant_id})
    connection.execute(delete(Tenant).where(Tenant.id == tenant_id))


def forget_tenants_of(engine, email: str) -> None:
    """Delete the tenants a test signed up with ``email`` (see ``forget_tenant``)."""
    with engine.begin() as connection:
        for tenant_id in connection.scalars(
                text("SELECT tenant_id FROM members WHERE email = :e"), {"e": email}).all():
            forget_tenant(connection, tenant_id)
