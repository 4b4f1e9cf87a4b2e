"""Every route in one place, with dotted names.

The dashboard's and the management API's routes carry the context factories
both doors share (``saas.tenancy.contexts``): tenancy is resolved once, before
a view runs.
"""

from __future__ import annotations

_CONTEXTS = "saas.tenancy.contexts."
_TENANT = _CONTEXTS + "TenantContext"
_APP = _CONTEXTS + "AppContext"
_SECRET = _CONTEXTS + "SecretContext"
_USER = _CONTEXTS + "UserContext"
_API_KEY = _CONTEXTS + "ApiKeyContext"
_MEMBER = _CONTEXTS + "MemberContext"
_INVITE = _CONTEXTS + "InviteContext"
_WEBHOOK = _CONTEXTS + "WebhookContext"
_DELIVERY = _CONTEXTS + "DeliveryContext"
_HOOK = "/dashboard/apps/{app_id}/webhooks/{webhook_id}"

# (route name, path, context factory or None)
DASHBOARD_ROUTES: tuple[tuple[str, str, str | None], ...] = (
    ("dashboard.signup", "/dashboard/signup", None),
    ("dashboard.signin", "/dashboard/signin", None),
    ("dashboard.signout", "/dashboard/signout", None),
    ("dashboard.invite", "/dashboard/invite/{token}", None),
    # Mailed single-use links: the token is a path segment (docs/accounts.md).
    ("dashboard.verify", "/dashboard/verify/{token}", None),
    ("dashboard.forgot", "/dashboard/forgot-password", None),
    ("dashboard.reset", "/dashboard/reset/{token}", None),
    ("dashboard.email.confirm", "/dashboard/email/confirm/{token}", None),
    ("dashboard.home", "/dashboard", _TENANT),
    ("dashboard.apps", "/dashboard/apps", _TENANT),
    ("dashboard.apps.new", "/dashboard/apps/new", _TENANT),
    ("dashboard.app", "/dashboard/apps/{app_id}", _APP),
    ("dashboard.app.settings", "/dashboard/apps/{app_id}/settings", _APP),
    ("dashboard.app.delete", "/dashboard/apps/{app_id}/delete", _APP),
    ("dashboard.app.secrets", "/dashboard/apps/{app_id}/secrets", _APP),
    ("dashboard.app.reveal", "/dashboard/apps/{app_id}/secrets/reveal", _APP),
    ("dashboard.app.secret.rotate", "/dashboard/apps/{app_id}/secrets/{kind}/rotate", _SECRET),
    ("dashboard.app.secret.revoke",
     "/dashboard/apps/{app_id}/secrets/{kind}/revoke-previous", _SECRET),
    ("dashboard.app.users", "/dashboard/apps/{app_id}/users", _APP),
    ("dashboard.app.user", "/dashboard/apps/{app_id}/users/{user_id}", _USER),
    ("dashboard.app.user.disable", "/dashboard/apps/{app_id}/users/{user_id}/disable", _USER),
    ("dashboard.app.user.enable", "/dashboard/apps/{app_id}/users/{user_id}/enable", _USER),
    ("dashboard.app.user.revoke_sessions",
     "/dashboard/apps/{app_id}/users/{user_id}/revoke-sessions", _USER),
    ("dashboard.app.user.delete", "/dashboard/apps/{app_id}/users/{user_id}/delete", _USER),
    ("dashboard.app.audit", "/dashboard/apps/{app_id}/audit", _APP),
    ("dashboard.app.audit_csv", "/dashboard/apps/{app_id}/audit.csv", _APP),
    ("dashboard.app.attempt", "/dashboard/apps/{app_id}/attempts/{attempt_id}", _APP),
    ("dashboard.app.debugger", "/dashboard/apps/{app_id}/debugger", _APP),
    ("dashboard.app.test_login", "/dashboard/apps/{app_id}/test-login", _APP),
    ("dashboard.app.webhooks", "/dashboard/apps/{app_id}/webhooks", _APP),
    ("dashboard.app.webhook", _HOOK, _WEBHOOK),
    ("dashboard.app.webhook.enable", _HOOK + "/enable", _WEBHOOK),
    ("dashboard.app.webhook.disable", _HOOK + "/disable", _WEBHOOK),
    ("dashboard.app.webhook.delete", _HOOK + "/delete", _WEBHOOK),
    ("dashboard.app.webhook.reveal", _HOOK + "/secret/reveal", _WEBHOOK),
    ("dashboard.app.webhook.rotate", _HOOK + "/secret/rotate", _WEBHOOK),
    ("dashboard.app.webhook.test", _HOOK + "/test", _WEBHOOK),
    ("dashboard.app.webhook.resend", _HOOK + "/deliveries/{delivery_id}/resend", _DELIVERY),
    ("dashboard.keys", "/dashboard/api-keys", _TENANT),
    ("dashboard.key.revoke", "/dashboard/api-keys/{key_id}/revoke", _API_KEY),
    ("dashboard.members", "/dashboard/members", _TENANT),
    ("dashboard.members.invite", "/dashboard/members/invite", _TENANT),
    ("dashboard.member.role", "/dashboard/members/{member_id}/role", _MEMBER),
    ("dashboard.member.remove", "/dashboard/members/{member_id}/remove", _MEMBER),
    ("dashboard.invite.revoke", "/dashboard/members/invites/{invite_id}/revoke", _INVITE),
    ("dashboard.account", "/dashboard/account", _TENANT),
    ("dashboard.account.verify.resend", "/dashboard/account/verify/resend", _TENANT),
    ("dashboard.account.password", "/dashboard/account/password", _TENANT),
    ("dashboard.account.email", "/dashboard/account/email", _TENANT),
    ("dashboard.account.sessions.others",
     "/dashboard/account/sessions/sign-out-others", _TENANT),
    ("dashboard.account.session.end", "/dashboard/account/sessions/{ref}/sign-out", _TENANT),
    # Second factors (docs/accounts.md): the sign-in's second step, enrolment, step-up.
    ("dashboard.signin.second", "/dashboard/signin/second-factor", None),
    ("dashboard.signin.passkey", "/dashboard/signin/passkey", None),
    ("dashboard.account.factors", "/dashboard/account/second-factor", _TENANT),
    ("dashboard.account.totp.start", "/dashboard/account/totp/start", _TENANT),
    ("dashboard.account.totp.confirm", "/dashboard/account/totp/confirm", _TENANT),
    ("dashboard.account.totp.remove", "/dashboard/account/totp/remove", _TENANT),
    ("dashboard.account.recovery", "/dashboard/account/recovery-codes", _TENANT),
    ("dashboard.account.passkeys", "/dashboard/account/passkeys", _TENANT),
    ("dashboard.account.passkey.remove",
     "/dashboard/account/passkeys/{passkey_id}/remove", _TENANT),
    ("dashboard.step_up", "/dashboard/step-up", _TENANT),
    ("dashboard.step_up.passkey", "/dashboard/step-up/passkey", _TENANT),
    ("dashboard.members.factor_rule", "/dashboard/members/second-factor-rule", _TENANT),
)

