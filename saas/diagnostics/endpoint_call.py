"""The test login: one back-channel call to the app's endpoint, shown step by step.

The call is the one the hosted and in-app forms make (docs/protocol.md §5.2): the same
query parameters (``tenant_request``: ``redirect_uri``, ``state``, a request
token signed with the custom-auth secret, ``data`` = the sample fields), the
same client (``call_tenant``: SSRF guard, 5 s deadline, no redirects
followed, 64 KiB read). The tenant's verdict is then judged as the live path
judges it (``backchannel_login.ask_tenant``), but read-only: the returned token
goes through the token debugger, so nothing is consumed, no code or session
is issued and no end user is written. The page shows the request with the
token masked (and the sample's secret-looking fields), the status, the
``Location`` parameters Bridgekeeper reads (token masked), the verdict and
the reason.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from saas.apps.cache import AppConfig
from saas.backchannel.client import call_tenant, unreachable_description, with_params
from saas.crypto import constant_time_equals
from saas.diagnostics.debugger import TENANT, Report, debug_token, lenient_parts
from saas.errors import Reason
from saas.flows.backchannel_login import new_backchannel_state
from saas.flows.entry import tenant_request

MASK = "[masked]"
# Sample fields whose values the page hides (JSON mode; form mode hides password fields).
_SECRET_WORDS = ("pass", "secret", "token", "pin", "otp", "code", "key")


@dataclass
class Trial:
    endpoint: str | None
    request_url: str = ""
    request_claims: dict[str, Any] | None = None
    status: int | None = None
    detail: str = ""
    location: dict[str, str] | None = None
    verdict: str = ""  # token | denied | error | unreachable
    reason: str | None = None
    description: str = ""
    external_id: str | None = None
    token_report: Report | None = None
    ms: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.reason is None and self.external_id is not None


def mask_token(token: str) -> str:
    return f"{token[:10]}… ({len(token)} characters, masked)"


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def looks_secret(name: str) -> bool:
    return any(word in name.lower() for word in _SECRET_WORDS)


def masked_data(data: dict[str, Any], hidden: set[str]) -> dict[str, Any]:
    return {k: MASK if k in hidden or looks_secret(k) else v for k, v in data.items()}


def _refuse(result: Trial, reason: Reason, description: str) -> Trial:
    result.reason, result.description = str(reason), description
    return result


def run_test_login(request, app: AppConfig, data: dict[str, Any],
                   hidden: set[str] = frozenset()) -> Trial:
    """Call the endpoint with ``data`` and judge its answer; writes nothing."""
    result = Trial(app.custom_auth_endpoint)
    if not app.custom_auth_endpoint:
        return _refuse(result, Reason.FEATURE_DISABLED, "the app has no custom-auth endpoint")
    state = new_backchannel_state(app)
    params = tenant_request(request, app, state, uuid.uuid4().hex, data)
    placeholder = "MASKED-TOKEN"
    result.request_url = with_params(app.custom_auth_endpoint, {**params, "token": placeholder}) \
        .replace(placeholder, f"[masked:{len(params['token'])}-characters]")
    _header, claims = lenient_parts(params["token"])
    if isinstance(claims, dict) and isinstance(claims.get("data"), dict):
        claims["data"] = masked_data(claims["data"], hidden)
    result.request_claims = claims
    started = time.monotonic()
    verdict = call_tenant(app.custom_auth_endpoint, params,
                          allow_private=request.registry.settings["saas.backchannel.allow_private"])
    result.ms = int((time.monotonic() - started) * 1000)
    result.status, result.detail, result.verdict = verdict.status, verdict.detail, verdict.kind
    if verdict.status in (301, 302, 303, 307, 308):
        result.location = {name: value for name, value in (
            ("token", mask_token(verdict.token) if verdict.token else None),
            ("state", verdict.state), ("error", verdict.error),
            ("error_description", verdict.error_description)) if value is not None}
    # The same outcomes as ask_tenant (saas.flows.backchannel_login).
    if verdict.kind == "denied":
        return _refuse(result, Reason.TENANT_DENIED,
                       verdict.error_description or "the login was refused")
    if verdict.kind == "unreachable":
        return _refuse(result, Reason.TENANT_UNREACHABLE,
                       f"{unreachable_description(verdict)} ({verdict.detail})")
    if verdict.kind != "token" or not verdict.token:
        return _refuse(result, Reason.TENANT_ERROR,
                       f"the login endpoint gave no verdict ({verdict.detail})")
    if not constant_time_equals(verdict.state or "", state):
        result.notes.append("The Location must carry back the state we sent, unchanged.")
        return _refuse(result, Reason.TENANT_ERROR, "the login endpoint returned another state")
    report = debug_token(request, app, TENANT, verdict.token, backchannel_state=state)
    result.token_report = report
    if not report.accepted:
        return _refuse(result, report.reason, report.description)
    result.external_id = report.external_id
    return result
