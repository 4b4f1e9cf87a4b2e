"""Stream entries built the way the login path builds them, for the sync benchmark
(and the sync tests, which reuse them rather than keep a copy)."""

from __future__ import annotations

from saas.login_events import AuditRecord, UserUpsert, encode_event
from saas.users.models import end_user_id


def login_entry(app, external_id: str, login_at_ms: int, custom=None, profile=None,
                audit_id: str | None = None) -> dict[str, str]:
    """One successful login of ``external_id``: its audit record and its user merge."""
    user_id = str(end_user_id(app.id, external_id))
    audit = AuditRecord(type="login.succeeded", outcome="success", app_id=app.app_id,
                        tenant_id=str(app.tenant_id), user_id=user_id, external_id=external_id,
                        at_ms=login_at_ms, **({"id": audit_id} if audit_id else {}))
    upsert = UserUpsert(app_uuid=str(app.id), app_id=app.app_id, user_id=user_id,
                        external_id=external_id, login_at_ms=login_at_ms,
                        custom=custom, profile=profile)
    return encode_event([audit], upsert)
