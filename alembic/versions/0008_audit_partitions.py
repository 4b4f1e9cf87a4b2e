"""Audit events partitioned by month (PostgreSQL); SQLite is left as it is.

``audit_events`` becomes a table partitioned by RANGE of ``at``, one partition
per UTC month (``audit_events_pYYYY_MM``) plus ``audit_events_default``, which
catches any row no month partition takes (a clock far off, a batch older than
the oldest partition), so an insert is never refused. The primary key becomes
``(at, id)``: a partitioned table's unique keys must hold the partition key,
and with the time first the sync's inserts land at the right edge of the
index. The audit id stays the idempotency key; a re-delivered row has the same
time, so ``ON CONFLICT (at, id)`` still catches it.

The conversion copies the rows: rename the old table, create the partitioned
one with partitions for every month holding rows and the current month plus
``MONTHS_AHEAD``, copy, build the keys, drop the old table. It holds an
exclusive lock on the audit log for the copy: a maintenance window,
docs/operations.md says how long. The partition helpers are a frozen copy of
``saas.audit.partitions`` (a migration must not change when that module does).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

import datetime as dt

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

MONTHS_AHEAD = 3
# Table names below are these constants, never input (hence the S608 waivers).
OLD = "audit_events_unpartitioned"
INDEXES = (("ix_audit_events_app_id_at", "app_id, at"),
           ("ix_audit_events_tenant_id_at", "tenant_id, at"))


def _month(value: dt.date, shift: int = 0) -> dt.date:
    index = value.year * 12 + value.month - 1 + shift
    return dt.date(index // 12, index % 12 + 1, 1)


def _bound(month: dt.date) -> str:
    return f"'{month.isoformat()} 00:00:00+00'"


def _create_month(month: dt.date) -> None:
    op.execute(f"CREATE TABLE audit_events_p{month:%Y_%m} PARTITION OF audit_events "
               f"FOR VALUES FROM ({_bound(month)}) TO ({_bound(_month(month, 1))})")


def _is_postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    if not _is_postgres():
        return  # SQLite has no partitioning: one plain table, retention by DELETE.
    # The copy may outlast env.py's 5-minute guard on a large log; it is the
    # documented maintenance window, and the lock_timeout still applies.
    op.execute("SET LOCAL statement_timeout = 0")
    op.execute(f"ALTER TABLE audit_events RENAME TO {OLD}")
    op.execute(f"ALTER TABLE {OLD} RENAME CONSTRAINT pk_audit_events TO pk_{OLD}")
    for name, _columns in INDEXES:
        op.execute(f"DROP INDEX {name}")
    op.execute(f"CREATE TABLE audit_events (LIKE {OLD} INCLUDING DEFAULTS INCLUDING "
               f"CONSTRAINTS) PARTITION BY RANGE (at)")
    months = {row[0] for row in op.get_bind().exec_driver_sql(
        f"SELECT DISTINCT date_trunc('month', at AT TIME ZONE 'UTC')::date FROM {OLD}")}  # noqa: S608
    this_month = _month(dt.datetime.now(dt.UTC).date())
    months |= {_month(this_month, shift) for shift in range(MONTHS_AHEAD + 1)}
    for month in sorted(months):
        _create_month(month)
    op.execute("CREATE TABLE audit_events_default PARTITION OF audit_events DEFAULT")
    op.execute(f"INSERT INTO audit_events SELECT * FROM {OLD}")  # noqa: S608
    # Keys built after the copy: one sort per partition, not one insert per row.
    op.execute("ALTER TABLE audit_events ADD CONSTRAINT pk_audit_events PRIMARY KEY (at, id)")
    for name, columns in INDEXES:
        op.execute(f"CREATE INDEX {name} ON audit_events ({columns})")
    op.execute(f"DROP TABLE {OLD}")


def downgrade() -> None:
    if not _is_postgres():
        return
    op.execute("SET LOCAL statement_timeout = 0")
    op.execute(f"CREATE TABLE {OLD} (LIKE audit_events INCLUDING DEFAULTS INCLUDING "
               f"CONSTRAINTS)")
    # (at, id) was the key while partitioned; one row per id again.
    op.execute(f"INSERT INTO {OLD} SELECT DISTINCT ON (id) * FROM audit_events "  # noqa: S608
               "ORDER BY id, at")
    op.execute("DROP TABLE audit_events")  # with its partitions
    op.execute(f"ALTER TABLE {OLD} RENAME TO audit_events")
    op.execute("ALTER TABLE audit_events ADD CONSTRAINT pk_audit_events PRIMARY KEY (id)")
    for name, columns in INDEXES:
        op.execute(f"CREATE INDEX {name} ON audit_events ({columns})")
