"""Set-based SQL that stages webhook events from a sync batch (PostgreSQL path).

Runs over the batch's staging tables (``bk_sync_users``, ``bk_sync_audit`` of
``saas.sync.copy_writer``) **before** the user upsert, so "did this user exist"
is a plain left join. Events are inserted with ``ON CONFLICT DO NOTHING`` and
deliveries made only for the events this statement inserted: a batch applied
twice stages nothing the second time. The ``data`` objects match
``saas.webhooks.events``. Disabled endpoints count like enabled ones: their
deliveries are held until they are enabled again (``saas.webhooks.delivery``).
"""

from __future__ import annotations

# Short-circuit: one index-only probe when no app of the service has an endpoint.
ANY_ENDPOINT = "SELECT EXISTS (SELECT 1 FROM webhook_endpoints)"

_DELIVER_STAGED = """
INSERT INTO webhook_deliveries (id, event_id, endpoint_id, status, attempts,
                                next_attempt_at, retry_from, created_at)
SELECT gen_random_uuid(), s.id, e.id, 'pending', 0, now(), now(), now()
FROM staged s JOIN webhook_endpoints e
  ON e.app_id = s.app_id AND e.events ? s.type
"""

_SUBSCRIBED = """EXISTS (SELECT 1 FROM webhook_endpoints e
                WHERE e.app_id = c.app_id AND e.events ? c.type)"""

STAGE_USERS = f"""
WITH hooked AS MATERIALIZED (  -- first: only rows of apps with an endpoint go further
  SELECT s.* FROM bk_sync_users s
  WHERE s.app_id IN (SELECT app_id FROM webhook_endpoints)
), candidates AS (
  SELECT s.id AS user_id, s.app_id, s.external_id, s.custom, s.profile, s.last_ms,
         CASE WHEN u.id IS NULL THEN 'user.created' ELSE 'user.updated' END AS type,
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
  SELECT md5(c.user_id::text || ':' || c.last_ms)::uuid, c.app_id, c.type,
         timestamptz 'epoch' + c.last_ms * interval '1 millisecond',
         jsonb_build_object('user_id', c.user_id, 'external_id', c.external_id,
                            'custom', c.custom, 'profile', c.profile)
  FROM candidates c
  WHERE c.changed AND {_SUBSCRIBED}
  ON CONFLICT (id) DO NOTHING
  RETURNING id, app_id, type
)
{_DELIVER_STAGED}
"""  # noqa: S608 (constant fragments, no input)

STAGE_AUDIT = f"""
WITH hooked AS MATERIALIZED (
  SELECT id, app_id FROM apps
  WHERE id IN (SELECT app_id FROM webhook_endpoints)
), candidates AS (
  SELECT s.id, h.id AS app_id, s.type AS source, s.user_id, s.external_id, s.reason,
         s.at_ms, s.details,
         CASE WHEN s.type IN ('login.succeeded', 'custom_token.succeeded')
                THEN 'login.succeeded'
              WHEN s.type IN ('login.failed', 'custom_token.failed') THEN 'login.failed'
              ELSE 'session.revoked' END AS type
  FROM bk_sync_audit s JOIN hooked h ON h.app_id = s.app_id
  WHERE s.type IN ('login.succeeded', 'custom_token.succeeded', 'login.failed',
                   'custom_token.failed', 'logout', 'token.refresh_reuse_detected',
                   'token.code_reuse_detected')
), staged AS (
  INSERT INTO webhook_events (id, app_id, type, created_at, data)
  SELECT c.id, c.app_id, c.type, timestamptz 'epoch' + c.at_ms * interval '1 millisecond',
         jsonb_build_object('user_id', c.user_id, 'external_id', c.external_id)
         || CASE WHEN c.type = 'session.revoked' THEN jsonb_build_object(
                   'session_id', c.details -> 'sid',
                   'cause', CASE c.source WHEN 'logout' THEN 'logout'
                                          WHEN 'token.refresh_reuse_detected'
                                            THEN 'refresh_token_reused'
                                          ELSE 'code_reused' END)
            ELSE jsonb_build_object(
                   'reason', c.reason, 'flow', c.details -> 'flow',
                   'attempt_id', c.details -> 'attempt_id', 'audit_type', c.source) END
  FROM candidates c
  WHERE {_SUBSCRIBED}
  ON CONFLICT (id) DO NOTHING
  RETURNING id, app_id, type
)
{_DELIVER_STAGED}
"""  # noqa: S608 (constant fragments, no input)
