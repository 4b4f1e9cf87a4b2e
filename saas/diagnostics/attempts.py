"""A login's audit events grouped by its attempt id (``details.attempt_id``).

The login path records the same attempt id on ``login.started`` (authorize or
the hosted form), ``login.succeeded`` / ``login.failed`` (the callback, hosted
or in-app form) and ``token.issued`` (the code exchange), so one attempt reads
as: started → the tenant's verdict → tokens, with the reason of a failure and
the time between the steps. The outcome is that of the attempt's last decisive
event: a hosted form may refuse a wrong password and accept the right one in
the same attempt.

Query cost: there is no index on ``details->>'attempt_id'``; every lookup is
bounded by the app and a time window (``(app_id, at)`` is indexed), so it
scans at most that app's events of the window. A lookup by id alone looks
back ``DEFAULT_LOOKBACK``; callers that know when the attempt happened (the
audit page's links do) pass ``around`` for a ±``WINDOW`` scan.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from saas.audit.models import AuditEvent
from saas.audit.queries import event_as_dict
from saas.audit.types import AuditType, Outcome
from saas.clock import to_ms

ATTEMPT_TYPES = (AuditType.LOGIN_STARTED, AuditType.LOGIN_SUCCEEDED, AuditType.LOGIN_FAILED,
                 AuditType.TOKEN_ISSUED, AuditType.TOKEN_CODE_REUSE_DETECTED)
# Events that decide an attempt's outcome; the last of them wins.
DECISIVE = frozenset(ATTEMPT_TYPES) - {AuditType.LOGIN_STARTED}
WINDOW = dt.timedelta(minutes=30)  # a state lives 10 min, a code 60 s: ample
DEFAULT_LOOKBACK = dt.timedelta(hours=24)
MAX_STEPS = 50
RECENT_EVENTS = 500  # the grouped view reads at most this many login events
_ATTEMPT_ID = re.compile(r"[0-9a-f]{32}")

STEP_LABELS = {
    AuditType.LOGIN_STARTED: "Started: sent to the login endpoint",
    AuditType.LOGIN_SUCCEEDED: "Verdict accepted: code issued",
    AuditType.LOGIN_FAILED: "Refused",
    AuditType.TOKEN_ISSUED: "Code exchanged for tokens",
    AuditType.TOKEN_CODE_REUSE_DETECTED: "Code presented again: session revoked",
}


def is_attempt_id(value: str) -> bool:
    return bool(_ATTEMPT_ID.fullmatch(value or ""))


@dataclass
class Attempt:
    attempt_id: str
    events: list[AuditEvent]
    steps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def started_at(self) -> dt.datetime:
        return self.events[0].at

    @property
    def flow(self) -> str | None:
        return next((e.details.get("flow") for e in self.events if e.details.get("flow")), None)

    @property
    def decisive(self) -> AuditEvent | None:
        """The last event that settles the attempt: a hosted form refused once and
        then accepted (the same attempt, a fresh state) ends in success."""
        return next((e for e in reversed(self.events) if e.type in DECISIVE), None)

    @property
    def failure(self) -> AuditEvent | None:
        last = self.decisive
        return last if last is not None and _outcome(last) == Outcome.FAILURE else None

    @property
    def outcome(self) -> str:
        last = self.decisive
        if last is None:
            return "pending"
        if _outcome(last) == Outcome.FAILURE:
            return "failure"
        return "success" if last.type == AuditType.TOKEN_ISSUED else "code issued"

    @property
    def reason(self) -> str | None:
        return self.failure.reason if self.failure is not None else None

    @property
    def duration_ms(self) -> int:
        return to_ms(self.events[-1].at) - to_ms(self.events[0].at)

    def as_dict(self) -> dict[str, Any]:
        return {"attempt_id": self.attempt_id, "flow": self.flow, "outcome": self.outcome,
                "reason": self.reason, "started_at": event_as_dict(self.events[0])["at"],
                "duration_ms": self.duration_ms, "steps": self.steps}


def _outcome(event: AuditEvent) -> str:
    return getattr(event.outcome, "value", event.outcome)


def _build(attempt_id: str, events: list[AuditEvent]) -> Attempt:
    attempt = Attempt(attempt_id, events)
    start = previous = to_ms(events[0].at)
    for event in events:
        at = to_ms(event.at)
        attempt.steps.append({**event_as_dict(event), "label": STEP_LABELS.get(event.type,
                                                                               event.type),
                              "since_start_ms": at - start, "since_previous_ms": at - previous})
        previous = at
    return attempt


def _attempt_key(column=AuditEvent.details):
    return column["attempt_id"].as_string()


def find_attempt(db: Session, app_id: str, attempt_id: str, *, now: dt.datetime,
                 around: dt.datetime | None = None) -> Attempt | None:
    """The attempt's events in time order (scoped to the app), or None."""
    if not is_attempt_id(attempt_id):
        return None
    since, until = (around - WINDOW, around + WINDOW) if around else \
        (now - DEFAULT_LOOKBACK, now + dt.timedelta(minutes=1))
    events = list(db.scalars(
        select(AuditEvent)
        .where(AuditEvent.app_id == app_id, AuditEvent.at >= since, AuditEvent.at < until,
               _attempt_key() == attempt_id)
        .order_by(AuditEvent.at, AuditEvent.id).limit(MAX_STEPS)))
    return _build(attempt_id, events) if events else None


def recent_attempts(db: Session, app_id: str, *, since: dt.datetime, until: dt.datetime,
                    limit: int = 50) -> list[Attempt]:
    """The newest attempts of the window, from its newest ``RECENT_EVENTS`` login events."""
    rows = db.scalars(
        select(AuditEvent)
        .where(AuditEvent.app_id == app_id, AuditEvent.at >= since, AuditEvent.at < until,
               AuditEvent.type.in_(ATTEMPT_TYPES), _attempt_key().is_not(None))
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(RECENT_EVENTS))
    groups: dict[str, list[AuditEvent]] = {}
    for event in rows:
        key = event.details.get("attempt_id")
        if key in groups or len(groups) < limit:
            groups.setdefault(key, []).append(event)
    return [_build(key, list(reversed(events))) for key, events in groups.items()]


def attempts_for_filters(db: Session, app_id: str, filters: dict[str, Any],
                         now: dt.datetime) -> list[Attempt]:
    """The audit page's grouped view: its since/until filters, else the last 24 h."""
    return recent_attempts(db, app_id, since=filters.get("since") or now - DEFAULT_LOOKBACK,
                           until=filters.get("until") or now + dt.timedelta(minutes=1))
