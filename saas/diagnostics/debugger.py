"""The token debugger: what the service would say about a token, consuming nothing.

The **verdict** comes from the live validators, in the live order:

* tenant token (the redirect callback, docs/protocol.md §4.2): size → state (format, app,
  live/used — read with ``EXISTS`` through ``NonceStore.unconsumed_state_reason``,
  never consumed) → ``verify_tenant_token`` → replay (``EXISTS`` on the marker
  ``claim_token_once`` would set) → disabled user;
* custom token (§5.1 there): enabled → ``verify_custom_token`` → replay → disabled.

The live paths fuse the replay check with its consumption (``SET NX``), so the
read-only variant is done here with ``EXISTS`` on the same key; a test shows
that the debugger's reasons equal the live endpoints' and that a token it was
shown still logs in afterwards. The **checks** shown beside the verdict are
the live validators' own rules (``TENANT_TOKEN_RULES``, ``CUSTOM_TOKEN_RULES``
of ``saas.jwt``) run all at once instead of fail-fast. Nothing is written to
Redis or PostgreSQL, no event is appended; the token is never logged (only
that the debugger ran).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from saas.apps.cache import AppConfig
from saas.apps.models import SecretKind
from saas.errors import Reason
from saas.flows.entry import MAX_TOKEN_CHARS
from saas.flows.login import user_id_for
from saas.flows.nonces import state_app_id
from saas.jwt.codec import b64url_decode_lenient
from saas.jwt.custom_tokens import CUSTOM_TOKEN_RULES, custom_claims, custom_token
from saas.jwt.hs256 import Secret
from saas.jwt.rules import FAIL, PASS, SKIP, Row, TokenRejected, run_all
from saas.jwt.tenant_tokens import TENANT_TOKEN_RULES, tenant_claims, tenant_token
from saas.users.disabled import is_disabled

log = logging.getLogger(__name__)

TENANT, CUSTOM = "tenant", "custom"
KINDS = (TENANT, CUSTOM)
_SECRET_OF = {TENANT: SecretKind.CUSTOM_AUTH, CUSTOM: SecretKind.CUSTOM_TOKEN}
_LABEL = {SecretKind.CUSTOM_AUTH: "custom-auth secret",
          SecretKind.CUSTOM_TOKEN: "custom-token secret"}


class _Refused(Exception):
    def __init__(self, reason: Reason | str, description: str = "") -> None:
        super().__init__(str(reason))
        self.reason = str(reason)
        self.description = description or str(reason).replace("_", " ")


@dataclass
class Report:
    kind: str
    header: Any = None
    claims: Any = None
    checks: list[Row] = field(default_factory=list)
    reason: str | None = None  # None: the service would accept the token
    description: str = ""
    external_id: str | None = None
    times: list[tuple[str, str]] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.reason is None

    def pretty(self, value: Any) -> str:
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


# -- the app's keys ------------------------------------------------------------------


def secrets_of(request, app: AppConfig, kind: SecretKind, now: float) -> list[Secret]:
    """The keys the live path would try, named for the page (values never shown)."""
    values = app.secret_candidates(kind, request.secret_box, now)
    labels = [f"current {_LABEL[kind]}"]
    until = app.secrets[kind.value].previous_valid_until
    if len(values) > 1 and until:
        stamp = dt.datetime.fromtimestamp(until, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        labels.append(f"previous {_LABEL[kind]} (in its grace period until {stamp})")
    return [Secret(label, value) for label, value in zip(labels, values, strict=True)]


def _other_kind(kind: SecretKind) -> SecretKind:
    return SecretKind.CUSTOM_TOKEN if kind is SecretKind.CUSTOM_AUTH else SecretKind.CUSTOM_AUTH


def _keys(request, app: AppConfig, kind: SecretKind, now: float) -> dict[str, Any]:
    """The secrets the live path tries, and the words and the other kind's secrets
    that let the rules' messages say which secret signed the token."""
    tried = secrets_of(request, app, kind, now)
    return {"secrets": [secret.value for secret in tried],
            "labels": [secret.label for secret in tried],
            "others": secrets_of(request, app, _other_kind(kind), now)}


