"""Fixtures: real PostgreSQL and Redis, one database per test run and xdist worker.

The database is created at session start, built with ``alembic upgrade head``
(never ``create_all``) and dropped at the end. Each test runs inside an outer
transaction that is rolled back; requests commit to savepoints inside it.
Redis keys carry a per-run prefix and are deleted at the end. A missing
service fails the run loudly: nothing here skips.

``TEST_REDIS_CLUSTER=1`` points the store at a Redis Cluster instead: each
xdist worker starts three ``redis-server`` primaries of its own and joins them
(bench/redis_cluster.py), so every script, transaction and pipeline of the
tests runs where a cross-slot command fails. The Celery broker stays the
single Redis (a cluster is never a broker).
"""

from __future__ import annotations

import os
import uuid

import psycopg
import pytest
import redis
import webtest
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

from bench.redis_cluster import RedisCluster
from saas.config import configure, database_url
from saas.redis import redis_from_url
from tests.mailbox import Mailbox, SmtpServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADMIN_DSN = os.environ.get("TEST_DATABASE_ADMIN_URL", "postgresql://postgres@localhost:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://localhost:6379/0")
ON_CLUSTER = os.environ.get("TEST_REDIS_CLUSTER", "") not in ("", "0")
RUN_ID = uuid.uuid4().hex[:10]
MASTER_KEY = "test-master-key-0123456789abcdef-0123456789"


def _worker_id(config) -> str:
    return getattr(config, "workerinput", {}).get("workerid", "main")


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", os.path.join(ROOT, "alembic"))
    cfg.attributes["sqlalchemy.url"] = url
    return cfg


def _database_dsn(name: str) -> str:
    base, _, _ = ADMIN_DSN.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def database_url_for_run(request):
    name = f"bk_test_{RUN_ID}_{_worker_id(request.config)}"
    try:
        admin = psycopg.connect(ADMIN_DSN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is required for the tests ({ADMIN_DSN}): {exc}", pytrace=False)
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = database_url(_database_dsn(name))
    command.upgrade(alembic_config(url), "head")
    yield url
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_prefix(request):
    return f"bktest:{RUN_ID}:{_worker_id(request.config)}"


@pytest.fixture(scope="session")
def store_url():
    """The store's URL: the shared Redis, or a cluster of this worker's own."""
    if not ON_CLUSTER:
        yield REDIS_URL
        return
    try:
        cluster = RedisCluster(3).start()
    except (RuntimeError, OSError) as exc:
        pytest.fail(f"a Redis Cluster is required (TEST_REDIS_CLUSTER): {exc}", pytrace=False)
    yield cluster.url
    cluster.stop()


@pytest.fixture(scope="session")
def redis_client(redis_prefix, store_url):
    """The store as the service sees it (a cluster client on a cluster)."""
    client = redis_from_url(store_url)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        pytest.fail(f"Redis is required for the tests ({store_url}): {exc}", pytrace=False)
    yield client
    keys = list(client.scan_iter(match=f"{redis_prefix}:*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])


@pytest.fixture(scope="session")
def broker_client():
    """The Celery broker's Redis (the single Redis, even when the store is a cluster)."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    yield client
    client.close()


@pytest.fixture(scope="session")
def smtp_server():
    """A real SMTP server (aiosmtpd) in this process for the whole run."""
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def mailbox(smtp_server) -> Mailbox:
    """The messages the test run's SMTP server received (filter by recipient)."""
    return smtp_server.mailbox


@pytest.fixture(scope="session")
def app_settings(database_url_for_run, redis_prefix, redis_client, store_url, smtp_server):
    return {
        "sqlalchemy.url": database_url_for_run,
        "redis.url": store_url,
        "celery.broker_url": REDIS_URL,
        "celery.always_eager": "true",
        "saas.master_key": MASTER_KEY,
        "saas.public_base_url": "http://bk.test",
        "saas.redis_prefix": redis_prefix,
        "saas.secure_cookies": "false",
        "saas.backchannel.allow_private": "true",
        "saas.ratelimit.enabled": "true",
        "saas.smtp_url": smtp_server.url,
        # The whole run signs up from one test address; the limits themselves
        # are tested with an app of their own (test_signup_answers.py).
        "saas.ratelimit.signup_ip.burst": "100000",
        "saas.ratelimit.signup_all.burst": "100000",
    }


@pytest.fixture(scope="session")
def engine(database_url_for_run):
    engine = create_engine(database_url_for_run)
    yield engine
    engine.dispose()


@pytest.fixture
def db_connection(engine):
    connection = engine.connect()
    outer = connection.begin()
    yield connection
    outer.rollback()
    connection.close()


@pytest.fixture
def db(db_connection) -> Session:
    session = Session(bind=db_connection, join_transaction_mode="create_savepoint",
                      expire_on_commit=False)
    yield session
    session.close()


@pytest.fixture(scope="session")
def pyramid_config(app_settings):
    return configure(dict(app_settings))


@pytest.fixture(scope="session")
def wsgi_app(pyramid_config):
    return pyramid_config.make_wsgi_app()


@pytest.fixture
def registry(wsgi_app):
    return wsgi_app.registry


@pytest.fixture
def webapp(wsgi_app, db_connection):
    """A WebTest client whose requests share the test's rolled-back transaction."""
    registry = wsgi_app.registry
    original = registry["saas.db_sessionmaker"]
    registry["saas.db_sessionmaker"] = sessionmaker(
        bind=db_connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    yield webtest.TestApp(wsgi_app, extra_environ={"HTTP_HOST": "bk.test"})
    registry["saas.db_sessionmaker"] = original


@pytest.fixture
def secret_box(registry):
    return registry["saas.secret_box"]


@pytest.fixture
def passwords(registry):
    return registry["saas.passwords"]
