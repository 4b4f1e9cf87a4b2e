"""The production topology on loopback, started and stopped by the benchmark.

* its own ``redis-server`` on a free port (so Redis counters are the
  benchmark's alone; ``BENCH_REDIS_URL`` uses an existing one instead), or
  with ``store="cluster"`` a Redis Cluster of three primaries of its own
  (``bench.redis_cluster``), the event stream then in 16 shards,
* a scratch PostgreSQL database migrated with Alembic (``bench.sync``),
* one tenant and app, committed like a real sign-up,
* the web tier serving ``production.ini`` (a copy with the benchmark's
  overrides) with the environment variables production takes: ``saas-web``
  (Granian), or gunicorn with ``gunicorn.conf.py`` for comparison,
* a Celery worker with beat draining the event stream,
* the Python example tenant endpoint under gunicorn, and an empty Pyramid app
  under the web tier's server.
"""

from __future__ import annotations

import configparser
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg
import redis
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from bench.redis_cluster import RedisCluster
from saas.redis import is_cluster_url, primaries, redis_from_url

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
CLIENT_REDIRECT = "https://app.example.com/callback"

# What the benchmark changes in production.ini: loopback tenant endpoints are
# allowed (DESIGN §12), and rate limits stay on but far above the load (one
# client IP drives everything), so their Redis cost is still paid.
INI_OVERRIDES = {
    "saas.backchannel.allow_private": "true",
    "saas.ratelimit.enabled": "true",
    "saas.ratelimit.login_ip.rate": "1000000",
    "saas.ratelimit.login_ip.burst": "1000000",
    "saas.ratelimit.login_app.rate": "1000000",
    "saas.ratelimit.login_app.burst": "1000000",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Topology:
    workdir: str
    web_port: int
    tenant_port: int
    empty_port: int
    redis_url: str
    broker_url: str
    database_url: str
    database_name: str
    prefix: str
    env: dict[str, str]
    app_id: str = ""
    app_uuid: str = ""
    secrets: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    store: str = "single"  # or "cluster"
    # The store's redis-server processes (none when BENCH_REDIS_URL is used).
    redis_pids: list[int] = field(default_factory=list)
    _client: redis.Redis | None = field(default=None, repr=False)

    def fixture(self) -> dict:
        return {"web_host": "127.0.0.1", "web_port": self.web_port,
                "tenant_host": "127.0.0.1", "tenant_port": self.tenant_port,
                "empty_port": self.empty_port, "app_id": self.app_id,
                "custom_token_secret": self.secrets["custom_token"]}

    def redis(self) -> redis.Redis:
        """The runner's one client of the store (a cluster client on a
        cluster): one connection, set up once, not one per window mark."""
        if self._client is None:
            self._client = (redis_from_url(self.redis_url) if is_cluster_url(self.redis_url)
                            else redis.Redis.from_url(self.redis_url))
        return self._client

    def redis_nodes(self) -> list[redis.Redis]:
        """One client per primary, for counters that are per server."""
        return primaries(self.redis())


def _wait_http(url: str, process: subprocess.Popen, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}; see its log")
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:  # noqa: S310 - loopback
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{what} did not answer {url} within {timeout:.0f} s")


def _start_redis(workdir: str) -> tuple[str, subprocess.Popen | None]:
    if os.environ.get("BENCH_REDIS_URL"):
        return os.environ["BENCH_REDIS_URL"], None
    port = free_port()
    with open(os.path.join(workdir, "redis.log"), "w") as log:
        process = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", workdir], stdout=log, stderr=subprocess.STDOUT)
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            return f"redis://127.0.0.1:{port}/0", process
        except redis.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def _write_ini(path: str, web_port: int) -> None:
    # On a cluster the benchmark's one (solo) worker slot takes all 17 event
    # streams per run by itself: shards_per_run is left unset, as production's.
    parser = configparser.RawConfigParser()
    parser.optionxform = str  # keep keys as written
    parser.read(os.path.join(ROOT, "production.ini"))
    for key, value in INI_OVERRIDES.items():
        parser.set("app:main", key, value)
    parser.set("server:main", "bind", f"127.0.0.1:{web_port}")
    with open(path, "w") as handle:
        parser.write(handle)


def _commit_app(database_url: str, master_key: str, tenant_port: int):
    from saas.apps.services import create_app
    from saas.crypto import SecretBox
    from saas.passwords import Passwords
    from saas.tenants.services import sign_up

    engine = create_engine(database_url)
    with Session(engine, expire_on_commit=False) as session:
        member = sign_up(session, Passwords(), tenant_name="Bench",
                         email="bench@example.com", password="bench password 1")
        app, plaintext = create_app(
            session, SecretBox(master_key), tenant_id=member.tenant_id, name="Bench",
            custom_auth_endpoint=f"http://127.0.0.1:{tenant_port}/",
            redirect_uris=[CLIENT_REDIRECT], allow_private=True,
            custom_token_enabled=True, backchannel=True)
        session.commit()
    engine.dispose()
    return app, plaintext


def _spawn(topology: Topology, name: str, argv: list[str], cwd: str,
           extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    with open(os.path.join(topology.workdir, f"{name}.log"), "w") as log:
        process = subprocess.Popen(argv, cwd=cwd, env={**topology.env, **(extra_env or {})},
                                   stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    topology.processes[name] = process
    return process


def gunicorn_argv() -> list[str]:
    """gunicorn with the project's settings file; the worker count and class
    come from WEB_CONCURRENCY and GUNICORN_THREADS, as in production."""
    return [os.path.join(BIN, "gunicorn"), "-c", os.path.join(ROOT, "gunicorn.conf.py")]


def web_argv(server: str, port: int, ini: str) -> list[str]:
    """The web tier's command line: ``saas-web`` (Granian) or ``gunicorn --paste``."""
    if server == "granian":
        return [os.path.join(BIN, "saas-web"), ini, "-b", f"127.0.0.1:{port}"]
    if server == "gunicorn":
        return [*gunicorn_argv(), "-b", f"127.0.0.1:{port}", "--paste", ini]
    raise ValueError(f"unknown web server {server!r}")


def empty_argv(server: str, port: int, workers: int) -> list[str]:
    """The empty reference app under the same server and worker count as the web
    tier (gunicorn takes the count from ``WEB_CONCURRENCY``, as the web does)."""
    if server == "granian":
        return [os.path.join(BIN, "granian"), "--interface", "wsgi", "--factory",
                "--workers", str(workers), "--blocking-threads", "1",
                "--http", "1", "--no-ws", "--host", "127.0.0.1", "--port", str(port),
                "bench.apps:empty"]
    return [*gunicorn_argv(), "-b", f"127.0.0.1:{port}", "bench.apps:empty()"]


@contextlib.contextmanager
def running(workers: int = 2, threads: int = 1, celery: bool = True,
            store: str = "single", server: str = "granian") -> Iterator[Topology]:
    """Start everything; stop everything and drop the scratch data on the way out.

    ``store="cluster"``: the store is a Redis Cluster of three primaries the
    benchmark starts (never ``BENCH_REDIS_URL``); the Celery broker stays
    where the single topology has it.
    """
    from bench.sync import ADMIN_DSN, scratch_database

    if store not in ("single", "cluster"):
        raise ValueError(f"unknown store topology {store!r}")
    workdir = tempfile.mkdtemp(prefix="bk-bench-")
    cluster = None
    if store == "cluster":
        cluster = RedisCluster(3, directory=os.path.join(workdir, "cluster")).start()
        redis_url, redis_process = cluster.url, None
        redis_pids = [node.popen.pid for node in cluster.nodes]
    else:
        redis_url, redis_process = _start_redis(workdir)
        redis_pids = [redis_process.pid] if redis_process else []
    try:
        name, database_url = scratch_database()
    except BaseException:
        if cluster is not None:
            cluster.stop()
        raise
    # The Celery broker lives elsewhere (the services' Redis), so the
    # benchmark's Redis counts only the service's own commands.
    broker_url = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/0")
    master_key = secrets.token_urlsafe(32)
    web_port, tenant_port, empty_port = free_port(), free_port(), free_port()
    prefix = f"bkbench{uuid.uuid4().hex[:8]}"
    # Nothing of the caller's own configuration leaks into the topology.
    inherited = {k: v for k, v in os.environ.items()
                 if not k.startswith(("SAAS_", "CELERY_", "GUNICORN_", "DATABASE_URL", "REDIS_URL",
                                      "WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS"))}
    env = {
        **inherited,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": broker_url,
        "CELERY_DEFAULT_QUEUE": f"{prefix}-tasks",
        "SAAS_MASTER_KEY": master_key,
        "SAAS_PUBLIC_BASE_URL": f"http://127.0.0.1:{web_port}",
        "SAAS_REDIS_PREFIX": prefix,
        "WEB_CONCURRENCY": str(workers),
        "GUNICORN_THREADS": str(threads),
        "PYTHONPATH": ROOT,
    }
    topology = Topology(workdir, web_port, tenant_port, empty_port, redis_url,
                        broker_url, database_url, name, prefix, env, store=store,
                        redis_pids=redis_pids)
    try:
        app, plaintext = _commit_app(database_url, master_key, tenant_port)
        topology.app_id, topology.app_uuid, topology.secrets = app.app_id, str(app.id), plaintext
        ini = os.path.join(workdir, "bench.ini")
        _write_ini(ini, web_port)
        topology.env["SAAS_CONFIG"] = ini
        web = _spawn(topology, "web", web_argv(server, web_port, ini), ROOT)
        tenant = _spawn(topology, "tenant", [
            os.path.join(BIN, "gunicorn"), "-w", "1", "-b", f"127.0.0.1:{tenant_port}",
            "bench.apps:tenant()"], workdir, {"BENCH_TENANT_SECRET": plaintext["custom_auth"]})
        empty = _spawn(topology, "empty", empty_argv(server, empty_port, workers), ROOT)
        if celery:
            _spawn(topology, "celery", [
                os.path.join(BIN, "celery"), "-A", "workers", "worker", "-B", "--pool", "solo",
                "--loglevel", "WARNING", "-Q", env["CELERY_DEFAULT_QUEUE"],
                "--schedule", os.path.join(workdir, "beat-schedule")], ROOT)
        _wait_http(f"http://127.0.0.1:{web_port}/healthz", web, "gunicorn (web)")
        _wait_http(f"http://127.0.0.1:{empty_port}/", empty, "gunicorn (empty app)")
        _wait_tenant(tenant_port, tenant)
        yield topology
    finally:
        if topology._client is not None:
            topology._client.close()
        for process in topology.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in topology.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if cluster is not None:
            cluster.stop()
        elif redis_process is not None:
            redis_process.terminate()
            redis_process.wait()
        else:
            client = redis.Redis.from_url(redis_url)
            for key in client.scan_iter(match=f"{prefix}:*"):
                client.delete(key)
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not os.environ.get("BENCH_KEEP_LOGS"):
            shutil.rmtree(workdir, ignore_errors=True)


def _wait_tenant(port: int, process: subprocess.Popen) -> None:
    # The example answers 401 to a request without a token: it is up.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the tenant endpoint exited; see its log")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
            continue
        return
    raise RuntimeError("the tenant endpoint did not start")
