"""Writing one batch of parsed events to the database. The caller owns the transaction.

PostgreSQL takes the set-based path of ``saas.sync.copy_writer``. The generic
path here serves SQLite (development): new users are inserted with ``ON
CONFLICT DO NOTHING`` (each with a ``user.created`` audit row); existing ones
are locked in id order, merged field by field in Python (``saas.sync.merge``)
and updated. Audit rows are inserted with ``ON CONFLICT DO NOTHING`` on their
key (``id`` on SQLite, ``(at, id)`` on PostgreSQL's partitioned table) either
way, so a batch delivered twice adds nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from saas.apps.models import App
from saas.audit.models import AuditEvent
from saas.audit.types import AuditType, Outcome
from saas.clock import from_ms, to_ms
from saas.sync.copy_writer import copy_text, write_postgres
from saas.sync.merge import UserState, VersionedObject, collapse
from saas.sync.parse import ParsedEvent
from saas.users.models import EndUser
from saas.webhooks.events import UserChange
from saas.webhooks.outbox import stage_sync_batch_generic

UUID_FIELDS = ("id", "tenant_id", "user_id")


def _insert(session: Session, table):
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def _new_row(user_id: uuid.UUID, state: UserState) -> dict[str, Any]:
    return {
        "id": user_id,
        "app_id": state.app_uuid,
        "external_id": state.external_id,
        "custom": state.custom.values,
        "profile": state.profile.values,
        "custom_versions": state.custom.versions,
        "profile_versions": state.profile.versions,
        "created_at": from_ms(state.first_login_ms),
        "last_login_at": from_ms(state.last_login_ms),
    }


def _stored_state(row) -> UserState:
    return UserState(
        external_id=row.external_id,
        app_uuid=row.app_id,
        first_login_ms=to_ms(row.created_at),
        last_login_ms=to_ms(row.last_login_at) or 0,
        custom=VersionedObject(dict(row.custom), dict(row.custom_versions)),
        profile=VersionedObject(dict(row.profile), dict(row.profile_versions)),
    )


def upsert_users(session: Session, by_text: dict[str, UserState]) -> None:
    if not by_text:
        return
    states = {uuid.UUID(user_id): state for user_id, state in by_text.items()}
    ordered = sorted(states)
    inserted = set(session.scalars(
        _insert(session, EndUser.__table__).on_conflict_do_nothing(index_elements=["id"])
        .returning(EndUser.__table__.c.id),
        [_new_row(user_id, states[user_id]) for user_id in ordered],
    ))
    _audit_created(session, [(user_id, states[user_id]) for user_id in ordered
                             if user_id in inserted])
    existing = [user_id for user_id in ordered if user_id not in inserted]
    if not existing:
        return
    rows = session.execute(
        select(EndUser.__table__).where(EndUser.__table__.c.id.in_(existing))
        .order_by(EndUser.__table__.c.id).with_for_update()
    ).all()
    updates = []
    for row in rows:
        merged = _stored_state(row)
        merged.absorb(states[row.id])
        updates.append({
            "id": row.id,
            "custom": merged.custom.values,
            "profile": merged.profile.values,
            "custom_versions": merged.custom.versions,
            "profile_versions": merged.profile.versions,
            "created_at": from_ms(merged.first_login_ms),
            "last_login_at": from_ms(merged.last_login_ms),
        })
    session.execute(update(EndUser), updates)


def _audit_created(session: Session, created: list[tuple[uuid.UUID, UserState]]) -> None:
    """A ``user.created`` audit row per user this batch inserted."""
    if not created:
        return
    apps = dict(session.execute(
        select(App.id, App).where(App.id.in_({state.app_uuid for _, state in created}))
    ).all())
    session.execute(AuditEvent.__table__.insert(), [
        {"id": uuid.uuid4(), "tenant_id": apps[state.app_uuid].tenant_id,
         "app_id": apps[state.app_uuid].app_id, "type": AuditType.USER_CREATED,
         "outcome": Outcome.SUCCESS,
         "user_id": user_id, "external_id": state.external_id,
         "at": from_ms(state.first_login_ms), "details": {}}
        for user_id, state in created
    ])


def insert_audit(session: Session, records: list[dict[str, Any]]) -> None:
    if not records:
        return
    unique = {record["id"]: record for record in records}
    rows = [
        {**{k: v for k, v in record.items() if k != "at_ms"}, "at": from_ms(record["at_ms"]),
         **{k: uuid.UUID(record[k]) if record[k] else None for k in UUID_FIELDS}}
        for record in unique.values()
    ]
    # No conflict target: the table's one unique key is (id) on SQLite and
    # (at, id) on PostgreSQL, where it is partitioned (migration 0008).
    session.execute(_insert(session, AuditEvent.__table__).on_conflict_do_nothing(), rows)


@dataclass
class PreparedBatch:
    """A batch folded and, for PostgreSQL, already in COPY text: the CPU work
    done before the database is touched (so it can overlap another batch's
    database work)."""

    states: dict[str, UserState]
    audit: list[dict[str, Any]]
    copy_text: tuple[str, str] | None = None


def prepare_batch(events: list[ParsedEvent], postgres: bool) -> PreparedBatch:
    states = collapse(event.user for event in events if event.user is not None)
    audit = [record for event in events for record in event.audit]
    return PreparedBatch(states, audit, copy_text(states, audit) if postgres else None)


def user_changes(states: dict[str, UserState]) -> list[UserChange]:
    """The batch's users as the webhooks' outbox sees them."""
    return [UserChange(user_id=user_id, app_uuid=state.app_uuid,
                       external_id=state.external_id, custom=state.custom.values,
                       profile=state.profile.values, version_ms=state.last_login_ms)
            for user_id, state in states.items()]


def apply_batch(session: Session, batch: PreparedBatch) -> None:
    if batch.copy_text is not None:
        write_postgres(session, *batch.copy_text)
    else:
        # Webhooks first: "did this user exist" must see the rows before the upsert.
        stage_sync_batch_generic(session, user_changes(batch.states), batch.audit)
        upsert_users(session, batch.states)
        insert_audit(session, batch.audit)


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def write_batch(session: Session, events: list[ParsedEvent]) -> dict[str, UserState]:
    """Apply the events; returns the batch's per-user states."""
    batch = prepare_batch(events, is_postgres(session))
    apply_batch(session, batch)
    return batch.states
