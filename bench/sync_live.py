"""``make bench-sync-live``: the event sync under live load, beside the backlog drain.

    python -m bench.sync_live [--rates 300,1000] [--lingers 0,200] [--duration 10]
                              [--warmup 3] [--rounds 2] [--backlog-events 30000]
                              [--users 5000]

The benchmark load writes login events at a few hundred per second; the
backlog benchmark (``bench.sync``) says what a drain costs per event when
batches are full. This one feeds events into the stream at a steady rate —
one ``XADD`` each, spaced evenly, built like the login path's
(``bench.sync.login_event``) — while a real Celery worker with beat drains
them (``celery -A workers worker -B --pool solo``, as ``bench.topology``
runs it, its ini a copy of ``production.ini`` with ``saas.sync.linger_ms``
set), and reports over a measured window after a warm-up:

* CPU per event of the worker (the process and its children: the embedded
  beat) and of PostgreSQL (the scratch database's backends,
  ``bench.service_cpu``), from ``/proc/<pid>/stat``; the events are those fed
  during the window;
* the same for the backlog drain, measured in this process in the same
  round (``bench.sync.drain_once``: drain-process CPU + PostgreSQL), and the
  live figure as a multiple of it (DESIGN §10: ≤ 2×);
* the login-to-PostgreSQL lag, p50/p99/max (``bench.probes.LagProbe``;
  DESIGN §10: p99 < 1 s);
* Redis CPU per event (its own ``redis-server``, so the figure is the
  benchmark's alone), for information.

Each round measures the backlog, then every linger setting (a worker
started for each) at every rate, back to back, so A/B pairs share the
machine's load; the 1-minute load average is printed beside each row. The
medians over the rounds are the figures to quote.
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import types
import uuid

import psycopg
import redis
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from bench.probes import LagProbe, process_cpu
from bench.service_cpu import PostgresCPU, tree_cpu
from bench.sync import ADMIN_DSN, drain_once, login_event, scratch_database
from saas.apps.services import create_app
from saas.crypto import SecretBox
from saas.event_streams import layout_from_settings
from saas.passwords import Passwords
from saas.tenants.services import sign_up

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/0")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis(workdir: str) -> tuple[redis.Redis, str, subprocess.Popen]:
    """A redis-server of the benchmark's own (its CPU is then ours alone)."""
    port = _free_port()
    with open(os.path.join(workdir, "redis.log"), "w") as log:
        process = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", workdir], stdout=log, stderr=subprocess.STDOUT)
    client = redis.Redis(port=port)
    for _ in range(200):
        with contextlib.suppress(redis.ConnectionError):
            client.ping()
            return client, f"redis://127.0.0.1:{port}/0", process
        time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def write_ini(path: str, linger_ms: int) -> None:
    parser = configparser.RawConfigParser()
    parser.optionxform = str  # keep keys as written
    parser.read(os.path.join(ROOT, "production.ini"))
    parser.set("app:main", "saas.sync.linger_ms", str(linger_ms))
    with open(path, "w") as handle:
        parser.write(handle)


