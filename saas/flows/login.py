"""The steps every tenant-verdict login shares (DESIGN §4.2 steps 2–5).

Used by the redirect callback now and by the back-channel logins later: given
the consumed state's record and the tenant's token, verify the token, block
its replay, refuse disabled users, issue the code and append the event.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from saas.apps.cache import AppConfig
from saas.apps.models import SecretKind
from saas.errors import Reason
from saas.events import AuditRecord, UserUpsert, append_event, audit_from_request
from saas.flows.jwt_strict import TokenRejected, verify_tenant_token
from saas.flows.redirect_uris import with_query
from saas.sync.versions import field_version
from saas.tokens.sessions import new_sid
from saas.users.disabled import is_disabled
from saas.users.models import end_user_id


class LoginFailed(Exception):
    """A login refused after the state was consumed: redirect the error back."""

    def __init__(self, error: str, reason: Reason | str, description: str = "") -> None:
        super().__init__(str(reason))
        self.error = error
        self.reason = str(reason)
        self.description = description or str(reason).replace("_", " ")


@dataclass(frozen=True)
class LoginResult:
    code: str
    user_id: str
    external_id: str


def client_redirect(record: dict[str, Any], **params: str | None) -> str:
    """The client's redirect URI with our parameters and its own state."""
    return with_query(record["redirect_uri"], dict(params, state=record.get("client_state")))


def complete_login(
    request, app: AppConfig, state: str, record: dict[str, Any], token: str
) -> LoginResult:
    now = request.now
    try:
        claims = verify_tenant_token(
            token,
            secrets=app.secret_candidates(SecretKind.CUSTOM_AUTH, request.secret_box, now),
            now=int(now),
            state=state,
            require_bound=app.require_bound_tokens,
        )
    except TokenRejected as exc:
        raise LoginFailed("invalid_request", exc.reason) from exc
    if not request.nonces.claim_token_once(
        app.app_id, "sig:" + claims.signature_digest, claims.replay_ttl
    ):
        raise LoginFailed("invalid_request", Reason.TOKEN_REPLAYED)

    user_id = str(end_user_id(uuid.UUID(app.id), claims.user_id))
    if is_disabled(request, app.app_id, user_id):
        raise LoginFailed("access_denied", Reason.USER_DISABLED, "this user is disabled")

    login_ms = int(now * 1000)
    code = request.nonces.issue_code(app.app_id, {
        "user_id": user_id,
        "external_id": claims.user_id,
        "redirect_uri": record["redirect_uri"],
        "code_challenge": record["code_challenge"],
        "attempt_id": record.get("attempt_id"),
        "auth_time": int(now),
        # The session this code will start, so a reused code can revoke it.
        "sid": new_sid(),
    })
    audit = audit_from_request(
        request, "login.succeeded", "success", app_id=app.app_id, tenant_id=app.tenant_id,
        user_id=user_id, external_id=claims.user_id,
        details={"attempt_id": record.get("attempt_id"), "flow": record.get("flow", "redirect"),
                 "previous_secret": claims.used_previous_secret},
    )
    upsert = UserUpsert(
        app_uuid=app.id, app_id=app.app_id, user_id=user_id, external_id=claims.user_id,
        login_at_ms=login_ms, custom=claims.custom, profile=claims.profile,
    )
    event_id = uuid.uuid4()
    pipe = request.redis.pipeline(transaction=False)
    append_event(pipe, request.redis_keys, [audit], upsert, event_id=str(event_id))
    request.pending_merges.record(app.app_id, user_id, login_ms,
                                  field_version(login_ms, event_id),
                                  claims.custom, claims.profile, client=pipe)
    pipe.execute()
    return LoginResult(code=code, user_id=user_id, external_id=claims.user_id)


def record_failure(request, app: AppConfig, reason: str, record: dict[str, Any] | None,
                   type_: str = "login.failed") -> None:
    audit: AuditRecord = audit_from_request(
        request, type_, "failure", app_id=app.app_id, tenant_id=app.tenant_id, reason=reason,
        details={"attempt_id": (record or {}).get("attempt_id"),
                 "flow": (record or {}).get("flow", "redirect")},
    )
    append_event(request.redis, request.redis_keys, [audit])
