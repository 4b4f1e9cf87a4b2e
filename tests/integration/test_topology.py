"""The scale-out topology, for real: a Redis Cluster, RabbitMQ, two web
instances, two workers and a beat, each its own process (DESIGN §15).

The test starts everything itself: three ``redis-server`` primaries joined
with ``redis-cli --cluster create`` (bench/redis_cluster.py), two web
instances on their own ports (one ``gunicorn --paste``, one ``saas-web``: a
fleet mid-way through a change of server) and two ``celery worker`` processes
plus ``celery beat``, all on RabbitMQ (a queue of this run's own). The Redis Cluster's 16
stream shards are drained by whichever worker holds each shard's lease.

A login crosses instances the way a load balancer sends it: authorize on one,
callback and token on the other; refresh rotation alternates too. Then one
web instance and one worker are killed with SIGKILL while logins go on, and
every login a client saw complete lands in PostgreSQL exactly once — no row
lost, none doubled — while the other worker takes over the dead one's
shards (their leases expire) and its unacknowledged entries (XAUTOCLAIM).

Missing ``redis-server`` or RabbitMQ fails the test; nothing here skips.
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from bench.redis_cluster import RedisCluster
from saas.config import load_settings
from saas.event_streams import layout_from_settings
from saas.redis import redis_from_url
from saas.sync.lease import lease_key
from saas.sync.status import sync_status
from tests.flows import CLIENT_REDIRECT, pkce_pair, query_of, tenant_token
from tests.functional.test_custom_token import skygear_token
from tests.live import committed_app, free_port
from tests.rabbitmq import AMQP_URL, delete_deployment_queues, require_rabbitmq
from tests.waiting import REQUEST_SECONDS, processes, wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.prefix) / "bin"
# Inherited variables that would override the topology's ini.
OVERRIDING_ENV = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_ALWAYS_EAGER",
                  "CELERY_DEFAULT_QUEUE", "SAAS_MASTER_KEY", "SAAS_PUBLIC_BASE_URL",
                  "SAAS_REDIS_PREFIX", "SAAS_SECURE_COOKIES", "SAAS_CONFIG",
                  "SAAS_SYNC_STREAM_SHARDS", "WEB_CONCURRENCY")
PUBLIC_HOST = "bk.test"
RECLAIM_IDLE_MS = 3000  # a dead worker's entries move on after 3 s (30 s in production)


@dataclass
class Service:
    name: str
    popen: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def describe(self) -> str:
        return f"--- {self.name} (exit {self.popen.poll()})\n{self.log()[-4000:]}"

    def kill(self) -> None:
        """SIGKILL the whole process group: master and children, no goodbyes."""
        with suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=REQUEST_SECONDS)

    def stop(self) -> None:
        if self.popen.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=20)
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=20)


@dataclass
class Topology:
    settings: dict
    directory: Path
    services: dict[str, Service] = field(default_factory=dict)
    web_urls: dict[str, str] = field(default_factory=dict)

    def ini(self) -> Path:
        path = self.directory / "topology.ini"
        lines = ["[app:main]", "use = egg:bridgekeeper"]
        lines += [f"{name} = {value}" for name, value in self.settings.items()]
        path.write_text("\n".join(lines) + "\n")
        return path

    def spawn(self, name: str, args: list[str]) -> Service:
        env = {k: v for k, v in os.environ.items() if k not in OVERRIDING_ENV}
        env.update(SAAS_CONFIG=str(self.ini()), PYTHONUNBUFFERED="1")
        log_path = self.directory / f"{name}.log"
        with open(log_path, "wb") as log:
            popen = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        service = self.services[name] = Service(name, popen, log_path)
        return service

    def start_web(self, name: str, server: str = "gunicorn") -> None:
        port = free_port()
        command = ([str(BIN / "saas-web"), str(self.ini())] if server == "saas-web"
                   else [str(BIN / "gunicorn"), "--paste", str(self.ini())])
        service = self.spawn(name, [*command, "-b", f"127.0.0.1:{port}", "--workers", "1"])
        url = self.web_urls[name] = f"http://127.0.0.1:{port}"
        self.wait_for(lambda: _ready(url), f"{name} ready", service)

    def start_worker(self, name: str) -> None:
        queue = self.settings["celery.default_queue"]
        service = self.spawn(name, [
            str(BIN / "celery"), "-A", "workers", "worker", "--loglevel=INFO",
            "-n", f"{name}-{queue}@%h", "--concurrency=1", "--pool=solo",
            "--without-gossip", "--without-mingle"])
        self.wait_for(lambda: " ready." in service.log(), f"{name} ready", service)

    def start_beat(self) -> None:
        service = self.spawn("beat", [
            str(BIN / "celery"), "-A", "workers", "beat", "--loglevel=INFO",
            "-s", str(self.directory / "beat-schedule")])
        self.wait_for(lambda: "Sending due task drain-events" in service.log(),
                      "beat's first tick", service)

    def live(self) -> list[Service]:
        return [s for s in self.services.values() if s.popen.poll() is None]

    def wait_for(self, predicate, what: str, *watched: Service):
        """Poll while the topology's processes make progress; fail at once if a
        watched one dies."""
        def done():
            for service in watched:
                if service.popen.poll() is not None:
                    pytest.fail(f"{service.name} exited while waiting for {what}:\n"
                                f"{service.describe()}")
            return predicate()

        return wait_until(done, what, progress=processes(*(s.popen for s in self.live())),
                          interval=0.1, describe=self.describe)

    def describe(self) -> str:
        return "\n".join(service.describe() for service in self.services.values())

    def stop(self) -> None:
        for service in self.services.values():
            service.stop()


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=REQUEST_SECONDS).status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def running_topology(app_settings, tmp_path: Path) -> Iterator[tuple[Topology, RedisCluster]]:
    require_rabbitmq()
    queue = f"bk-test-topology-{uuid.uuid4().hex[:12]}"
    with ExitStack() as stack:
        try:
            cluster = RedisCluster(3, directory=tmp_path / "cluster").start()
        except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
            pytest.fail(f"a Redis Cluster is required (redis-server, redis-cli): {exc}",
                        pytrace=False)
        stack.callback(cluster.stop)
        stack.callback(delete_deployment_queues, queue)
        settings = {
            "sqlalchemy.url": app_settings["sqlalchemy.url"],
            "redis.url": cluster.url,
            "celery.broker_url": AMQP_URL,
            "celery.default_queue": queue,
            "celery.always_eager": "false",
            "saas.master_key": app_settings["saas.master_key"],
            "saas.public_base_url": f"http://{PUBLIC_HOST}",
            "saas.redis_prefix": app_settings["saas.redis_prefix"] + ":topo",
            "saas.secure_cookies": "false",
            "saas.backchannel.allow_private": "true",
            "saas.sync.reclaim_idle_ms": str(RECLAIM_IDLE_MS),
            # Two one-slot workers share the 17 streams, sized as the
            # operations docs ask of several workers: left unset, each would
            # take them all and the other would only wait for the leases.
            "saas.sync.shards_per_run": "9",
        }
        topology = Topology(settings, tmp_path)
        stack.callback(topology.stop)  # first to run: processes before their cluster
        topology.start_worker("worker-1")
        topology.start_worker("worker-2")
        topology.start_web("web-a")  # gunicorn, killed mid-load
        topology.start_web("web-b", server="saas-web")
        topology.start_beat()
        yield topology, cluster


class Client:
    """An app and its users, speaking HTTP to whichever instance it is given."""

    def __init__(self, app, secrets) -> None:
        self.app_id = app.app_id
        self.custom_auth = secrets["custom_auth"]
        self.custom_token = secrets["custom_token"]

    @staticmethod
    def _http(base: str) -> httpx.Client:
        return httpx.Client(base_url=base, timeout=REQUEST_SECONDS,
                            headers={"Host": PUBLIC_HOST})

    def authorize(self, base: str) -> tuple[str, str, dict]:
        verifier, challenge = pkce_pair()
        with self._http(base) as http:
            started = http.get(f"/v1/apps/{self.app_id}/authorize", params={
                "redirect_uri": CLIENT_REDIRECT, "code_challenge": challenge})
            assert started.status_code == 302, started.text
            return query_of(started.headers["location"])["state"], verifier, dict(http.cookies)

    def redirect_login(self, start: str, finish: str, user: str) -> dict:
        """authorize on ``start``; callback and code exchange on ``finish``."""
        state, verifier, cookies = self.authorize(start)
        token = tenant_token(self.custom_auth, user_id=user, state=state)
        with self._http(finish) as http:
            http.cookies.update(cookies)
            done = http.get(f"/v1/apps/{self.app_id}/callback",
                            params={"flow": "custom", "state": state, "token": token})
            assert done.status_code == 302, done.text
            code = query_of(done.headers["location"])["code"]
            issued = http.post(f"/v1/apps/{self.app_id}/token", data={
                "grant_type": "authorization_code", "code": code,
                "redirect_uri": CLIENT_REDIRECT, "code_verifier": verifier})
        assert issued.status_code == 200, issued.text
        return issued.json()

    def custom_token_login(self, base: str, user: str) -> dict:
        with self._http(base) as http:
            issued = http.post(f"/v1/apps/{self.app_id}/login/custom-token",
                               json={"token": skygear_token(self.custom_token, user_id=user)})
        assert issued.status_code == 200, issued.text
        return issued.json()

    def refresh(self, base: str, refresh_token: str) -> httpx.Response:
        with self._http(base) as http:
            return http.post(f"/v1/apps/{self.app_id}/token", data={
                "grant_type": "refresh_token", "refresh_token": refresh_token})


class Ledger:
    """What the clients saw: completed operations by user, and attempted ones."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.completed: Counter[tuple[str, str]] = Counter()  # (audit type, user)
        self.attempted: Counter[tuple[str, str]] = Counter()

    def note(self, kind: str, user: str, done: bool) -> None:
        with self.lock:
            self.attempted[(kind, user)] += 1
            if done:
                self.completed[(kind, user)] += 1


