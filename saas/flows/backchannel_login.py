"""Back-channel logins (docs/protocol.md §5.2): Bridgekeeper asks the tenant endpoint
itself, server to server, and reads the verdict from the ``Location`` header.

The tenant endpoint is called exactly as a browser would reach it (its §4.1
parameters, ``data`` holding the form fields), so an endpoint written for the
redirect protocol serves the hosted and in-app forms unchanged. The verdict's
``state`` must be ours, and the token then goes through the same checks as a
callback (§4.2 steps 2–4).
"""

from __future__ import annotations

import secrets
import time

from saas.apps.cache import AppConfig
from saas.backchannel.client import call_tenant, unreachable_description
from saas.crypto import constant_time_equals
from saas.errors import Reason
from saas.flows.entry import tenant_request
from saas.flows.login import AcceptedUser, LoginFailed, accept_tenant_token

# Where each failure of the tenant leads (error code for the client, HTTP status
# for JSON callers).
DENIED = ("access_denied", Reason.TENANT_DENIED, 401)
TENANT_ERROR = ("server_error", Reason.TENANT_ERROR, 502)
UNREACHABLE = ("temporarily_unavailable", Reason.TENANT_UNREACHABLE, 504)


class BackchannelFailed(LoginFailed):
    def __init__(self, outcome: tuple[str, Reason, int], description: str) -> None:
        error, reason, status = outcome
        super().__init__(error, reason, description)
        self.status = status


def new_backchannel_state(app: AppConfig) -> str:
    """A nonce for an in-app login: never stored, only compared (constant time)."""
    return f"{app.app_id}.{secrets.token_urlsafe(24)}"


def ask_tenant(request, app: AppConfig, state: str, attempt_id: str,
               data: dict) -> AcceptedUser:
    """Call the tenant with the user's fields; the accepted user, or BackchannelFailed."""
    started = time.monotonic()
    verdict = call_tenant(
        app.custom_auth_endpoint,
        tenant_request(request, app, state, attempt_id, data),
        allow_private=request.registry.settings["saas.backchannel.allow_private"],
    )
    request.backchannel_ms = int((time.monotonic() - started) * 1000)
    if verdict.kind == "denied":
        raise BackchannelFailed(DENIED, verdict.error_description or "the login was refused")
    if verdict.kind == "unreachable":
        raise BackchannelFailed(UNREACHABLE, unreachable_description(verdict))
    if verdict.kind != "token" or not verdict.token:
        raise BackchannelFailed(TENANT_ERROR, "the login endpoint gave no verdict")
    if not constant_time_equals(verdict.state or "", state):
        raise BackchannelFailed(TENANT_ERROR, "the login endpoint returned another state")
    return accept_tenant_token(request, app, state, verdict.token)
