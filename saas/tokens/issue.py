"""Issuing a login session: its refresh token, an access token, the audit.

The token endpoint issues one on a code exchange; the custom-token and in-app
flows issue one directly. The flows import this module, never the token
endpoint's views, so flows → tokens runs one way.
"""

from __future__ import annotations

import json

import orjson
from pyramid.response import Response

from saas.apps.cache import AppConfig
from saas.audit.types import AuditType, Outcome
from saas.login_events import append_event, audit_from_request
from saas.redis import pipeline


def audit_token_event(request, app: AppConfig, type_: AuditType, outcome: Outcome, pipe=None,
                      **fields) -> None:
    """One audit event of the token endpoint, on ``pipe`` when the caller batches."""
    append_event(pipe or request.redis, request.redis_keys, [audit_from_request(
        request, type_, outcome, app_id=app.app_id, tenant_id=app.tenant_id, **fields)])


def json_response(request, body: dict, **headers: str) -> Response:
    """The hot path's JSON answers, serialised with orjson (Pyramid's json
    renderer was ~3 % of a token request); plain json for what orjson refuses
    (a tenant's integer beyond 64 bits in ``custom``)."""
    try:
        payload = orjson.dumps(body)
    except orjson.JSONEncodeError:
        payload = json.dumps(body).encode("utf-8")
    response = request.response
    response.body = payload
    response.content_type = "application/json"
    for name, value in headers.items():
        response.headers[name.replace("_", "-")] = value
    return response


def token_response(request, app: AppConfig, *, sid: str, user_id: str, external_id: str,
                   refresh_token: str, refresh_expires_at: int) -> Response:
    now = int(request.now)
    access_token = request.access_tokens.issue(
        app, user_id=user_id, external_id=external_id, sid=sid, now=now
    )
    return json_response(request, {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": app.access_token_ttl,
        "refresh_token": refresh_token,
        "refresh_expires_in": max(refresh_expires_at - now, 0),
        "user": {"id": user_id, "external_id": external_id},
    }, Cache_Control="no-store", Pragma="no-cache")


def start_session(request, app: AppConfig, *, sid: str, user_id: str, external_id: str,
                  details: dict, pipe=None) -> Response:
    """A new login session: its first refresh token, an access token, the audit.

    One round trip: the session and its audit event go out on one pipeline,
    ``pipe`` when the caller has queued its own writes there already.
    """
    pipe = pipe if pipe is not None else pipeline(request.redis)
    refresh_token = request.login_sessions.create(
        app.app_id, sid, user_id, external_id, app.refresh_token_ttl, client=pipe
    )
    audit_token_event(request, app, AuditType.TOKEN_ISSUED, Outcome.SUCCESS, pipe=pipe,
                      user_id=user_id, external_id=external_id, details={"sid": sid, **details})
    pipe.execute()
    return token_response(
        request, app, sid=sid, user_id=user_id, external_id=external_id,
        refresh_token=refresh_token, refresh_expires_at=int(request.now) + app.refresh_token_ttl,
    )