@contextlib.contextmanager
def celery_worker(env: dict[str, str], workdir: str, linger_ms: int, stream: str,
                  client: redis.Redis):
    """A Celery worker with beat, draining with ``linger_ms``; yields its pid
    once its first drain created the stream's consumer group."""
    ini = os.path.join(workdir, f"linger-{linger_ms}.ini")
    write_ini(ini, linger_ms)
    queue = f"{env['SAAS_REDIS_PREFIX']}-{uuid.uuid4().hex[:6]}"
    log = open(os.path.join(workdir, f"celery-{linger_ms}.log"), "w")  # noqa: SIM115
    process = subprocess.Popen(
        [os.path.join(BIN, "celery"), "-A", "workers", "worker", "-B", "--pool", "solo",
         "--loglevel", "WARNING", "-Q", queue, "--schedule",
         os.path.join(workdir, f"beat-{linger_ms}")],
        cwd=ROOT, env={**env, "SAAS_CONFIG": ini, "CELERY_DEFAULT_QUEUE": queue},
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        client.delete(stream)  # a fresh group for this worker to create
        while not _has_group(client, stream):
            if process.poll() is not None:
                raise RuntimeError(f"the Celery worker exited; see {log.name}")
            time.sleep(0.2)
        time.sleep(1.0)  # its start-up work done
        yield process.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def _has_group(client: redis.Redis, stream: str) -> bool:
    try:
        return bool(client.xinfo_groups(stream))
    except redis.ResponseError:  # no stream yet
        return False


class Feeder:
    """Appends one login event at a time at a steady rate, in a thread."""

    def __init__(self, client: redis.Redis, stream: str, app, users: int, rate: float,
                 first: int) -> None:
        self.client, self.stream, self.app, self.users = client, stream, app, users
        self.interval = 1.0 / rate
        self.fed = 0
        self.first = first
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Feeder:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        due = time.monotonic()
        while not self._stop.is_set():
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            n = self.first + self.fed
            self.client.xadd(self.stream, login_event(self.app, n, self.users,
                                                      int(time.time() * 1000)))
            self.fed += 1
            due += self.interval


def measure_live(client, stream: str, app, args, worker: int, postgres: PostgresCPU,
                 redis_pid: int, rate: int, first: int) -> dict:
    probe = LagProbe(client, [stream])
    probe.start()
    with Feeder(client, stream, app, args.users, rate, first) as feeder:
        time.sleep(args.warmup)
        fed0, t0 = feeder.fed, time.time()
        worker0, pg0, redis0 = tree_cpu(worker), postgres.snapshot(), process_cpu(redis_pid)
        time.sleep(args.duration)
        fed1, t1 = feeder.fed, time.time()
        worker1, pg1, redis1 = tree_cpu(worker), postgres.snapshot(), process_cpu(redis_pid)
    while client.xlen(stream):  # the last events of the window land
        time.sleep(0.05)
    time.sleep(0.2)
    probe.stop()
    events = max(fed1 - fed0, 1)
    lag = probe.lag_percentiles(int(t0 * 1000), int(t1 * 1000)) or {}
    return {"events": events, "fed": feeder.fed,
            "worker_us": (worker1 - worker0) * 1e6 / events,
            "pg_us": PostgresCPU.spent(pg0, pg1) * 1e6 / events,
            "redis_us": (redis1 - redis0) * 1e6 / events,
            "lag": lag, "load": os.getloadavg()[0]}


def measure_idle(worker: int, postgres: PostgresCPU, seconds: float) -> dict:
    """The worker's and its database's CPU per second with no events at all
    (beat's ticks, the waiting drain runs, webhook delivery's polls)."""
    worker0, pg0 = tree_cpu(worker), postgres.snapshot()
    time.sleep(seconds)
    return {"worker_ms_s": (tree_cpu(worker) - worker0) * 1000 / seconds,
            "pg_ms_s": PostgresCPU.spent(pg0, postgres.snapshot()) * 1000 / seconds}


def measure_backlog(engine, client, app, args, postgres: PostgresCPU) -> dict:
    options = types.SimpleNamespace(events=args.backlog_events, users=args.users,
                                    batch_size=args.batch_size)
    run = drain_once(engine, client, app, options, postgres)
    if not run["ok"]:
        raise RuntimeError("the backlog drain lost events")
    return {"events": args.backlog_events, "rate": run["rate"],
            "worker_us": run["cpu"] * 1e6 / args.backlog_events,
            "pg_us": run["pg_cpu"] * 1e6 / args.backlog_events, "load": os.getloadavg()[0]}


def _median(rows: list[dict], key) -> float:
    return statistics.median(key(row) for row in rows)


def report(backlogs: list[dict], live: dict[tuple[int, int], list[dict]]) -> None:
    print("| round | drain | rate /s | events | worker µs/event | PostgreSQL µs/event "
          "| worker + PG µs/event | × backlog (≤ 2) | Redis µs/event | lag p50 ms "
          "| lag p99 ms (< 1000) | lag max ms | load (1 min) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, backlog in enumerate(backlogs, 1):
        total = backlog["worker_us"] + backlog["pg_us"]
        print(f"| {n} | backlog (bench.sync, full batches) | {backlog['rate']:,.0f} "
              f"| {backlog['events']} | {backlog['worker_us']:.0f} | {backlog['pg_us']:.0f} "
              f"| {total:.0f} | 1.00 | – | – | – | – | {backlog['load']:.1f} |")
        for (linger, rate), rows in live.items():
            row = rows[n - 1]
            total_live = row["worker_us"] + row["pg_us"]
            print(f"| {n} | live, linger {linger} ms | {rate} | {row['events']} "
                  f"| {row['worker_us']:.0f} | {row['pg_us']:.0f} | {total_live:.0f} "
                  f"| {total_live / total:.2f} | {row['redis_us']:.0f} "
                  f"| {row['lag'].get('p50', '–')} | {row['lag'].get('p99', '–')} "
                  f"| {row['lag'].get('max', '–')} | {row['load']:.1f} |")
    backlog_us = _median(backlogs, lambda b: b["worker_us"] + b["pg_us"])
    print(f"\nmedians over {len(backlogs)} round(s); backlog {backlog_us:.0f} µs/event "
          "(drain process + PostgreSQL)\n")
    print("| drain | rate /s | worker + PG µs/event | × backlog (≤ 2) | lag p99 ms (< 1000) |")
    print("|---|---:|---:|---:|---:|")
    for (linger, rate), rows in live.items():
        total = _median(rows, lambda r: r["worker_us"] + r["pg_us"])
        ratio = _median([{"r": (r["worker_us"] + r["pg_us"]) / (b["worker_us"] + b["pg_us"])}
                         for r, b in zip(rows, backlogs, strict=True)], lambda x: x["r"])
        p99 = _median(rows, lambda r: r["lag"].get("p99", float("inf")))
        print(f"| live, linger {linger} ms | {rate} | {total:.0f} | {ratio:.2f} | {p99:.0f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description="Event sync under live load")
    parser.add_argument("--rates", default="300,1000", help="events per second, comma-separated")
    parser.add_argument("--lingers", default="0,200", help="saas.sync.linger_ms values to A/B")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--backlog-events", type=int, default=30_000)
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=2000)
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    lingers = [int(linger) for linger in args.lingers.split(",")]

    workdir = tempfile.mkdtemp(prefix="bk-sync-live-")
    client, redis_url, redis_process = start_redis(workdir)
    name, url = scratch_database()
    engine = create_engine(url)
    prefix = f"bklive{uuid.uuid4().hex[:8]}"
    master_key = secrets.token_urlsafe(32)
    inherited = {k: v for k, v in os.environ.items()
                 if not k.startswith(("SAAS_", "CELERY_", "DATABASE_URL", "REDIS_URL"))}
    env = {**inherited, "DATABASE_URL": url, "REDIS_URL": redis_url,
           "CELERY_BROKER_URL": BROKER_URL, "SAAS_MASTER_KEY": master_key,
           "SAAS_PUBLIC_BASE_URL": "http://127.0.0.1:1", "SAAS_REDIS_PREFIX": prefix,
           "PYTHONPATH": ROOT}
    (stream,) = layout_from_settings({"redis.url": redis_url, "saas.redis_prefix": prefix,
                                      "saas.sync.stream_shards": None}).stream_keys()
    postgres = PostgresCPU(ADMIN_DSN, name)
    backlogs: list[dict] = []
    idle: dict[int, list[dict]] = {linger: [] for linger in lingers}
    live: dict[tuple[int, int], list[dict]] = {(linger, rate): [] for linger in lingers
                                               for rate in rates}
    try:
        with Session(engine, expire_on_commit=False) as session:
            member = sign_up(session, Passwords(), tenant_name="Bench",
                             email="bench@example.com", password="bench password 1")
            app, _ = create_app(session, SecretBox(master_key), tenant_id=member.tenant_id,
                                name="Bench")
            session.commit()
        fed = 0
        for round_ in range(1, args.rounds + 1):
            backlogs.append(measure_backlog(engine, client, app, args, postgres))
            for linger in lingers:
                with celery_worker(env, workdir, linger, stream, client) as worker:
                    idle[linger].append(measure_idle(worker, postgres, args.duration))
                    print(f"round {round_}: linger {linger} ms, idle: {idle[linger][-1]}",
                          file=sys.stderr, flush=True)
                    for rate in rates:
                        row = measure_live(client, stream, app, args, worker, postgres,
                                           redis_process.pid, rate, fed)
                        fed += row["fed"]
                        live[(linger, rate)].append(row)
                        print(f"round {round_}: linger {linger} ms, {rate}/s: "
                              f"{row['worker_us'] + row['pg_us']:.0f} µs/event, "
                              f"lag {row['lag']}", file=sys.stderr, flush=True)
    finally:
        engine.dispose()
        redis_process.terminate()
        redis_process.wait()
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not os.environ.get("BENCH_KEEP_LOGS"):
            shutil.rmtree(workdir, ignore_errors=True)
    report(backlogs, live)
    return 0


if __name__ == "__main__":
    sys.exit(main())
