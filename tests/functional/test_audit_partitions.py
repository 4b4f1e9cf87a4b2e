"""Audit partitions on real PostgreSQL: the upkeep task, rows outside every month,
two runs at once, and pruning in the plan of an app's recent events.

Partition changes here run in the test's rolled-back transaction (DDL is
transactional), at dates far from the run's own partitions, except the
concurrency test, which commits in a database of its own.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from typing import Any

from alembic import command
from sqlalchemy import create_engine, event, text
from sqlalchemy.orm import Session

from saas.audit.models import AuditEvent
from saas.audit.partitions import (
    DEFAULT_PARTITION,
    maintain_audit,
    month_of,
    monthly_partitions,
    partition_name,
)
from saas.audit.queries import list_events
from saas.sync.copy_writer import copy_text, write_postgres
from saas.tasks import BEAT_SCHEDULE, TaskName
from tests.conftest import alembic_config
from tests.test_migrations import scratch_postgres  # noqa: F401 (a fixture)
from tests.waiting import wait_until

UTC = dt.UTC
FOREVER = 36_500  # days: a retention that drops nothing here


def at(text_: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text_).replace(tzinfo=UTC)


def sync_record(app_id: str, when: dt.datetime, event_id: str | None = None) -> dict[str, Any]:
    """An audit record as the sync's batches carry it."""
    return {"id": event_id or str(uuid.uuid4()), "tenant_id": None, "app_id": app_id,
            "type": "login.succeeded", "outcome": "success", "reason": None,
            "user_id": None, "external_id": "u1", "ip": None, "user_agent": None,
            "request_id": None, "at_ms": int(when.timestamp() * 1000), "details": {}}


def sync_insert(db: Session, records: list[dict[str, Any]]) -> None:
    """Through the sync's own statements (COPY, then INSERT … ON CONFLICT (at, id))."""
    write_postgres(db, *copy_text({}, records))


def where_rows_are(db: Session, app_id: str) -> dict[str, str]:
    return dict(db.execute(text(
        "SELECT id::text, tableoid::regclass::text FROM audit_events WHERE app_id = :app"),
        {"app": app_id}).all())


def test_the_task_is_scheduled():
    entry = BEAT_SCHEDULE["maintain-audit"]
    assert entry["task"] == TaskName.MAINTAIN_AUDIT.value


def test_upkeep_makes_coming_months_and_drops_expired_ones_only(db):
    app_id = uuid.uuid4().hex[:8]
    maintain_audit(db, at("2030-03-10"), FOREVER)  # 2030-03 … 2030-06
    assert {partition_name(m) for m in monthly_partitions(db)} >= {
        "audit_events_p2030_03", "audit_events_p2030_04", "audit_events_p2030_05",
        "audit_events_p2030_06"}
    kept_row, expired_row = str(uuid.uuid4()), str(uuid.uuid4())
    stray_old, stray_soon, stray_far = (str(uuid.uuid4()) for _ in range(3))
    sync_insert(db, [
        sync_record(app_id, at("2030-05-02"), kept_row),     # its month ends after the cutoff
        sync_record(app_id, at("2030-04-20"), expired_row),  # its month ends before
        sync_record(app_id, at("2001-01-01"), stray_old),    # no partition: default, expired
        sync_record(app_id, at("2031-08-09"), stray_soon),   # default until its month is made
        sync_record(app_id, at("2040-01-01"), stray_far),    # default, beyond the window
    ])
    assert where_rows_are(db, app_id)[stray_soon] == DEFAULT_PARTITION

    # 400 days before 2031-06-15 is 2030-05-11: April 2030 has wholly expired.
    done = maintain_audit(db, at("2031-06-15"), 400)

    months = {month.isoformat()[:7] for month in monthly_partitions(db)}
    assert months == {"2030-05", "2030-06", "2031-06", "2031-07", "2031-08", "2031-09"}
    assert "audit_events_p2030_04" in done.dropped and "audit_events_p2030_05" not in done.dropped
    assert done.created == ["audit_events_p2031_06", "audit_events_p2031_07",
                            "audit_events_p2031_08", "audit_events_p2031_09"]
    # (At least: the run's database may hold other tests' committed strays.)
    assert done.moved_from_default >= 1 and done.rows_deleted >= 1
    assert where_rows_are(db, app_id) == {
        kept_row: "audit_events_p2030_05", stray_soon: "audit_events_p2031_08",
        stray_far: DEFAULT_PARTITION}
    # A moved-in month is a full partition: its key still refuses a duplicate.
    sync_insert(db, [sync_record(app_id, at("2031-08-09"), stray_soon)])
    assert len(where_rows_are(db, app_id)) == 3

    again = maintain_audit(db, at("2031-06-15"), 400)
    assert (again.created, again.dropped, again.rows_deleted) == ([], [], 0)


