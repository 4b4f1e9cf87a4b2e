"""Webhook events of a sync batch, staged in SQL (the PostgreSQL COPY path).

Runs over the batch's staging tables (``bk_sync_users``, ``bk_sync_audit`` of
``saas.sync.copy_writer``) **before** the user upsert, so "did this user exist"
is a plain left join. Which audit records become which events, and the
``data`` of each, come from the webhooks' one table (``saas.webhooks.events``),
rendered to SQL once at import. Events are inserted with ``ON CONFLICT DO
NOTHING`` and deliveries made only for the events this statement inserted: a
batch applied twice stages nothing the second time. Disabled endpoints count
like enabled ones: their deliveries are held until they are enabled again
(``saas.webhooks.delivery``). The generic path stages the same events in Python
(``saas.webhooks.outbox.stage_sync_batch_generic``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from saas.webhooks.events import (
    FROM_AUDIT,
    audit_data_sql,
    audit_event_type_sql,
    user_data_sql,
    user_event_id_sql,
)
from saas.webhooks.models import EventType
from saas.webhooks.outbox import kick_when_committed

_DELIVER_STAGED = """
INSERT INTO webhook_deliveries (id, event_id, endpoint_id, status, attempts,
                                next_attempt_at, retry_from, created_at)
SELECT gen_random_uuid(), s.id, e.id, 'pending', 0, now(), now(), now()
FROM staged s JOIN webhook_endpoints e
  ON e.app_id = s.app_id AND e.events ? s.type
"""


def _subscribed(type_column: str) -> str:
    return f"""EXISTS (SELECT 1 FROM webhook_endpoints e
                WHERE e.app_id = c.app_id AND e.events ? {type_column})"""  # noqa: S608


STAGE_USERS = f"""
WITH hooked AS MATERIALIZED (  -- first: only rows of apps with an endpoint go further
  SELECT s.* FROM bk_sync_users s
  WHERE s.app_id IN (SELECT app_id FROM webhook_endpoints)
), candidates AS (
  SELECT s.id AS user_id, s.app_id, s.external_id, s.custom, s.profile, s.last_ms,
         CASE WHEN u.id IS NULL THEN '{EventType.USER_CREATED.value}'
              ELSE '{EventType.USER_UPDATED.value}' END AS type,
         u.id IS NULL
           OR EXISTS (SELECT 1 FROM jsonb_each(s.custom) f
                      WHERE u.custom -> f.key IS DISTINCT FROM f.value)
           OR EXISTS (SELECT 1 FROM jsonb_each(s.profile) f
                      WHERE u.profile -> f.key IS DISTINCT FROM f.value) AS changed
  FROM hooked s
  -- LIMIT keeps this a primary-key lookup per row, never a scan of end_users.
  LEFT JOIN LATERAL (SELECT id, custom, profile FROM end_users
                     WHERE id = s.id LIMIT 1) u ON true
), staged AS (
  INSERT INTO webhook_events (id, app_id, type, created_at, data)
  SELECT {user_event_id_sql("c.user_id", "c.last_ms")}, c.app_id, c.type,
         timestamptz 'epoch' + c.last_ms * interval '1 millisecond',
         {user_data_sql("c")}
  FROM candidates c
  WHERE c.changed AND {_subscribed("c.type")}
  ON CONFLICT (id) DO NOTHING
  RETURNING id, app_id, type
)
{_DELIVER_STAGED}
"""  # noqa: S608 (constant fragments, no input)

_AUDIT_TYPES = ", ".join(f"'{audit_type}'" for audit_type in FROM_AUDIT)

STAGE_AUDIT = f"""
WITH hooked AS MATERIALIZED (
  SELECT id, app_id FROM apps
  WHERE id IN (SELECT app_id FROM webhook_endpoints)
), candidates AS (
  SELECT s.id, h.id AS app_id, s.type, s.user_id, s.external_id, s.reason, s.at_ms,
         s.details, {audit_event_type_sql("s")} AS event_type
  FROM bk_sync_audit s JOIN hooked h ON h.app_id = s.app_id
  WHERE s.type IN ({_AUDIT_TYPES})
), staged AS (
  INSERT INTO webhook_events (id, app_id, type, created_at, data)
  SELECT c.id, c.app_id, c.event_type,
         timestamptz 'epoch' + c.at_ms * interval '1 millisecond',
         {audit_data_sql("c")}
  FROM candidates c
  WHERE {_subscribed("c.event_type")}
  ON CONFLICT (id) DO NOTHING
  RETURNING id, app_id, type
)
{_DELIVER_STAGED}
"""  # noqa: S608 (constant fragments, no input)


def queue_staging(users_cursor: Any, audit_cursor: Any) -> None:
    """Queue the batch's two staging statements on two cursors of one psycopg
    connection (in its pipeline: they go with the upsert in one round trip),
    prepared: planned once per connection, not per batch. Run before the
    upsert, with both staging tables filled. Without any endpoint they stop at
    their first step (``hooked`` is empty).

    Once the pipeline synced, ``kick_if_staged`` reads the cursors."""
    users_cursor.execute(STAGE_USERS, prepare=True)
    audit_cursor.execute(STAGE_AUDIT, prepare=True)


def kick_if_staged(session: Session, cursors: tuple[Any, ...]) -> None:
    """After the pipeline synced: if the staging statements made deliveries,
    kick delivery once the session commits."""
    if sum(cursor.rowcount for cursor in cursors) > 0:
        kick_when_committed(session)
