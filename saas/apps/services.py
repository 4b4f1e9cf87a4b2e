"""Creating apps and handling their secrets."""

from __future__ import annotations

import secrets
import string
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from saas.apps.models import App, AppSecret, SecretKind
from saas.apps.signing_keys import new_signing_key
from saas.apps.validation import validate_endpoint, validate_name, validate_redirect_uris
from saas.crypto import SecretBox

APP_ID_ALPHABET = string.ascii_lowercase + string.digits
APP_ID_LENGTH = 8
SECRET_BYTES = 32


def new_app_id() -> str:
    return "".join(secrets.choice(APP_ID_ALPHABET) for _ in range(APP_ID_LENGTH))


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def create_app(
    db: Session,
    box: SecretBox,
    *,
    tenant_id: uuid.UUID,
    name: str,
    custom_auth_endpoint: str | None = None,
    redirect_uris: list[str] | None = None,
    allow_private: bool = False,
    **settings: Any,
) -> tuple[App, dict[str, str]]:
    """Create an app with both secrets and a signing key.

    Returns the app and its plaintext secrets (to show once to the caller).
    Raises ``InvalidSetting`` for a bad name, endpoint or redirect URI.
    """
    name = validate_name(name)
    if custom_auth_endpoint:
        custom_auth_endpoint = validate_endpoint(custom_auth_endpoint, allow_private=allow_private)
    uris = validate_redirect_uris(redirect_uris or [])
    plaintext = {kind.value: new_secret() for kind in SecretKind}
    for _attempt in range(5):
        app = App(
            app_id=new_app_id(),
            tenant_id=tenant_id,
            name=name,
            custom_auth_endpoint=custom_auth_endpoint or None,
            redirect_uris=uris,
            **settings,
        )
        app.secrets = [
            AppSecret(kind=kind, current_ciphertext=box.encrypt(plaintext[kind.value]))
            for kind in SecretKind
        ]
        app.signing_keys = [new_signing_key(box)]
        try:
            # 36^8 ids make a clash rare; the unique constraint makes it harmless.
            with db.begin_nested():
                db.add(app)
                db.flush()
        except IntegrityError:
            continue
        return app, plaintext
    raise RuntimeError("could not allocate a unique app_id")


def apps_of_tenant(db: Session, tenant_id: uuid.UUID) -> list[App]:
    return list(
        db.scalars(select(App).where(App.tenant_id == tenant_id).order_by(App.created_at.desc()))
    )


def app_of_tenant(db: Session, tenant_id: uuid.UUID, app_id: str) -> App | None:
    """The app with this public id if it belongs to the tenant; never another's."""
    return db.scalar(
        select(App)
        .where(App.tenant_id == tenant_id, App.app_id == app_id)
        .options(selectinload(App.secrets))
    )


def reveal_secrets(app: App, box: SecretBox) -> dict[str, dict[str, Any]]:
    """The secrets in the shape of the management API (DESIGN §8.1)."""
    revealed = {}
    for kind in SecretKind:
        secret = app.secret(kind)
        valid_until = secret.previous_valid_until if secret.previous_ciphertext else None
        revealed[kind.value] = {
            "current": box.decrypt(secret.current_ciphertext),
            "previous_valid_until": valid_until.isoformat() if valid_until else None,
        }
    return revealed


def app_as_dict(app: App) -> dict[str, Any]:
    """The app object of the management API (DESIGN §8.1)."""
    return {
        "app_id": app.app_id,
        "name": app.name,
        "custom_auth_endpoint": app.custom_auth_endpoint,
        "redirect_uris": list(app.redirect_uris or []),
        "backchannel": app.backchannel,
        "custom_token_enabled": app.custom_token_enabled,
        "require_bound_tokens": app.require_bound_tokens,
        "access_token_ttl": app.access_token_ttl,
        "refresh_token_ttl": app.refresh_token_ttl,
        "hosted_form": app.hosted_form,
        "created_at": app.created_at.isoformat(),
        "updated_at": app.updated_at.isoformat(),
    }