def lenient_parts(token: str) -> tuple[Any, Any]:
    """Header and claims for display even when the token is malformed (None if not JSON)."""
    shown = []
    for part in [*token.split("."), "", ""][:2]:
        try:
            shown.append(json.loads(b64url_decode_lenient(part)))
        except (ValueError, RecursionError):
            shown.append(None)
    return shown[0], shown[1]


# -- read-only lookups -----------------------------------------------------------------


def token_used(request, app_id: str, replay_key: str) -> bool:
    """Whether ``NonceStore.claim_token_once`` has recorded this token: ``EXISTS``
    on the marker it sets (its key, never its ``SET NX``)."""
    marker = hashlib.sha256(replay_key.encode("utf-8")).hexdigest()
    return bool(request.redis.exists(request.redis_keys.app(app_id, "token-used", marker)))


def _after_verification(request, app: AppConfig, external_id: str, replay_key: str) -> None:
    """docs/protocol.md §4.2 steps 3–4 without their writes."""
    if token_used(request, app.app_id, replay_key):
        raise _Refused(Reason.TOKEN_REPLAYED, "this token was used already")
    if is_disabled(request, app.app_id, user_id_for(app, external_id)):
        raise _Refused(Reason.USER_DISABLED, "this user is disabled")


def state_verdict(request, app: AppConfig, state: str) -> Reason | None:
    """The callback's state checks, read-only (the binding cookie is the
    browser's and cannot be checked here)."""
    if not state:
        return Reason.STATE_MISSING
    issued_for = state_app_id(state)
    if issued_for is None:
        return Reason.STATE_UNKNOWN
    if issued_for != app.app_id:
        return Reason.STATE_APP_MISMATCH
    reason = request.nonces.unconsumed_state_reason(app.app_id, state)
    # "not bound" means: the state is live, only this request lacks the cookie.
    return None if reason == Reason.STATE_NOT_BOUND else reason


# -- the verdicts ------------------------------------------------------------------------


def tenant_verdict(request, app: AppConfig, token: str, state: str | None,
                   *, claimed_state: str | None = None) -> str:
    """The callback's answer, in its order; returns the external id or raises
    ``_Refused``. ``state`` None: state checks skipped, and the token's own
    ``state`` claim stands in for the login's state."""
    if len(token) > MAX_TOKEN_CHARS:
        raise _Refused(Reason.PAYLOAD_TOO_LARGE, "the token is larger than 6 KiB")
    if state is not None:
        reason = state_verdict(request, app, state)
        if reason is not None:
            raise _Refused(reason)
    if not token.strip():
        raise _Refused(Reason.TOKEN_MISSING, "the tenant sent no token")
    now = request.now
    try:
        claims = tenant_claims(tenant_token(
            token, **_keys(request, app, SecretKind.CUSTOM_AUTH, now), now=int(now),
            state=state if state is not None else claimed_state,
            require_bound=app.require_bound_tokens))
    except TokenRejected as exc:
        raise _Refused(exc.reason, exc.message) from None
    _after_verification(request, app, claims.user_id, "sig:" + claims.signature_digest)
    return claims.user_id


def custom_verdict(request, app: AppConfig, token: str) -> str:
    """The custom-token endpoint's answer, in its order (external id or ``_Refused``)."""
    if not app.custom_token_enabled:
        raise _Refused(Reason.FEATURE_DISABLED, "custom-token login is not enabled for this app")
    if not token.strip():
        raise _Refused(Reason.TOKEN_MISSING)
    now = request.now
    try:
        claims = custom_claims(custom_token(
            token, **_keys(request, app, SecretKind.CUSTOM_TOKEN, now), now=int(now)))
    except TokenRejected as exc:
        raise _Refused(exc.reason, exc.message) from None
    _after_verification(request, app, claims.sub, claims.replay_key)
    return claims.sub


# -- the page's report ---------------------------------------------------------------------


