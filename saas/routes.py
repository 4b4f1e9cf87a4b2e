"""Every route in one place, with dotted names."""

from __future__ import annotations


def includeme(config) -> None:
    config.add_route("healthz", "/healthz")
    config.add_route("readyz", "/readyz")
    config.add_route("metrics", "/metrics")
    config.add_route("home", "/")
    config.add_route("favicon", "/favicon.ico")
    # The login protocol (docs/protocol.md §4–§6).
    app = "/v1/apps/{app_id}"
    config.add_route("flows.authorize", app + "/authorize")
    config.add_route("flows.callback", app + "/callback")
    config.add_route("flows.hosted_login", app + "/login")
    config.add_route("flows.inapp_login", app + "/login/custom")
    config.add_route("flows.custom_token", app + "/login/custom-token")
    config.add_route("flows.token", app + "/token")
    config.add_route("flows.jwks", app + "/.well-known/jwks.json")
    config.add_route("flows.me", app + "/me")
    config.add_route("flows.logout", app + "/logout")

    # The dashboard's routes are declared in saas.dashboard (its includeme).
