"""The management API (``/v1/manage/…``): JSON, authenticated by tenant API keys.

Routes here, views in ``apps``, ``secrets``, ``users``, ``audit`` and ``webhooks``; every
route's factory (``saas.tenancy.contexts``, shared with the dashboard)
resolves the key's tenant and the ids of the URL within it. The OpenAPI
document of the whole public surface is served at ``/v1/openapi.json``
(``saas.openapi``). Reference: docs/management-api.md.
"""

from __future__ import annotations

CONTEXTS = "saas.tenancy.contexts."
APP = "/v1/manage/apps/{app_id}"
USER = APP + "/users/{user_id}"
SECRET = APP + "/secrets/{kind}"
WEBHOOK = APP + "/webhooks/{webhook_id}"


def includeme(config) -> None:
    config.add_route("openapi", "/v1/openapi.json")

    def route(name: str, pattern: str, scope: str) -> None:
        config.add_route("manage." + name, pattern, factory=CONTEXTS + scope)

    route("apps", "/v1/manage/apps", "TenantContext")
    route("app", APP, "AppContext")
    route("app.secrets", APP + "/secrets", "AppContext")
    route("app.secret.rotate", SECRET + "/rotate", "SecretContext")
    route("app.secret.revoke_previous", SECRET + "/revoke-previous", "SecretContext")
    route("app.users", APP + "/users", "AppContext")
    route("app.user", USER, "UserContext")
    route("app.user.disable", USER + "/disable", "UserContext")
    route("app.user.enable", USER + "/enable", "UserContext")
    route("app.user.revoke_sessions", USER + "/revoke-sessions", "UserContext")
    route("app.audit", APP + "/audit", "AppContext")
    route("app.audit_csv", APP + "/audit.csv", "AppContext")
    route("app.stats", APP + "/stats", "AppContext")
    route("app.attempt", APP + "/attempts/{attempt_id}", "AppContext")
    route("app.webhooks", APP + "/webhooks", "AppContext")
    route("app.webhook", WEBHOOK, "WebhookContext")
    route("app.webhook.secret", WEBHOOK + "/secret", "WebhookContext")
    route("app.webhook.secret.rotate", WEBHOOK + "/secret/rotate", "WebhookContext")
    route("app.webhook.test", WEBHOOK + "/test", "WebhookContext")
    route("app.webhook.deliveries", WEBHOOK + "/deliveries", "WebhookContext")
    route("app.webhook.delivery.resend", WEBHOOK + "/deliveries/{delivery_id}/resend",
          "DeliveryContext")
