"""A real Celery worker on the real Redis broker runs the cleanup against Postgres.

The worker runs in a thread of this process and consumes a queue unique to this
run, so parallel runs cannot take each other's messages. The rows are committed
(the ``db`` fixture's transaction would be invisible to the worker) and the
tenant is deleted afterwards, which cascades to its apps and secrets.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterator

import pytest
import redis
from celery import _state as celery_state
from celery.contrib.testing.worker import start_worker
from sqlalchemy import create_engine, delete
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from saas.apps.models import AppSecret, SecretKind
from saas.apps.services import create_app
from saas.crypto import SecretBox
from saas.db import utcnow
from saas.passwords import Passwords
from saas.tasks import BridgekeeperCelery, make_celery
from saas.tenants.models import Tenant
from saas.tenants.services import sign_up
from tests.waiting import wait_until
from workers.cleanup import purge_expired

pytestmark = pytest.mark.integration



@pytest.fixture
def committing_engine(app_settings) -> Iterator[Engine]:
    engine = create_engine(app_settings["sqlalchemy.url"])
    yield engine
    engine.dispose()


@pytest.fixture
def expired_secret(app_settings, committing_engine) -> Iterator[uuid.UUID]:
    """A committed tenant and app whose custom-auth previous secret has expired."""
    box = SecretBox(app_settings["saas.master_key"])
    with Session(committing_engine, expire_on_commit=False) as session:
        member = sign_up(
            session,
            Passwords(),
            tenant_name="Worker test",
            email=f"worker-{uuid.uuid4().hex[:10]}@example.com",
            password="correct horse battery staple",
        )
        app, _ = create_app(session, box, tenant_id=member.tenant_id, name="Worker test app")
        secret = app.secret(SecretKind.CUSTOM_AUTH)
        secret.previous_ciphertext = box.encrypt("the secret before the rotation")
        secret.previous_valid_until = utcnow() - dt.timedelta(minutes=5)
        session.commit()
        tenant_id, secret_id = member.tenant_id, secret.id
    try:
        yield secret_id
    finally:
        with Session(committing_engine) as session:
            session.execute(delete(Tenant).where(Tenant.id == tenant_id))
            session.commit()


@pytest.fixture
def worker_app(app_settings) -> Iterator[BridgekeeperCelery]:
    """A non-eager app on the real broker, consuming a queue of its own."""
    queue = f"bk-test-{uuid.uuid4().hex}"
    app = make_celery({**app_settings, "celery.always_eager": "false",
                       "celery.default_queue": queue})
    app.conf.update(
        worker_enable_remote_control=False,
        worker_hijack_root_logger=False,
    )
    # start_worker makes the app current and default and sets the root level;
    # put all of that back so later tests see the process as it was.
    previous = (celery_state.default_app, celery_state._tls.current_app)
    root = logging.getLogger()
    root_level, root_handlers = root.level, list(root.handlers)
    try:
        yield app
    finally:
        celery_state.set_default_app(previous[0])
        celery_state._set_current_app(previous[1])
        root.setLevel(root_level)
        root.handlers[:] = root_handlers
        app.dispose_engine()
        client = redis.Redis.from_url(app_settings["celery.broker_url"])
        for key in client.scan_iter(match=f"*{queue}*"):
            client.delete(key)
        client.close()


def _previous_ciphertext(engine: Engine, secret_id: uuid.UUID) -> str | None:
    with Session(engine) as session:
        return session.get(AppSecret, secret_id).previous_ciphertext


def test_worker_purges_expired_previous_secret(worker_app, expired_secret, committing_engine):
    assert _previous_ciphertext(committing_engine, expired_secret) is not None

    with start_worker(
        worker_app, pool="solo", perform_ping_check=False, shutdown_timeout=15
    ):
        assert purge_expired._get_current_object().app is worker_app
        purge_expired.delay()
        # The worker runs in this process: no progress to follow, only the cap.
        wait_until(lambda: _previous_ciphertext(committing_engine, expired_secret) is None,
                   "expired previous secret cleared by the worker", interval=0.2)

    with Session(committing_engine) as session:
        secret = session.get(AppSecret, expired_secret)
        assert secret.previous_valid_until is None
        assert secret.current_ciphertext  # the current secret is untouched
