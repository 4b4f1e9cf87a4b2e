"""The tenant dashboard: server-rendered pages, sessions, CSRF on every form.

Every dashboard route is declared here; the views live in one module per
page (``auth``, ``apps``, ``overview``, ``settings``, ``secrets``, ``users``,
``audit``, ``webhooks``, ``keys``, ``members``, ``invites``; the diagnostics pages in
``debugger``, ``trial_login`` and ``attempts``).
"""

from __future__ import annotations

_CONTEXTS = "saas.dashboard.contexts."
TENANT = _CONTEXTS + "TenantContext"
APP = _CONTEXTS + "app_context"
USER = _CONTEXTS + "user_context"
API_KEY = _CONTEXTS + "api_key_context"
MEMBER = _CONTEXTS + "member_context"
INVITE = _CONTEXTS + "invite_context"
WEBHOOK = _CONTEXTS + "webhook_context"
_HOOK = "/dashboard/apps/{app_id}/webhooks/{webhook_id}"

# (route name, path, context factory or None)
ROUTES: tuple[tuple[str, str, str | None], ...] = (
    ("dashboard.signup", "/dashboard/signup", None),
    ("dashboard.signin", "/dashboard/signin", None),
    ("dashboard.signout", "/dashboard/signout", None),
    ("dashboard.invite", "/dashboard/invite/{token}", None),
    ("dashboard.home", "/dashboard", TENANT),
    ("dashboard.apps", "/dashboard/apps", TENANT),
    ("dashboard.apps.new", "/dashboard/apps/new", TENANT),
    ("dashboard.app", "/dashboard/apps/{app_id}", APP),
    ("dashboard.app.settings", "/dashboard/apps/{app_id}/settings", APP),
    ("dashboard.app.delete", "/dashboard/apps/{app_id}/delete", APP),
    ("dashboard.app.secrets", "/dashboard/apps/{app_id}/secrets", APP),
    ("dashboard.app.reveal", "/dashboard/apps/{app_id}/secrets/reveal", APP),
    ("dashboard.app.secret.rotate", "/dashboard/apps/{app_id}/secrets/{kind}/rotate", APP),
    ("dashboard.app.secret.revoke",
     "/dashboard/apps/{app_id}/secrets/{kind}/revoke-previous", APP),
    ("dashboard.app.users", "/dashboard/apps/{app_id}/users", APP),
    ("dashboard.app.user", "/dashboard/apps/{app_id}/users/{user_id}", USER),
    ("dashboard.app.user.disable", "/dashboard/apps/{app_id}/users/{user_id}/disable", USER),
    ("dashboard.app.user.enable", "/dashboard/apps/{app_id}/users/{user_id}/enable", USER),
    ("dashboard.app.user.revoke_sessions",
     "/dashboard/apps/{app_id}/users/{user_id}/revoke-sessions", USER),
    ("dashboard.app.user.delete", "/dashboard/apps/{app_id}/users/{user_id}/delete", USER),
    ("dashboard.app.audit", "/dashboard/apps/{app_id}/audit", APP),
    ("dashboard.app.audit_csv", "/dashboard/apps/{app_id}/audit.csv", APP),
    ("dashboard.app.attempt", "/dashboard/apps/{app_id}/attempts/{attempt_id}", APP),
    ("dashboard.app.debugger", "/dashboard/apps/{app_id}/debugger", APP),
    ("dashboard.app.test_login", "/dashboard/apps/{app_id}/test-login", APP),
    ("dashboard.app.webhooks", "/dashboard/apps/{app_id}/webhooks", APP),
    ("dashboard.app.webhook", _HOOK, WEBHOOK),
    ("dashboard.app.webhook.enable", _HOOK + "/enable", WEBHOOK),
    ("dashboard.app.webhook.disable", _HOOK + "/disable", WEBHOOK),
    ("dashboard.app.webhook.delete", _HOOK + "/delete", WEBHOOK),
    ("dashboard.app.webhook.reveal", _HOOK + "/secret/reveal", WEBHOOK),
    ("dashboard.app.webhook.rotate", _HOOK + "/secret/rotate", WEBHOOK),
    ("dashboard.app.webhook.test", _HOOK + "/test", WEBHOOK),
    ("dashboard.app.webhook.resend", _HOOK + "/deliveries/{delivery_id}/resend", WEBHOOK),
    ("dashboard.keys", "/dashboard/api-keys", TENANT),
    ("dashboard.key.revoke", "/dashboard/api-keys/{key_id}/revoke", API_KEY),
    ("dashboard.members", "/dashboard/members", TENANT),
    ("dashboard.members.invite", "/dashboard/members/invite", TENANT),
    ("dashboard.member.role", "/dashboard/members/{member_id}/role", MEMBER),
    ("dashboard.member.remove", "/dashboard/members/{member_id}/remove", MEMBER),
    ("dashboard.invite.revoke", "/dashboard/members/invites/{invite_id}/revoke", INVITE),
)


def includeme(config) -> None:
    for name, pattern, factory in ROUTES:
        config.add_route(name, pattern, factory=factory)
