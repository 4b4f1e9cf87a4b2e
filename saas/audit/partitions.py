"""Audit retention, the one place for it: monthly partitions on PostgreSQL, rows on SQLite.

On PostgreSQL ``audit_events`` is partitioned by month of ``at`` (migration
0008). :func:`maintain_audit` makes the partitions of the current month and
``MONTHS_AHEAD`` more, and drops whole partitions whose every row is older than
``saas.audit.retention_days``: a ``DROP TABLE`` instead of deleting millions of
rows. ``audit_events_default`` catches any row no month takes, so an insert is
never refused; a month made later takes its rows out of it, and expired strays
are deleted from it.

Safe to run twice at once: one transaction under a transaction-scoped advisory
lock; the second run waits, then finds nothing to do. DDL waits at most
``LOCK_TIMEOUT`` for the table's lock (a partition change locks the whole log
for an instant), else the run fails and beat's next run tries again.

SQLite (development) has no partitioning: expired rows are deleted.

Table names in the SQL are this module's constants and dates it computed,
never input (hence the S608 waivers).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field

from sqlalchemy import delete, text
from sqlalchemy.orm import Session

from saas.audit.models import AuditEvent

log = logging.getLogger(__name__)

PARENT = "audit_events"
DEFAULT_PARTITION = "audit_events_default"
MONTHS_AHEAD = 3
LOCK_TIMEOUT = "2s"
# pg_advisory_xact_lock key: "bk-audit" in ASCII, an arbitrary constant of ours.
ADVISORY_LOCK_KEY = 0x626B2D6175646974
_MONTHLY = re.compile(r"^audit_events_p(\d{4})_(\d{2})$")


def is_partition_name(name: str) -> bool:
    """A table name of an audit partition (Alembic's autogenerate leaves them out)."""
    return name == DEFAULT_PARTITION or _MONTHLY.match(name) is not None


def month_of(value: dt.datetime | dt.date, shift: int = 0) -> dt.date:
    """The first day of ``value``'s month (UTC), ``shift`` months on."""
    if isinstance(value, dt.datetime):
        value = value.astimezone(dt.UTC)
    index = value.year * 12 + value.month - 1 + shift
    return dt.date(index // 12, index % 12 + 1, 1)


def partition_name(month: dt.date) -> str:
    return f"audit_events_p{month:%Y_%m}"


def _bound(month: dt.date) -> str:
    # A date we computed, never input: safe to write into DDL, which takes no parameters.
    return f"'{month.isoformat()} 00:00:00+00'"


def _range(month: dt.date) -> str:
    return f"FROM ({_bound(month)}) TO ({_bound(month_of(month, 1))})"


def _start(month: dt.date) -> dt.datetime:
    return dt.datetime(month.year, month.month, 1, tzinfo=dt.UTC)


@dataclass
class Maintenance:
    """What one run did."""

    partitioned: bool
    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    rows_deleted: int = 0
    moved_from_default: int = 0

    def as_dict(self) -> dict[str, object]:
        return {"partitioned": self.partitioned, "created": self.created,
                "dropped": self.dropped, "rows_deleted": self.rows_deleted,
                "moved_from_default": self.moved_from_default}


def is_partitioned(session: Session) -> bool:
    if session.get_bind().dialect.name != "postgresql":
        return False
    return bool(session.scalar(text(
        "SELECT c.relkind = 'p' FROM pg_class c WHERE c.oid = to_regclass(:name)"),
        {"name": PARENT}))


def monthly_partitions(session: Session) -> dict[dt.date, str]:
    """The month partitions attached to ``audit_events``, by month."""
    names = session.scalars(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass(:name)"), {"name": PARENT})
    months = {}
    for name in names:
        match = _MONTHLY.match(name)
        if match:
            months[dt.date(int(match[1]), int(match[2]), 1)] = name
    return months


def maintain_audit(session: Session, now: dt.datetime, retention_days: int) -> Maintenance:
    """Make the coming months' partitions, drop expired ones. Runs in the caller's
    transaction, which it locks (commit soon: DDL holds the table's lock)."""
    cutoff = now - dt.timedelta(days=retention_days)
    if not is_partitioned(session):
        deleted = session.execute(delete(AuditEvent).where(AuditEvent.at < cutoff))
        return Maintenance(partitioned=False, rows_deleted=deleted.rowcount)
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
    done = Maintenance(partitioned=True)
    existing = monthly_partitions(session)
    wanted = [month_of(now, shift) for shift in range(MONTHS_AHEAD + 1)]
    missing = [month for month in wanted if month not in existing]
    expired = [month for month in existing if _start(month_of(month, 1)) <= cutoff]
    if missing or expired:
        session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        # The strongest lock first, so this run never holds a lesser one while
        # waiting for it (no deadlock with a reader that goes on to insert).
        session.execute(text(f"LOCK TABLE {PARENT} IN ACCESS EXCLUSIVE MODE"))
    for month in missing:
        done.moved_from_default += _create(session, month)
        done.created.append(partition_name(month))
    for month in sorted(expired):
        session.execute(text(f"DROP TABLE {existing[month]}"))
        done.dropped.append(existing[month])
    done.rows_deleted = session.execute(
        text(f"DELETE FROM {DEFAULT_PARTITION} WHERE at < :cutoff"),  # noqa: S608
        {"cutoff": cutoff}
    ).rowcount
    return done


def _create(session: Session, month: dt.date) -> int:
    """Create ``month``'s partition; rows of that month waiting in the default
    partition move into it (PostgreSQL would refuse the partition otherwise).
    Returns how many moved."""
    name = partition_name(month)
    bounds = {"lo": _start(month), "hi": _start(month_of(month, 1))}
    waiting = session.scalar(text(
        f"SELECT count(*) FROM {DEFAULT_PARTITION} WHERE at >= :lo AND at < :hi"),  # noqa: S608
        bounds)
    if not waiting:
        session.execute(text(f"CREATE TABLE {name} PARTITION OF {PARENT} FOR VALUES "
                             f"{_range(month)}"))
        return 0
    session.execute(text(f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS)"))
    move = (f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE at >= :lo "  # noqa: S608
            f"AND at < :hi RETURNING *) INSERT INTO {name} SELECT * FROM moved")
    session.execute(text(move), bounds)
    # Attaching builds the partition's keys and indexes from the parent's.
    session.execute(text(f"ALTER TABLE {PARENT} ATTACH PARTITION {name} FOR VALUES "
                         f"{_range(month)}"))
    log.warning("audit partitions: moved %d rows of %s out of the default partition",
                waiting, month.isoformat())
    return int(waiting)