def _audit_by_user(engine, app_id: str) -> Counter[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT type, external_id, count(*) FROM audit_events"
            " WHERE app_id = :app AND external_id IS NOT NULL GROUP BY type, external_id"
        ), {"app": app_id}).all()
    return Counter({(type_, user): count for type_, user, count in rows})


def _users(engine, app) -> Counter[str]:
    with engine.connect() as conn:
        return Counter(conn.scalars(text("SELECT external_id FROM end_users WHERE app_id = :app"),
                                    {"app": app.id}))


def _drained(topology: Topology) -> bool:
    settings = load_settings(topology.settings)
    client = redis_from_url(topology.settings["redis.url"])
    try:
        status = sync_status(client, layout_from_settings(settings))
    finally:
        client.close()
    return status["backlog"] == 0 and status["in_flight"] == 0 and status["dead_letters"] == 0


def _leases_held_by(topology: Topology, service: str) -> int:
    """How many stream shards the worker process holds the lease of right now."""
    settings = load_settings(topology.settings)
    owner = f":{topology.services[service].popen.pid}:"
    client = redis_from_url(topology.settings["redis.url"])
    try:
        tokens = [client.get(lease_key(key))
                  for key in layout_from_settings(settings).stream_keys()]
    finally:
        client.close()
    return sum(1 for token in tokens if token and owner in token.decode())


