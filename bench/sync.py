"""Sync benchmark: drain a backlog of login events into PostgreSQL, one process.

Creates a scratch database (migrated with Alembic) and a Redis key prefix,
appends N login events (one audit record and one user merge each, spread over
a pool of users) exactly as the login path encodes them, then times the same
drain the Celery task runs, in one process. Prints events/s, the CPU the
drain process and PostgreSQL (the scratch database's backends,
``bench.service_cpu``) spent per event, and checks that every event landed.

The floor, in the same run: the same rows — each batch's folded users and
audit rows as the drain would write them, prepared beforehand — written by
a bare ``COPY`` into scratch tables and one plain ``INSERT … SELECT`` per
table (an upsert for users, who recur across batches), a transaction per
batch, into emptied tables. The drain's events/s is printed as a % of the
floor's (DESIGN §10: ≥ 50 %).

    python -m bench.sync [--events 100000] [--users 20000] [--batch-size 2000] [--runs 3]

Each run drains a fresh backlog into emptied tables; the median run is the
figure to quote (the machine's other load moves single runs a lot).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid

import psycopg
import redis
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from bench.entries import login_entry
from bench.service_cpu import PostgresCPU
from saas.apps.services import create_app
from saas.audit.models import AuditEvent
from saas.config import database_url
from saas.crypto import SecretBox
from saas.passwords import Passwords
from saas.redis import Keys
from saas.sync.drain import drain
from saas.sync.parse import parse_entry
from saas.sync.stream import EventStream
from saas.sync.writer import prepare_batch
from saas.tenants.services import sign_up
from saas.users.models import EndUser

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADMIN_DSN = os.environ.get("BENCH_DATABASE_ADMIN_URL", "postgresql://postgres@localhost:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://localhost:6379/0")


def scratch_database() -> tuple[str, str]:
    name = f"bk_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = database_url(ADMIN_DSN.rpartition("/")[0] + "/" + name)
    cfg = Config()
    cfg.set_main_option("script_location", os.path.join(ROOT, "alembic"))
    cfg.attributes["sqlalchemy.url"] = url
    command.upgrade(cfg, "head")
    return name, url


def login_event(app, n: int, users: int, at_ms: int) -> dict[str, str]:
    """The benchmark's n-th login: one of ``users`` users, a custom field that
    changes every time, a profile every fifth login."""
    return login_entry(app, f"user-{n % users}", at_ms,
                       custom={"plan": "pro" if n % 3 else "free", "visits": n},
                       profile={"name": f"User {n % users}"} if n % 5 == 0 else None)


def fill(client, stream_key: str, app, events: int, users: int) -> float:
    started = time.perf_counter()
    base_ms = int(time.time() * 1000) - events
    pipe = client.pipeline(transaction=False)
    for n in range(events):
        pipe.xadd(stream_key, login_event(app, n, users, base_ms + n))
        if n % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    return time.perf_counter() - started


def truncate(engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE end_users, audit_events"))


def drain_once(engine, client, app, args, postgres: PostgresCPU | None = None) -> dict:
    """Fill a fresh stream, drain it, and check that every event landed once.

    With ``postgres``, also the CPU its backends spent over the drain."""
    truncate(engine)
    keys = Keys(f"bkbench:{uuid.uuid4().hex[:8]}")
    try:
        stream = EventStream(client, keys, "bench-worker")
        fill_seconds = fill(client, stream.stream, app, args.events, args.users)
        stream.ensure_group()
        sessions = sessionmaker(engine)
        with sessions() as session:  # the pool's connection exists before the window
            session.execute(text("SELECT 1"))

        pg_before = postgres.snapshot() if postgres else {}
        started = time.perf_counter()
        cpu_started = time.process_time()
        result = drain(stream, sessions, batch_size=args.batch_size)
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        pg_cpu = PostgresCPU.spent(pg_before, postgres.snapshot()) if postgres else None
    finally:
        for key in client.scan_iter(match=f"{keys.prefix}:*"):
            client.delete(key)

    with Session(engine) as session:
        audit = session.scalar(select(func.count()).select_from(AuditEvent))
        users = session.scalar(select(func.count()).select_from(EndUser))
    # One audit row per event, plus the sync's user.created row per new user.
    ok = (result.applied == args.events and audit == args.events + args.users
          and users == args.users)
    return {"seconds": seconds, "cpu": cpu, "rate": args.events / seconds, "ok": ok,
            "fill_seconds": fill_seconds, "audit": audit, "users": users,
            "dead": result.dead_lettered, "pg_cpu": pg_cpu}


# The floor's scratch tables: the drain's staging layout (COPY text of
# saas.sync.copy_writer), emptied at each commit.
_FLOOR_TABLES = """
CREATE TEMP TABLE IF NOT EXISTS bench_floor_users (
    id uuid, app_id uuid, external_id text, custom jsonb, profile jsonb,
    custom_versions jsonb, profile_versions jsonb, first_ms bigint, last_ms bigint
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS bench_floor_audit (
    id uuid, tenant_id uuid, app_id text, type text, outcome text, reason text,
    user_id uuid, external_id text, ip text, user_agent text, request_id text,
    at_ms bigint, details jsonb
) ON COMMIT DELETE ROWS
"""
_FLOOR_USERS = """
INSERT INTO end_users (id, app_id, external_id, custom, profile, custom_versions,
                       profile_versions, created_at, last_login_at)
SELECT id, app_id, external_id, custom, profile, custom_versions, profile_versions,
       timestamptz 'epoch' + first_ms * interval '1 millisecond',
       timestamptz 'epoch' + last_ms * interval '1 millisecond'
FROM bench_floor_users
ON CONFLICT (id) DO UPDATE SET custom = excluded.custom, profile = excluded.profile,
    custom_versions = excluded.custom_versions, profile_versions = excluded.profile_versions,
    last_login_at = excluded.last_login_at
"""
_FLOOR_AUDIT = """
INSERT INTO audit_events (id, tenant_id, app_id, type, outcome, reason, user_id,
                          external_id, ip, user_agent, request_id, at, details)
SELECT id, tenant_id, app_id, type, outcome, reason, user_id, external_id, ip,
       user_agent, request_id, timestamptz 'epoch' + at_ms * interval '1 millisecond', details
FROM bench_floor_audit
"""


def floor_batches(app, args) -> list[tuple[str, str]]:
    """The rows the drain writes, batch by batch, as COPY text (made before timing)."""
    base_ms = int(time.time() * 1000) - args.events
    batches = []
    for start in range(0, args.events, args.batch_size):
        parsed = [parse_entry(f"{n}-0", {k.encode(): v.encode() for k, v in
                                         login_event(app, n, args.users, base_ms + n).items()})
                  for n in range(start, min(start + args.batch_size, args.events))]
        batches.append(prepare_batch(parsed, postgres=True).copy_text)
    return batches


def floor_once(engine, url: str, batches: list[tuple[str, str]]) -> float:
    """Seconds to land ``batches`` with a bare COPY + INSERT … SELECT each."""
    truncate(engine)
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as connection:
        connection.execute(_FLOOR_TABLES)
        connection.commit()
        started = time.perf_counter()
        for users, audit in batches:
            with connection.cursor() as cursor:
                with cursor.copy("COPY bench_floor_users FROM STDIN") as copy:
                    copy.write(users)
                with cursor.copy("COPY bench_floor_audit FROM STDIN") as copy:
                    copy.write(audit)
                cursor.execute(_FLOOR_USERS + ";" + _FLOOR_AUDIT)
            connection.commit()
        return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description="Event sync benchmark")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3,
                        help="drain this many backlogs; the median run is reported")
    args = parser.parse_args()

    name, url = scratch_database()
    engine = create_engine(url)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        with Session(engine, expire_on_commit=False) as session:
            member = sign_up(session, Passwords(), tenant_name="Bench",
                             email="bench@example.com", password="bench password 1")
            app, _ = create_app(session, SecretBox("b" * 40), tenant_id=member.tenant_id,
                                name="Bench")
            session.commit()
        postgres = PostgresCPU(ADMIN_DSN, name)
        batches = floor_batches(app, args)
        runs = []
        for _ in range(args.runs):  # the drain and its floor back to back
            run = drain_once(engine, client, app, args, postgres)
            run["floor_seconds"] = floor_once(engine, url, batches)
            runs.append(run)
    finally:
        engine.dispose()
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    print("| scenario | events | users | batch | seconds | events/s | CPU s (drain process) "
          "| CPU s (PostgreSQL) | floor events/s | % of floor (≥ 50) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, run in enumerate(runs, 1):
        run["floor_rate"] = args.events / run["floor_seconds"]
        print(f"| sync drain, 1 process, run {n} | {args.events} | {args.users} "
              f"| {args.batch_size} | {run['seconds']:.2f} | {run['rate']:,.0f} "
              f"| {run['cpu']:.2f} | {run['pg_cpu']:.2f} | {run['floor_rate']:,.0f} "
              f"| {run['rate'] * 100 / run['floor_rate']:.0f} |")
    median = sorted(runs, key=lambda run: run["rate"])[len(runs) // 2]
    ok = all(run["ok"] for run in runs)
    share = sorted(run["rate"] * 100 / run["floor_rate"] for run in runs)[len(runs) // 2]
    print(f"\nmedian: {median['rate']:,.0f} events/s per worker process "
          f"({median['cpu'] * 1e6 / args.events:.0f} µs of drain-process CPU per event, "
          f"{(median['cpu'] + median['pg_cpu']) * 1e6 / args.events:.0f} µs with "
          f"PostgreSQL's)")
    print(f"floor (bare COPY + INSERT … SELECT of the same rows): median share "
          f"{share:.0f} % (target ≥ 50 %)")
    print(f"(each run: a fresh stream filled in ~{median['fill_seconds']:.1f} s; "
          f"audit rows {median['audit']}, users {median['users']}, "
          f"dead letters {median['dead']}; all landed in every run: {'yes' if ok else 'NO'})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