def test_rows_far_in_the_future_or_past_are_taken_and_kept_once(db):
    app_id = uuid.uuid4().hex[:8]
    records = [sync_record(app_id, at("1999-12-31")), sync_record(app_id, at("2199-01-01")),
               sync_record(app_id, dt.datetime.now(UTC))]
    sync_insert(db, records)
    sync_insert(db, records)  # a batch delivered twice adds nothing
    placed = where_rows_are(db, app_id)
    assert len(placed) == 3
    assert placed[records[0]["id"]] == placed[records[1]["id"]] == DEFAULT_PARTITION
    assert placed[records[2]["id"]] == partition_name(month_of(dt.datetime.now(UTC)))


def _plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    nodes, pending = [], [plan]
    while pending:
        node = pending.pop()
        nodes.append(node)
        pending.extend(node.get("Plans", []))
    return nodes


def _explain_list_events(db: Session, app_id: str, since: dt.datetime) -> list[dict[str, Any]]:
    """EXPLAIN of the exact statement ``list_events`` sends, with its parameters."""
    sent: list[tuple[str, Any]] = []
    connection = db.connection()

    def capture(_conn, _cursor, statement, parameters, _context, _many) -> None:
        sent.append((statement, parameters))

    event.listen(connection, "before_cursor_execute", capture)
    try:
        list_events(db, app_id, {"since": since}, limit=50)
    finally:
        event.remove(connection, "before_cursor_execute", capture)
    [(statement, parameters)] = sent
    raw = connection.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters).scalar()
    plan = raw if isinstance(raw, list) else json.loads(raw)
    return _plan_nodes(plan[0]["Plan"])


def test_an_apps_recent_events_read_only_their_months_through_the_index(db):
    now = dt.datetime.now(UTC)
    this_month = month_of(now)
    four_months_ago = dt.datetime.combine(month_of(now, -4), dt.time(), UTC)
    maintain_audit(db, four_months_ago, FOREVER)  # four past months, rolled back later
    app_id, others = uuid.uuid4().hex[:8], [uuid.uuid4().hex[:8] for _ in range(40)]
    records = [sync_record(app, now - dt.timedelta(days=days, minutes=i))
               for days in (0, 35, 70, 100) for i, app in enumerate([app_id, *others] * 25)]
    sync_insert(db, records)
    db.execute(text("ANALYZE audit_events"))

    since = now - dt.timedelta(hours=1)
    nodes = _explain_list_events(db, app_id, since)
    read = {node["Relation Name"] for node in nodes if "Relation Name" in node}
    allowed = {partition_name(month_of(since, shift)) for shift in range(5)} | {
        DEFAULT_PARTITION}
    assert read <= allowed, read - allowed  # pruned: no month before `since` is read
    assert partition_name(this_month) in read
    past = {partition_name(month_of(now, -shift)) for shift in (1, 2, 3, 4)} - allowed
    assert not read & past
    scans = [node for node in nodes if node.get("Relation Name") == partition_name(this_month)]
    assert scans and all(node["Node Type"] in ("Index Scan", "Index Only Scan")
                         and node["Index Name"].endswith("app_id_at_idx") for node in scans)
    # The page itself still answers from those partitions.
    events, _cursor = list_events(db, app_id, {"since": since}, limit=50)
    assert events and all(isinstance(e, AuditEvent) and e.at >= since for e in events)


def test_two_runs_at_once_make_each_partition_once(scratch_postgres):  # noqa: F811
    command.upgrade(alembic_config(scratch_postgres), "head")
    engine = create_engine(scratch_postgres)
    later = at("2035-01-15")
    try:
        first, second = Session(engine), Session(engine)
        done_first = maintain_audit(first, later, FOREVER)  # holds the lock until commit
        outcome: dict[str, Any] = {}

        def run_second() -> None:
            try:
                outcome["done"] = maintain_audit(second, later, FOREVER)
                second.commit()
            except Exception as exc:  # reported by the assertion below
                outcome["error"] = exc

        thread = threading.Thread(target=run_second)
        thread.start()
        with engine.connect() as watcher:
            wait_until(lambda: watcher.exec_driver_sql(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            ).scalar(), "the second run waiting for the first")
        first.commit()
        thread.join()
        assert "error" not in outcome, outcome
        assert len(done_first.created) == 4 and outcome["done"].created == []
    finally:
        first.close()
        second.close()
        engine.dispose()
