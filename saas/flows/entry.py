"""The steps every login entry point shares (docs/protocol.md §4.1–§4.2).

The redirect flow, the hosted form and the in-app login all check the
authorize parameters, start an attempt, call the tenant with a signed request
and bind the state to the browser; the diagnostics replay the same steps.
They live here, named, so that no module borrows them from a view.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass

from pyramid.httpexceptions import HTTPFound

from saas.apps.cache import AppConfig
from saas.apps.models import SecretKind
from saas.audit.types import AuditType, Outcome
from saas.crypto import constant_time_equals
from saas.errors import ApiError, Reason
from saas.flows.hosts import host_mismatch, request_host
from saas.flows.login import record_failure
from saas.flows.nonces import (
    STATE_TTL,
    StateError,
    state_app_id,
    state_binding,
    state_cookie_name,
)
from saas.flows.redirect_uris import redirect_uri_allowed, restart_link, with_query
from saas.jwt.hs256 import sign_request_token
from saas.login_events import append_event, audit_from_request
from saas.pkce import valid_challenge
from saas.redis import pipeline
from saas.request_text import is_text, query_params

log = logging.getLogger(__name__)

MAX_CLIENT_STATE = 512
MAX_DATA_BYTES = 4096
MAX_TOKEN_CHARS = 6144


def callback_path(app_id: str) -> str:
    return f"/v1/apps/{app_id}/callback"


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def _redirect_error(redirect_uri: str, client_state: str | None, reason: Reason, error: str,
                    description: str) -> HTTPFound:
    location = with_query(redirect_uri, {
        "error": error, "error_description": description, "reason": str(reason),
        "state": client_state,
    })
    return _no_store(HTTPFound(location=location))


def _parse_data(raw: str | None) -> dict | None:
    if raw is None or raw == "":
        return None
    if len(raw.encode("utf-8")) > MAX_DATA_BYTES:
        raise ValueError("data is larger than 4 KiB")
    try:
        data = json.loads(raw)
    except RecursionError as exc:  # 4 KiB of '[' nests deeper than Python recurses
        raise ValueError("data is nested too deeply") from exc
    if not isinstance(data, dict) or not is_text(data):
        raise ValueError("data must be a JSON object of UTF-8 text")
    return data


@dataclass(frozen=True)
class AuthorizeRequest:
    """The checked parameters of docs/protocol.md §4.1 (authorize and the hosted form)."""

    redirect_uri: str
    client_state: str | None
    code_challenge: str
    data: dict | None


def parse_authorize(request, app: AppConfig, flow: str) -> AuthorizeRequest | HTTPFound:
    """The request's parameters, or the redirect carrying the client's error.

    A missing or unlisted ``redirect_uri`` is a 400 page, never a redirect;
    so is one that is not UTF-8 (a listed URI is text).
    """
    params, all_text = query_params(request)
    redirect_uri = params.get("redirect_uri")
    if not redirect_uri_allowed(redirect_uri, app.redirect_uris):
        raise ApiError(400, "invalid_request", Reason.REDIRECT_URI_NOT_ALLOWED,
                       "redirect_uri is missing or not on the app's allow-list")
    client_state = params.get("state")
    challenge = params.get("code_challenge")

    def fail(reason: Reason, description: str, error: str = "invalid_request") -> HTTPFound:
        record_failure(request, app, str(reason), {"flow": flow})
        return _redirect_error(redirect_uri, client_state, reason, error, description)

    if not all_text:  # the client's state too, when it is the culprit, is not echoed
        return fail(Reason.CLAIMS_INVALID, "the query string is not UTF-8 text")
    if client_state is not None and len(client_state) > MAX_CLIENT_STATE:
        return fail(Reason.CLAIMS_INVALID, "state is longer than 512 characters")
    if params.get("code_challenge_method", "S256") != "S256" or not valid_challenge(challenge):
        return fail(Reason.PKCE_INVALID, "a PKCE S256 code_challenge is required")
    try:
        data = _parse_data(params.get("data"))
    except ValueError:
        return fail(Reason.CLAIMS_INVALID, "data must be a JSON object of at most 4 KiB")
    if not app.custom_auth_endpoint:
        return fail(Reason.FEATURE_DISABLED, "the app has no custom-auth endpoint",
                    "unauthorized_client")
    if flow == "hosted" and not app.backchannel:
        return fail(Reason.FEATURE_DISABLED, "the app has not enabled the hosted sign-in form",
                    "unauthorized_client")
    return AuthorizeRequest(redirect_uri, client_state, challenge, data)


def start_attempt(request, app: AppConfig, auth: AuthorizeRequest,
                  flow: str) -> tuple[str, str]:
    """Issue the login's state (its record holds the client's parameters);
    returns the state and the attempt id."""
    attempt_id = uuid.uuid4().hex
    pipe = pipeline(request.redis)  # the state and the audit event: one round trip
    state = request.nonces.issue_state(app.app_id, {
        "redirect_uri": auth.redirect_uri,
        "client_state": auth.client_state,
        "code_challenge": auth.code_challenge,
        "attempt_id": attempt_id,
        "started_at": int(request.now),
        "flow": flow,
        "data": auth.data,
        # Where the binding cookie lives: a callback on another host lacks it.
        "host": request_host(request),
    }, client=pipe)
    append_event(pipe, request.redis_keys, [audit_from_request(
        request, AuditType.LOGIN_STARTED, Outcome.SUCCESS, app_id=app.app_id,
        tenant_id=app.tenant_id,
        details={"attempt_id": attempt_id, "flow": flow},
    )])
    pipe.execute()
    return state, attempt_id


def tenant_request(request, app: AppConfig, state: str, attempt_id: str,
                   data: dict | None) -> dict[str, str]:
    """The query parameters of the call to the tenant endpoint (docs/protocol.md §4.1)."""
    now = int(request.now)
    secret = app.secret_candidates(SecretKind.CUSTOM_AUTH, request.secret_box, now)[0]
    callback = request.registry.settings["saas.public_base_url"] + callback_path(app.app_id)
    return {
        "redirect_uri": callback + "?flow=custom",
        "state": state,
        "token": sign_request_token(secret, app_id=app.app_id, now=now, jti=attempt_id,
                                    data=data),
    }


def bind_state(request, response, state: str, path: str) -> None:
    """The browser-binding cookie: only this browser may use the state."""
    response.set_cookie(
        state_cookie_name(state), state_binding(state), max_age=STATE_TTL, path=path,
        httponly=True, samesite="Lax", secure=request.registry.settings["saas.secure_cookies"],
    )


def check_state_binding(request, app: AppConfig, state: str | None) -> None:
    """docs/protocol.md §4.2 step 1: the binding cookie is checked before the state is consumed."""
    if not state:
        record_failure(request, app, str(Reason.STATE_MISSING), None)
        raise _state_error(app, Reason.STATE_MISSING, "the login has no state")
    issued_for = state_app_id(state)
    if issued_for is not None and issued_for != app.app_id:
        record_failure(request, app, str(Reason.STATE_APP_MISMATCH), None)
        raise _state_error(app, Reason.STATE_APP_MISMATCH, _STATE_MESSAGES[
            Reason.STATE_APP_MISMATCH])
    cookie = request.cookies.get(state_cookie_name(state), "")
    if issued_for is not None and not constant_time_equals(cookie, state_binding(state)):
        reason = request.nonces.unconsumed_state_reason(app.app_id, state)
        record, description = None, _STATE_MESSAGES[reason]
        if reason == Reason.STATE_NOT_BOUND:
            record = request.nonces.peek_state(app.app_id, state)
            mismatch = host_mismatch(request, (record or {}).get("host"))
            if mismatch:
                reason, description = Reason.HOST_MISMATCH, mismatch
                log.warning("login refused, host_mismatch: %s (app %s)", mismatch, app.app_id)
        record_failure(request, app, str(reason), record)
        raise _state_error(app, reason, description)


def consume_state(request, app: AppConfig, state: str) -> dict:
    try:
        return request.nonces.consume_state(app.app_id, state)
    except StateError as exc:
        record_failure(request, app, str(exc.reason), None)
        raise _state_error(app, exc.reason, _STATE_MESSAGES[exc.reason]) from exc


_STATE_MESSAGES = {
    Reason.STATE_NOT_BOUND: "this login was started in another browser; start again",
    Reason.STATE_REPLAYED: "this login link was used already; start again",
    Reason.STATE_UNKNOWN: "this login link is unknown or expired; start again",
    Reason.STATE_APP_MISMATCH: "the state belongs to another app",
}


def _state_error(app: AppConfig, reason: Reason, description: str) -> ApiError:
    restart = restart_link(app.restart_url, app.redirect_uris)
    return ApiError(400, "invalid_request", reason, description,
                    links={"restart_url": restart} if restart else None)
