"""Sync benchmark: drain a backlog of login events into PostgreSQL, one process.

Creates a scratch database (migrated with Alembic) and a Redis key prefix,
appends N login events (one audit record and one user merge each, spread over
a pool of users) exactly as the login path encodes them, then times the same
drain the Celery task runs, in one process. Prints events/s and checks that
every event landed.

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
from saas.apps.services import create_app
from saas.audit.models import AuditEvent
from saas.config import database_url
from saas.crypto import SecretBox
from saas.passwords import Passwords
from saas.redis import Keys
from saas.sync.drain import drain
from saas.sync.stream import EventStream
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


def fill(client, stream_key: str, app, events: int, users: int) -> float:
    started = time.perf_counter()
    base_ms = int(time.time() * 1000) - events
    pipe = client.pipeline(transaction=False)
    for n in range(events):
        entry = login_entry(app, f"user-{n % users}", base_ms + n,
                            custom={"plan": "pro" if n % 3 else "free", "visits": n},
                            profile={"name": f"User {n % users}"} if n % 5 == 0 else None)
        pipe.xadd(stream_key, entry)
        if n % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    return time.perf_counter() - started


def drain_once(engine, client, app, args) -> dict:
    """Fill a fresh stream, drain it, and check that every event landed once."""
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE end_users, audit_events"))
    keys = Keys(f"bkbench:{uuid.uuid4().hex[:8]}")
    try:
        stream = EventStream(client, keys, "bench-worker")
        fill_seconds = fill(client, stream.stream, app, args.events, args.users)
        stream.ensure_group()

        started = time.perf_counter()
        cpu_started = time.process_time()
        result = drain(stream, sessionmaker(engine),
                       batch_size=args.batch_size)
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
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
            "dead": result.dead_lettered}


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
        runs = [drain_once(engine, client, app, args) for _ in range(args.runs)]
    finally:
        engine.dispose()
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    print("| scenario | events | users | batch | seconds | events/s | CPU s (drain process) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for n, run in enumerate(runs, 1):
        print(f"| sync drain, 1 process, run {n} | {args.events} | {args.users} "
              f"| {args.batch_size} | {run['seconds']:.2f} | {run['rate']:,.0f} "
              f"| {run['cpu']:.2f} |")
    median = sorted(runs, key=lambda run: run["rate"])[len(runs) // 2]
    ok = all(run["ok"] for run in runs)
    print(f"\nmedian: {median['rate']:,.0f} events/s per worker process "
          f"({median['cpu'] * 1e6 / args.events:.0f} µs of drain-process CPU per event)")
    print(f"(each run: a fresh stream filled in ~{median['fill_seconds']:.1f} s; "
          f"audit rows {median['audit']}, users {median['users']}, "
          f"dead letters {median['dead']}; all landed in every run: {'yes' if ok else 'NO'})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