# Development only: the mail written to saas.mail_dir, listed and shown.
DEV_MAIL_ROUTES: tuple[tuple[str, str, str], ...] = (
    ("dashboard.dev.mail", "/dashboard/dev/mail", "mail_list"),
    ("dashboard.dev.mail.message", "/dashboard/dev/mail/{name}", "mail_message"),
)

_MANAGE_APP = "/v1/manage/apps/{app_id}"
_MANAGE_USER = _MANAGE_APP + "/users/{user_id}"
_MANAGE_SECRET = _MANAGE_APP + "/secrets/{kind}"
_MANAGE_WEBHOOK = _MANAGE_APP + "/webhooks/{webhook_id}"


def includeme(config) -> None:
    # The login protocol (docs/protocol.md §4–§6). Pyramid tries routes in
    # order, one regex each, so the busiest come first (none overlap).
    app = "/v1/apps/{app_id}"
    config.add_route("flows.authorize", app + "/authorize")
    config.add_route("flows.callback", app + "/callback")
    config.add_route("flows.token", app + "/token")
    config.add_route("flows.me", app + "/me")
    config.add_route("flows.custom_token", app + "/login/custom-token")
    config.add_route("flows.hosted_login", app + "/login")
    config.add_route("flows.inapp_login", app + "/login/custom")
    config.add_route("flows.jwks", app + "/.well-known/jwks.json")
    config.add_route("flows.logout", app + "/logout")
    # OpenID Connect (docs/oidc.md).
    config.add_route("oidc.discovery", app + "/.well-known/openid-configuration")
    config.add_route("oidc.userinfo", app + "/userinfo")
    config.add_route("oidc.revoke", app + "/revoke")
    config.add_route("oidc.introspect", app + "/introspect")
    config.add_route("oidc.end_session", app + "/end-session")
    config.add_route("sdk.script", "/v1/sdk.js")
    config.add_route("openapi", "/v1/openapi.json")
    config.add_route("healthz", "/healthz")
    config.add_route("readyz", "/readyz")
    config.add_route("metrics", "/metrics")
    config.add_route("home", "/")
    config.add_route("favicon", "/favicon.ico")

    for name, pattern, factory in DASHBOARD_ROUTES:
        config.add_route(name, pattern, factory=factory)
    if config.registry.get("saas.mail_transport_kind") == "file":
        for name, pattern, view in DEV_MAIL_ROUTES:
            config.add_route(name, pattern)
            # By dotted name: no module imports a views module.
            config.add_view(f"saas.dashboard.dev_mail.{view}", route_name=name,
                            request_method="GET", renderer=f"dashboard/dev_{view}.html")

    # The management API (docs/management-api.md).
    def route(name: str, pattern: str, scope: str) -> None:
        config.add_route("manage." + name, pattern, factory=_CONTEXTS + scope)

    route("apps", "/v1/manage/apps", "TenantContext")
    route("app", _MANAGE_APP, "AppContext")
    route("app.secrets", _MANAGE_APP + "/secrets", "AppContext")
    route("app.secret.rotate", _MANAGE_SECRET + "/rotate", "SecretContext")
    route("app.secret.revoke_previous", _MANAGE_SECRET + "/revoke-previous", "SecretContext")
    route("app.users", _MANAGE_APP + "/users", "AppContext")
    route("app.user", _MANAGE_USER, "UserContext")
    route("app.user.disable", _MANAGE_USER + "/disable", "UserContext")
    route("app.user.enable", _MANAGE_USER + "/enable", "UserContext")
    route("app.user.revoke_sessions", _MANAGE_USER + "/revoke-sessions", "UserContext")
    route("app.audit", _MANAGE_APP + "/audit", "AppContext")
    route("app.audit_csv", _MANAGE_APP + "/audit.csv", "AppContext")
    route("app.stats", _MANAGE_APP + "/stats", "AppContext")
    route("app.attempt", _MANAGE_APP + "/attempts/{attempt_id}", "AppContext")
    route("app.webhooks", _MANAGE_APP + "/webhooks", "AppContext")
    route("app.webhook", _MANAGE_WEBHOOK, "WebhookContext")
    route("app.webhook.secret", _MANAGE_WEBHOOK + "/secret", "WebhookContext")
    route("app.webhook.secret.rotate", _MANAGE_WEBHOOK + "/secret/rotate", "WebhookContext")
    route("app.webhook.test", _MANAGE_WEBHOOK + "/test", "WebhookContext")
    route("app.webhook.deliveries", _MANAGE_WEBHOOK + "/deliveries", "WebhookContext")
    route("app.webhook.delivery.resend", _MANAGE_WEBHOOK + "/deliveries/{delivery_id}/resend",
          "DeliveryContext")