def _assert_exactly_once(ledger: Ledger, audit: Counter, users: Counter) -> None:
    for key, count in ledger.completed.items():
        assert audit[key] == count, (key, count, audit[key])  # each completed one landed once
    for key, count in ledger.attempted.items():
        assert audit[key] <= count, (key, count, audit[key])  # cut short: never twice
    succeeded = {user for (kind, user) in ledger.completed}
    assert all(users[user] == 1 for user in succeeded)
    created = Counter(user for (kind, user), n in audit.items() if kind == "user.created")
    assert set(created) == set(users) and all(n == 1 for n in created.values())


def test_the_whole_topology_logs_in_syncs_and_survives_sigkill(app_settings, tmp_path):
    fields = {"redirect_uris": [CLIENT_REDIRECT], "custom_token_enabled": True,
              "custom_auth_endpoint": "https://tenant.example.com/auth"}
    with (committed_app(app_settings, **fields) as (app, secrets),
          running_topology(app_settings, tmp_path) as (topology, cluster)):
        engine = create_engine(app_settings["sqlalchemy.url"])
        client, ledger = Client(app, secrets), Ledger()
        a, b = topology.web_urls["web-a"], topology.web_urls["web-b"]

        # Redirect logins cross instances; custom tokens alternate.
        for n, (start, finish) in zip(range(12), itertools.cycle([(a, b), (b, a)])):
            tokens = client.redirect_login(start, finish, f"redirect-{n}")
            assert tokens["user"]["external_id"] == f"redirect-{n}"
            ledger.note("login.succeeded", f"redirect-{n}", True)
            ledger.note("token.issued", f"redirect-{n}", True)
        for n, base in zip(range(12), itertools.cycle([a, b])):
            client.custom_token_login(base, f"custom-{n}")
            ledger.note("custom_token.succeeded", f"custom-{n}", True)

        # Refresh rotation across instances: each new refresh token works on
        # either, and a client retrying a rotation (within its 10 s) on the
        # other instance gets the very successor the first one issued.
        tokens = client.redirect_login(a, b, "rotating")
        ledger.note("login.succeeded", "rotating", True)
        ledger.note("token.issued", "rotating", True)
        chain = [tokens["refresh_token"]]
        for base in (b, a, b):
            rotated = client.refresh(base, chain[-1])
            assert rotated.status_code == 200, rotated.text
            chain.append(rotated.json()["refresh_token"])
            ledger.note("token.refreshed", "rotating", True)
        assert len(set(chain)) == len(chain)
        retried = client.refresh(a, chain[-2])
        assert retried.status_code == 200, retried.text
        assert retried.json()["refresh_token"] == chain[-1]
        ledger.note("token.refreshed", "rotating", True)

        # 50 concurrent callbacks with one state, spread over both instances.
        state, _verifier, cookies = client.authorize(a)
        token = tenant_token(client.custom_auth, user_id="raced", state=state)

        def call(n: int) -> httpx.Response:
            with Client._http([a, b][n % 2]) as http:
                http.cookies.update(cookies)
                return http.get(f"/v1/apps/{client.app_id}/callback",
                                params={"flow": "custom", "state": state, "token": token},
                                headers={"Accept": "application/json"})

        with ThreadPoolExecutor(max_workers=50) as pool:
            responses = list(pool.map(call, range(50)))
        codes = [r for r in responses
                 if r.status_code == 302 and "code" in query_of(r.headers["location"])]
        assert len(codes) == 1
        assert all(r.status_code == 400 and r.json()["reason"] == "state_replayed"
                   for r in responses if r not in codes)
        ledger.note("login.succeeded", "raced", True)

        topology.wait_for(lambda: _drained(topology) and all(
            _audit_by_user(engine, app.app_id)[key] >= 1 for key in ledger.completed),
            "every login so far in PostgreSQL")
        _assert_exactly_once(ledger, _audit_by_user(engine, app.app_id), _users(engine, app))
        for node in cluster.nodes:  # the store really is spread over the three primaries
            with node.client() as primary:
                assert primary.dbsize() > 0, node.port
        drains = [s for s in ("worker-1", "worker-2")
                  if "Task workers.sync.drain" in topology.services[s].log()]
        assert drains == ["worker-1", "worker-2"], topology.describe()  # both took shards

        # SIGKILL one web instance and one worker while logins go on.
        counter = itertools.count()
        killed = threading.Event()
        stop = threading.Event()

        def one_login() -> None:
            n = next(counter)
            bases = [b] if killed.is_set() else random.sample([a, b], 2)
            if n % 2:
                user = f"load-redirect-{n}"
                try:
                    client.redirect_login(bases[0], bases[-1], user)
                    done = True
                except (httpx.TransportError, AssertionError, KeyError):
                    done = False
                ledger.note("login.succeeded", user, done)
                ledger.note("token.issued", user, done)
            else:
                user = f"load-custom-{n}"
                try:
                    client.custom_token_login(bases[0], user)
                    done = True
                except (httpx.TransportError, AssertionError):
                    done = False
                ledger.note("custom_token.succeeded", user, done)

        def load() -> None:
            while not stop.is_set():
                one_login()

        def completed() -> int:
            with ledger.lock:
                return sum(ledger.completed.values())

        with ThreadPoolExecutor(max_workers=4) as pool:
            loaders = [pool.submit(load) for _ in range(4)]
            before = completed()
            topology.wait_for(lambda: completed() >= before + 40, "load under way")
            # The worker dies holding shards: the other must wait out their leases.
            topology.wait_for(lambda: _leases_held_by(topology, "worker-1") > 0,
                              "worker-1 draining some shards")
            topology.services["web-a"].kill()
            topology.services["worker-1"].kill()
            killed.set()
            after = completed()
            topology.wait_for(lambda: completed() >= after + 60, "load after the kills",
                              topology.services["web-b"], topology.services["worker-2"])
            stop.set()
            for loader in loaders:
                loader.result()

        failed = sum(ledger.attempted.values()) - sum(ledger.completed.values())
        assert sum(ledger.completed.values()) > failed  # the load went on past the kills
        topology.wait_for(lambda: _drained(topology) and all(
            _audit_by_user(engine, app.app_id)[key] >= 1 for key in ledger.completed),
            "every completed login in PostgreSQL after the kills", topology.services["worker-2"])
        _assert_exactly_once(ledger, _audit_by_user(engine, app.app_id), _users(engine, app))
        engine.dispose()
