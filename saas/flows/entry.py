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

from pyramid.response import Response

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
from saas.flows.redirect_uris import redirect_uri_allowed, restart_link
from saas.flows.responses import QUERY, RESPONSE_MODES, authorization_response
from saas.jwt.hs256 import sign_request_token
from saas.login_events import append_event, audit_from_request
from saas.pkce import valid_challenge
from saas.redis import pipeline
from saas.request_text import is_text, query_params
from saas.tokens.scopes import granted_scopes

log = logging.getLogger(__name__)

MAX_CLIENT_STATE = 512
MAX_DATA_BYTES = 4096
MAX_TOKEN_CHARS = 6144
MAX_OIDC_PARAM = 255  # nonce, login_hint, ui_locales
PROMPTS = frozenset({"none", "login", "consent", "select_account"})


def callback_path(app_id: str) -> str:
    return f"/v1/apps/{app_id}/callback"


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
    """The checked parameters of docs/protocol.md §4.1 and docs/oidc.md
    (authorize and the hosted form)."""

    redirect_uri: str
    client_state: str | None
    code_challenge: str | None  # None only for a confidential client without PKCE
    data: dict | None
    response_mode: str = QUERY
    scopes: tuple[str, ...] = ()
    nonce: str | None = None


class _Refused(Exception):
    """An authorize parameter is refused; the client hears it at its redirect URI."""

    def __init__(self, reason: Reason, description: str, error: str = "invalid_request"):
        super().__init__(description)
        self.reason, self.description, self.error = reason, description, error


def parse_authorize(request, app: AppConfig, flow: str) -> AuthorizeRequest | Response:
    """The request's parameters, or the authorization response carrying the client's error.

    A ``client_id`` of another app, a missing or unlisted ``redirect_uri`` is a
    400 page, never a redirect; so is one that is not UTF-8 (a listed URI is text).
    """
    params, all_text = query_params(request)
    client_id = params.get("client_id")
    if client_id is not None and client_id != app.app_id:
        raise ApiError(400, "invalid_request", Reason.CLIENT_ID_MISMATCH,
                       "client_id is not this app's id")
    redirect_uri = params.get("redirect_uri")
    if not redirect_uri_allowed(redirect_uri, app.redirect_uris):
        raise ApiError(400, "invalid_request", Reason.REDIRECT_URI_NOT_ALLOWED,
                       "redirect_uri is missing or not on the app's allow-list")
    client_state = params.get("state")
    response_mode = params.get("response_mode") or QUERY
    try:
        if not all_text:  # the client's state too, when it is the culprit, is not echoed
            raise _Refused(Reason.CLAIMS_INVALID, "the query string is not UTF-8 text")
        if response_mode not in RESPONSE_MODES:
            response_mode = QUERY
            raise _Refused(Reason.CLAIMS_INVALID, "response_mode must be query or form_post")
        return _checked(app, flow, params, redirect_uri, client_state, response_mode)
    except _Refused as refused:
        record_failure(request, app, str(refused.reason), {"flow": flow})
        return authorization_response(request, app.app_id, redirect_uri, response_mode, {
            "error": refused.error, "error_description": refused.description,
            "reason": str(refused.reason), "state": client_state,
        })


def _checked(app: AppConfig, flow: str, params, redirect_uri: str, client_state: str | None,
             response_mode: str) -> AuthorizeRequest:
    if params.get("response_type", "code") != "code":
        raise _Refused(Reason.UNSUPPORTED_RESPONSE_TYPE, "response_type must be code",
                       "unsupported_response_type")
    if client_state is not None and len(client_state) > MAX_CLIENT_STATE:
        raise _Refused(Reason.CLAIMS_INVALID, "state is longer than 512 characters")
    prompts = set(params.get("prompt", "").split())
    if prompts - PROMPTS or ("none" in prompts and len(prompts) > 1):
        raise _Refused(Reason.CLAIMS_INVALID, "prompt must be none, or any of login, consent "
                       "and select_account")
    if "none" in prompts:  # no session of ours can ever answer without the tenant
        raise _Refused(Reason.LOGIN_REQUIRED, "the user must sign in", "login_required")
    challenge = _code_challenge(app, params)
    nonce = params.get("nonce")
    hints = {name: params.get(name) for name in ("login_hint", "ui_locales")
             if params.get(name) is not None}
    if any(len(value) > MAX_OIDC_PARAM for value in [nonce or "", *hints.values()]):
        raise _Refused(Reason.CLAIMS_INVALID, "nonce, login_hint and ui_locales have at most "
                       f"{MAX_OIDC_PARAM} characters")
    max_age = params.get("max_age")
    if max_age is not None and not (max_age.isascii() and max_age.isdigit()):
        raise _Refused(Reason.CLAIMS_INVALID, "max_age must be a whole number of seconds")
    try:
        data = _parse_data(params.get("data"))
    except ValueError:
        raise _Refused(Reason.CLAIMS_INVALID,
                       "data must be a JSON object of at most 4 KiB") from None
    if not app.custom_auth_endpoint:
        raise _Refused(Reason.FEATURE_DISABLED, "the app has no custom-auth endpoint",
                       "unauthorized_client")
    if flow == "hosted" and not app.backchannel:
        raise _Refused(Reason.FEATURE_DISABLED, "the app has not enabled the hosted sign-in form",
                       "unauthorized_client")
    return AuthorizeRequest(redirect_uri, client_state, challenge,
                            data if data is not None else (hints or None), response_mode,
                            granted_scopes(params.get("scope")), nonce or None)


def _code_challenge(app: AppConfig, params) -> str | None:
    """PKCE S256: required, except from a confidential client whose app lets it go
    without (``pkce_required`` off); a challenge that is sent is always checked."""
    challenge = params.get("code_challenge")
    method = params.get("code_challenge_method", "S256")
    optional = app.confidential and not app.pkce_required
    if challenge is None and optional and "code_challenge_method" not in params:
        return None
    if method != "S256" or not valid_challenge(challenge):
        raise _Refused(Reason.PKCE_INVALID, "a PKCE S256 code_challenge is required")
    return challenge


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
        "response_mode": auth.response_mode,
        "scopes": list(auth.scopes),
        "nonce": auth.nonce,
        # Where the binding cookie lives: a callback on another host lacks it.
        "host": request_host(request),
    }, client=pipe)
    append_event(pipe, request.event_streams, [audit_from_request(
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
    """The browser-binding cookie: only this browser may use the state.

    Written as a header: the name and value are hex digits and the path an
    app's URL, so nothing needs quoting, and WebOb's ``set_cookie`` formatted
    an ``Expires`` date per request (~4 % of an authorize) beside ``Max-Age``,
    which every browser the flows support reads (RFC 6265)."""
    secure = "; Secure" if request.registry.settings["saas.secure_cookies"] else ""
    response.headerlist.append(("Set-Cookie", f"{state_cookie_name(state)}="
                                f"{state_binding(state)}; Max-Age={STATE_TTL}; Path={path}"
                                f"; HttpOnly; SameSite=Lax{secure}"))


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
