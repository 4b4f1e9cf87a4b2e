"""The management API (``/v1/manage/…``): JSON, authenticated by tenant API keys.

Routes here, views in ``apps``, ``secrets``, ``users``, ``audit`` and ``webhooks``; every
route's factory (``contexts``) resolves the key's tenant and the ids of the
URL within it. The OpenAPI document of the whole public surface is served at
``/v1/openapi.json`` (``saas.openapi``). Reference: docs/management-api.md.
"""

from __future__ import annotations

CONTEXTS = "saas.manage.contexts."
APP = "/v1/manage/apps/{app_id}"
USER = APP + "/users/{user_id}"
SECRET = APP + "/secrets/{kind}"
WEBHOOK = APP + "/webhooks/{webhook_id}"


def includeme(config) -> None:
    config.add_route("openapi", "/v1/openapi.json")

    def route(name: str, pattern: str, scope: str) -> None:
        config.add_route("manage." + name, pattern, factory=CONTEXTS + scope)

    route("apps", "/v1/manage/apps", "TenantScope")
    route("app", APP, "AppScope")
    route("app.secrets", APP + "/secrets", "AppScope")
    route("app.secret.rotate", SECRET + "/rotate", "SecretScope")
    route("app.secret.revoke_previous", SECRET + "/revoke-previous", "SecretScope")
    route("app.users", APP + "/users", "AppScope")
    route("app.user", USER, "UserScope")
    route("app.user.disable", USER + "/disable", "UserScope")
    route("app.user.enable", USER + "/enable", "UserScope")
    route("app.user.revoke_sessions", USER + "/revoke-sessions", "UserScope")
    route("app.audit", APP + "/audit", "AppScope")
    route("app.audit_csv", APP + "/audit.csv", "AppScope")
    route("app.stats", APP + "/stats", "AppScope")
    route("app.attempt", APP + "/attempts/{attempt_id}", "AppScope")
    route("app.webhooks", APP + "/webhooks", "AppScope")
    route("app.webhook", WEBHOOK, "WebhookScope")
    route("app.webhook.secret", WEBHOOK + "/secret", "WebhookScope")
    route("app.webhook.secret.rotate", WEBHOOK + "/secret/rotate", "WebhookScope")
    route("app.webhook.test", WEBHOOK + "/test", "WebhookScope")
    route("app.webhook.deliveries", WEBHOOK + "/deliveries", "WebhookScope")
    route("app.webhook.delivery.resend", WEBHOOK + "/deliveries/{delivery_id}/resend",
          "DeliveryScope")
