"""Tenants and members: sign-up, sign-in, passwords."""

from saas.passwords import passwords_from_settings


def includeme(config) -> None:
    config.registry["saas.passwords"] = passwords_from_settings(config.registry.settings)
    config.add_request_method(
        lambda request: request.registry["saas.passwords"], "passwords", reify=True
    )
