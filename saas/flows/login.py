"""The steps every login shares, whatever the way in.

* ``accept_tenant_token`` — docs/protocol.md §4.2 steps 2–4 for a tenant's verdict
  (redirect callback, hosted form, in-app form): verify the token, block its
  replay, refuse disabled users.
* ``record_login`` — append the login event (user upsert + merge + audit) and
  the read-your-writes overlay, in one Redis round trip (shared with the
  code or the session the login ends with).
* ``complete_login`` — the redirect-style ending: all of the above, then a code.

Round trips are what a login costs most (see docs/performance.md), so each
step queues its writes on one pipeline where the contract's order allows.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from typing import Any

from saas.apps.cache import AppConfig
from saas.apps.models import SecretKind
from saas.audit.types import AuditType, Outcome
from saas.errors import Reason
from saas.jwt.rules import TokenRejected
from saas.jwt.tenant_tokens import verify_tenant_token
from saas.login_events import UserUpsert, append_event, audit_from_request
from saas.redis import pipeline
from saas.sync.versions import field_version
from saas.tokens.login_sessions import new_sid
from saas.users.disabled import disabled_key
from saas.users.models import end_user_id


class LoginFailed(Exception):
    """A login refused after the state was consumed: redirect the error back.

    ``user_id`` / ``external_id`` name the user when the refusal knows who it is
    (a disabled user), so the audit record and the webhook carry them.
    """

    def __init__(self, error: str, reason: Reason | str, description: str = "", *,
                 user_id: str | None = None, external_id: str | None = None) -> None:
        super().__init__(str(reason))
        self.error = error
        self.reason = str(reason)
        self.description = description or str(reason).replace("_", " ")
        self.user_id = user_id
        self.external_id = external_id


@dataclass(frozen=True)
class AcceptedUser:
    user_id: str
    external_id: str
    custom: dict[str, Any] | None
    profile: dict[str, Any] | None
    details: dict[str, Any]  # for the audit record
    amr: tuple[str, ...] = ()  # the tenant's authentication methods, when it said


@dataclass(frozen=True)
class LoginResult:
    code: str
    user_id: str
    external_id: str


def user_id_for(app: AppConfig, external_id: str) -> str:
    return str(end_user_id(_app_namespace(app.id), external_id))


@functools.lru_cache(maxsize=1024)
def _app_namespace(app_uuid: str) -> uuid.UUID:
    return uuid.UUID(app_uuid)


def claim_first_use(request, app: AppConfig, replay_key: str, ttl: int,
                    user_id: str) -> tuple[bool, bool]:
    """One round trip: claim the token's single use and read the user's
    disabled flag. Returns ``(first_use, disabled)``; a replayed token has
    left the marker as it was, exactly as the claim alone would."""
    pipe = pipeline(request.redis)
    request.nonces.claim_token_once(app.app_id, replay_key, ttl, client=pipe)
    pipe.exists(disabled_key(request.redis_keys, app.app_id, user_id))
    first_use, disabled = pipe.execute()
    return bool(first_use), bool(disabled)


def accept_tenant_token(request, app: AppConfig, state: str, token: str) -> AcceptedUser:
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
    user_id = user_id_for(app, claims.user_id)
    first_use, disabled = claim_first_use(request, app, "sig:" + claims.signature_digest,
                                          claims.replay_ttl, user_id)
    if not first_use:
        raise LoginFailed("invalid_request", Reason.TOKEN_REPLAYED)
    if disabled:
        raise LoginFailed("access_denied", Reason.USER_DISABLED, "this user is disabled",
                          user_id=user_id, external_id=claims.user_id)
    return AcceptedUser(user_id, claims.user_id, claims.custom, claims.profile,
                        {"previous_secret": claims.used_previous_secret}, claims.amr)


def record_login(request, app: AppConfig, user: AcceptedUser, type_: AuditType,
                 details: dict[str, Any], pipe=None) -> None:
    """One stream entry (audit + upsert) and the overlay, in one round trip;
    with ``pipe`` they are only queued there, for the caller to send."""
    login_ms = int(request.now * 1000)
    audit = audit_from_request(
        request, type_, Outcome.SUCCESS, app_id=app.app_id, tenant_id=app.tenant_id,
        user_id=user.user_id, external_id=user.external_id, details={**details, **user.details},
    )
    upsert = UserUpsert(
        app_uuid=app.id, app_id=app.app_id, user_id=user.user_id, external_id=user.external_id,
        login_at_ms=login_ms, custom=user.custom, profile=user.profile,
    )
    event_id = uuid.uuid4()
    own = pipe is None
    if own:
        pipe = pipeline(request.redis)
    append_event(pipe, request.event_streams, [audit], upsert, event_id=str(event_id))
    request.pending_merges.record(app.app_id, user.user_id, login_ms,
                                  field_version(login_ms, event_id),
                                  user.custom, user.profile, client=pipe)
    if own:
        pipe.execute()


def issue_login_code(request, app: AppConfig, user: AcceptedUser,
                     record: dict[str, Any], pipe=None) -> str:
    """The authorization code for the client named in the state's record."""
    return request.nonces.issue_code(app.app_id, {
        "user_id": user.user_id,
        "external_id": user.external_id,
        "redirect_uri": record["redirect_uri"],
        "code_challenge": record["code_challenge"],
        "attempt_id": record.get("attempt_id"),
        "auth_time": int(request.now),
        # The session this code will start, so a reused code can revoke it.
        "sid": new_sid(),
        # OpenID Connect (docs/oidc.md): what the ID token will say.
        "scopes": record.get("scopes") or [],
        "nonce": record.get("nonce"),
        "amr": ["ext", *user.amr],
    }, client=pipe)


def complete_login(
    request, app: AppConfig, state: str, record: dict[str, Any], token: str
) -> LoginResult:
    user = accept_tenant_token(request, app, state, token)
    pipe = pipeline(request.redis)
    code = issue_login_code(request, app, user, record, pipe=pipe)
    record_login(request, app, user, AuditType.LOGIN_SUCCEEDED,
                 {"attempt_id": record.get("attempt_id"), "flow": record.get("flow", "redirect")},
                 pipe=pipe)
    pipe.execute()
    return LoginResult(code=code, user_id=user.user_id, external_id=user.external_id)


def record_failure(request, app: AppConfig, reason: str, record: dict[str, Any] | None,
                   type_: AuditType = AuditType.LOGIN_FAILED, *, user_id: str | None = None,
                   external_id: str | None = None) -> None:
    audit = audit_from_request(
        request, type_, Outcome.FAILURE, app_id=app.app_id, tenant_id=app.tenant_id, reason=reason,
        user_id=user_id, external_id=external_id,
        details={"attempt_id": (record or {}).get("attempt_id"),
                 "flow": (record or {}).get("flow", "redirect")},
    )
    append_event(request.redis, request.event_streams, [audit])


def record_refusal(request, app: AppConfig, failure: LoginFailed,
                   record: dict[str, Any] | None) -> None:
    """``record_failure`` for a ``LoginFailed``: its reason and, when known, its user."""
    record_failure(request, app, failure.reason, record, user_id=failure.user_id,
                   external_id=failure.external_id)