def _times(claims: Any, now: int) -> list[tuple[str, str]]:
    rows = []
    if isinstance(claims, dict):
        for name in ("iat", "nbf", "exp"):
            value = claims.get(name)
            if type(value) is int and 0 <= value < 10**11:
                stamp = dt.datetime.fromtimestamp(value, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
                delta = value - now
                rows.append((name, f"{stamp} ({'in ' if delta > 0 else ''}{abs(delta)} s"
                                   f"{' ago' if delta <= 0 else ''})"))
    return rows


_STATE_DETAILS = {
    Reason.STATE_MISSING: "the state is empty",
    Reason.STATE_UNKNOWN: "unknown or expired (a state lives 10 minutes)",
    Reason.STATE_REPLAYED: "a callback has used this state already",
    Reason.STATE_APP_MISMATCH: "the state was issued for another app",
}


def _state_checks(request, app: AppConfig, state: str | None) -> list[Row]:
    if state is None:
        return [Row("State", SKIP, "no state given: the state checks are skipped, and the "
                                   "token's state claim, if any, is taken as the login's")]
    reason = state_verdict(request, app, state)
    first = Row("State", FAIL, _STATE_DETAILS[reason], str(reason)) if reason else \
        Row("State", PASS, "issued for this app, live and not used yet")
    return [first, Row("Browser binding", SKIP, "the cookie set at authorize lives in the "
                       "end user's browser; without it the callback answers state_not_bound")]


def _enabled_check(app: AppConfig) -> Row:
    if app.custom_token_enabled:
        return Row("Custom tokens enabled", PASS, "on")
    return Row("Custom tokens enabled", FAIL, "custom-token login is off for this app",
               str(Reason.FEATURE_DISABLED))


def _step(name: str, refused: _Refused | None, reasons: tuple[Reason, ...], passed: str,
          reached: bool) -> Row:
    if refused is not None and refused.reason in reasons:
        return Row(name, FAIL, refused.description, refused.reason)
    if not reached:
        return Row(name, SKIP, "not reached: the token failed an earlier check")
    return Row(name, PASS, passed)


def _verdict(request, app: AppConfig, report: Report, token: str, state: str | None,
             backchannel_state: str | None) -> _Refused | None:
    """Fill the report's verdict from the live validators; the refusal, if any."""
    try:
        if report.kind == TENANT:
            claimed = report.claims.get("state") if isinstance(report.claims, dict) else None
            report.external_id = tenant_verdict(
                request, app, token, state, claimed_state=backchannel_state
                or (claimed if isinstance(claimed, str) else None))
        else:
            report.external_id = custom_verdict(request, app, token)
    except _Refused as exc:
        report.reason, report.description = exc.reason, exc.description
        return exc
    return None


def _late_steps(refused: _Refused | None) -> list[Row]:
    """Replay and disabled user: known only from the verdict (they run last)."""
    late = refused.reason if refused is not None else None
    return [
        _step("Not used before", refused, (Reason.TOKEN_REPLAYED,),
              "no login has used this token yet",
              late in (None, Reason.TOKEN_REPLAYED, Reason.USER_DISABLED)),
        _step("User not disabled", refused, (Reason.USER_DISABLED,), "the user may log in",
              late in (None, Reason.USER_DISABLED)),
    ]


def debug_token(request, app: AppConfig, kind: str, token: str, state: str | None = None,
                *, backchannel_state: str | None = None) -> Report:
    """Everything the page shows about one pasted token; reads only.

    ``backchannel_state``: the never-stored state of a back-channel call (the
    test login): compared with the token's claim, not looked up in Redis."""
    now = int(request.now)
    header, claims = lenient_parts(token)
    report = Report(kind, header, claims, times=_times(claims, now))
    keys = _keys(request, app, _SECRET_OF[kind], now)
    refused = _verdict(request, app, report, token, state, backchannel_state)
    if kind == TENANT:
        state_rows = [] if backchannel_state else _state_checks(request, app, state)
        # The login's rules, run all at once; without a state the state claim is skipped.
        report.checks = state_rows + run_all(TENANT_TOKEN_RULES, tenant_token(
            token, **keys, now=now, state=backchannel_state or state,
            require_bound=app.require_bound_tokens))
    else:
        report.checks = [_enabled_check(app),
                         *run_all(CUSTOM_TOKEN_RULES, custom_token(token, **keys, now=now))]
    report.checks += _late_steps(refused)
    if refused is not None and not any(c.reason == refused.reason for c in report.checks):
        # The live validator refused for a reason the list did not pinpoint.
        report.checks.append(Row("Live validator", FAIL, refused.description, refused.reason))
    if backchannel_state is None:
        log.info("token debugger used", extra={"app_id": app.app_id, "kind": kind,
                                               "verdict": report.reason or "accepted"})
    return report
