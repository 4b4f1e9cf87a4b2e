"""Creating apps and handling their secrets."""

from __future__ import annotations

import datetime as dt
import re
import secrets
import string
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from saas.apps.models import (
    CLIENT_SECRET_KIND,
    App,
    AppSecret,
    ClientSecret,
    ClientType,
    SecretKind,
)
from saas.apps.signing_keys import new_signing_key
from saas.apps.validation import (
    InvalidSetting,
    validate_client_type,
    validate_endpoint,
    validate_name,
    validate_post_logout_redirect_uris,
    validate_redirect_uris,
    validate_restart_url,
)
from saas.clock import iso_utc
from saas.crypto import SecretBox, hash_token
from saas.db import utcnow

APP_ID_ALPHABET = string.ascii_lowercase + string.digits
APP_ID_LENGTH = 8
SECRET_BYTES = 32
CLIENT_SECRET_PREFIX = "cs_"


def new_app_id() -> str:
    return "".join(secrets.choice(APP_ID_ALPHABET) for _ in range(APP_ID_LENGTH))


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def new_client_secret() -> str:
    """A confidential client's secret; the prefix makes a leaked one recognisable."""
    return CLIENT_SECRET_PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def create_app(
    db: Session,
    box: SecretBox,
    *,
    tenant_id: uuid.UUID,
    name: str,
    custom_auth_endpoint: str | None = None,
    redirect_uris: list[str] | None = None,
    client_type: str = ClientType.PUBLIC.value,
    post_logout_redirect_uris: list[str] | None = None,
    allow_private: bool = False,
    **settings: Any,
) -> tuple[App, dict[str, str]]:
    """Create an app with both secrets and a signing key (and a client secret
    when it is a confidential client).

    Returns the app and its plaintext secrets (to show once to the caller).
    Raises ``InvalidSetting`` for a bad name, endpoint, client type or URI.
    """
    name = validate_name(name)
    if custom_auth_endpoint:
        custom_auth_endpoint = validate_endpoint(custom_auth_endpoint, allow_private=allow_private)
    uris = validate_redirect_uris(redirect_uris or [])
    client_type = validate_client_type(client_type)
    logout_uris = validate_post_logout_redirect_uris(post_logout_redirect_uris or [])
    plaintext = {kind.value: new_secret() for kind in SecretKind}
    client_secret = new_client_secret() if client_type == ClientType.CONFIDENTIAL else None
    for _attempt in range(5):
        app = App(
            app_id=new_app_id(),
            tenant_id=tenant_id,
            name=name,
            custom_auth_endpoint=custom_auth_endpoint or None,
            redirect_uris=uris,
            client_type=client_type,
            post_logout_redirect_uris=logout_uris,
            **settings,
        )
        app.secrets = [
            AppSecret(kind=kind, current_ciphertext=box.encrypt(plaintext[kind.value]))
            for kind in SecretKind
        ]
        if client_secret is not None:
            app.client_secret = ClientSecret(current_hash=hash_token(client_secret))
        app.signing_keys = [new_signing_key(box)]
        try:
            # 36^8 ids make a clash rare; the unique constraint makes it harmless.
            with db.begin_nested():
                db.add(app)
                db.flush()
        except IntegrityError:
            continue
        if client_secret is not None:
            plaintext[CLIENT_SECRET_KIND] = client_secret
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
        .options(selectinload(App.secrets), selectinload(App.client_secret))
    )


def reveal_secrets(app: App, box: SecretBox) -> dict[str, dict[str, Any]]:
    """The secrets in the shape of the management API (docs/management-api.md)."""
    revealed = {}
    for kind in SecretKind:
        secret = app.secret(kind)
        valid_until = secret.previous_valid_until if secret.previous_ciphertext else None
        revealed[kind.value] = {
            "current": box.decrypt(secret.current_ciphertext),
            "previous_valid_until": iso_utc(valid_until),
        }
    client_secret = confidential_secret(app)
    if client_secret is not None:
        # Only its hash is kept: the value was shown once and cannot be read back.
        valid_until = client_secret.previous_valid_until if client_secret.previous_hash else None
        revealed[CLIENT_SECRET_KIND] = {"current": None,
                                        "previous_valid_until": iso_utc(valid_until)}
    return revealed


def confidential_secret(app: App) -> ClientSecret | None:
    """The app's client secret while it is a confidential client, else None."""
    if app.client_type != ClientType.CONFIDENTIAL:
        return None
    return app.client_secret


def app_as_dict(app: App) -> dict[str, Any]:
    """The app object of the management API (docs/management-api.md)."""
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
        "restart_url": app.restart_url,
        "client_type": app.client_type,
        "pkce_required": app.pkce_required,
        "post_logout_redirect_uris": list(app.post_logout_redirect_uris or []),
        "oidc_custom_claim": app.oidc_custom_claim,
        "created_at": iso_utc(app.created_at),
        "updated_at": iso_utc(app.updated_at),
    }


# Settings a tenant may change (docs/management-api.md), with their checks.
UPDATABLE = ("name", "custom_auth_endpoint", "redirect_uris", "backchannel",
             "custom_token_enabled", "require_bound_tokens", "access_token_ttl",
             "refresh_token_ttl", "hosted_form", "restart_url", "client_type",
             "pkce_required", "post_logout_redirect_uris", "oidc_custom_claim")
DEFAULT_GRACE_SECONDS = 86400
MAX_GRACE_SECONDS = 604800


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidSetting(f"{name} must be true or false.")
    return value


def _check_ttl(name: str, value: Any, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidSetting(f"{name} must be a whole number of seconds from {low} to {high}.")
    return value


def _check_hosted_form(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"title", "fields"}:
        raise InvalidSetting("hosted_form takes a title and fields.")
    title = value.get("title")
    if title is not None and (not isinstance(title, str) or len(title) > 100):
        raise InvalidSetting("The hosted form's title must be text of at most 100 characters.")
    fields = value.get("fields") or []
    if not isinstance(fields, list) or len(fields) > 10:
        raise InvalidSetting("The hosted form has at most 10 fields.")
    checked = []
    for field in fields:
        if (not isinstance(field, dict) or set(field) - {"name", "label", "type"}
                or not isinstance(field.get("name"), str)
                or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", field["name"])
                or field["name"] == "state"
                or field.get("type", "text") not in ("text", "password", "email", "tel",
                                                      "number")
                or not isinstance(field.get("label", ""), str)
                or len(field.get("label", "")) > 100):
            raise InvalidSetting("Each hosted form field needs a name ([A-Za-z0-9_-], not "
                                 "'state'), a label and a type of text, password, email, tel "
                                 "or number.")
        checked.append({"name": field["name"], "label": field.get("label") or field["name"],
                        "type": field.get("type", "text")})
    return {"title": title, "fields": checked}


def checked_settings(changes: dict[str, Any], *, allow_private: bool) -> dict[str, Any]:
    """Validate a partial update of app settings; raises InvalidSetting."""
    unknown = set(changes) - set(UPDATABLE)
    if unknown:
        raise UnknownFields(sorted(unknown))
    checked: dict[str, Any] = {}
    for name, value in changes.items():
        if name == "name":
            checked[name] = validate_name(value if isinstance(value, str) else "")
        elif name == "custom_auth_endpoint":
            if value is not None and not isinstance(value, str):
                raise InvalidSetting("custom_auth_endpoint must be a URL or null.")
            checked[name] = (validate_endpoint(value, allow_private=allow_private)
                             if value else None)
        elif name == "redirect_uris":
            if not isinstance(value, list) or not all(isinstance(u, str) for u in value):
                raise InvalidSetting("redirect_uris must be a list of URIs.")
            checked[name] = validate_redirect_uris(value)
        elif name == "post_logout_redirect_uris":
            if not isinstance(value, list) or not all(isinstance(u, str) for u in value):
                raise InvalidSetting("post_logout_redirect_uris must be a list of URIs.")
            checked[name] = validate_post_logout_redirect_uris(value)
        elif name == "client_type":
            checked[name] = validate_client_type(value)
        elif name in ("backchannel", "custom_token_enabled", "require_bound_tokens",
                      "pkce_required", "oidc_custom_claim"):
            checked[name] = _check_bool(name, value)
        elif name == "access_token_ttl":
            checked[name] = _check_ttl(name, value, 60, 3600)
        elif name == "refresh_token_ttl":
            checked[name] = _check_ttl(name, value, 60, 365 * 24 * 3600)
        elif name == "hosted_form":
            checked[name] = _check_hosted_form(value)
        elif name == "restart_url":
            if value is not None and not isinstance(value, str):
                raise InvalidSetting("restart_url must be a URL or null.")
            checked[name] = validate_restart_url(value) if value else None
    return checked


class UnknownFields(InvalidSetting):
    """The request named settings that do not exist (the API answers 422)."""

    def __init__(self, names: list[str]) -> None:
        super().__init__("Unknown fields: " + ", ".join(names) + ".")
        self.names = names


def update_app(app: App, changes: dict[str, Any]) -> dict[str, Any]:
    """Apply checked settings; returns {name: (old, new)} of what changed."""
    changed = {}
    for name, value in changes.items():
        old = getattr(app, name)
        if old != value:
            setattr(app, name, value)
            changed[name] = value
    if changed:
        app.updated_at = utcnow()
    return changed


def rotate_secret(app: App, kind: SecretKind, box: SecretBox,
                  grace_seconds: int = DEFAULT_GRACE_SECONDS) -> str:
    """A new current secret; the old one keeps verifying for ``grace_seconds``."""
    if not 0 <= grace_seconds <= MAX_GRACE_SECONDS:
        raise InvalidSetting(f"grace_seconds must be from 0 to {MAX_GRACE_SECONDS}.")
    secret = app.secret(kind)
    plaintext = new_secret()
    now = utcnow()
    secret.previous_ciphertext = secret.current_ciphertext if grace_seconds else None
    secret.previous_valid_until = now + dt.timedelta(seconds=grace_seconds) if grace_seconds \
        else None
    secret.current_ciphertext = box.encrypt(plaintext)
    secret.rotated_at = now
    app.updated_at = now
    return plaintext


def revoke_previous_secret(app: App, kind: SecretKind) -> bool:
    """Stop the previous secret verifying at once; True if there was one."""
    secret = app.secret(kind)
    had = secret.previous_ciphertext is not None
    secret.previous_ciphertext = None
    secret.previous_valid_until = None
    app.updated_at = utcnow()
    return had


def sync_client_secret(app: App) -> str | None:
    """Give a confidential client its secret, take a public client's away.

    Call after the client type may have changed. Returns the new secret in
    plain text (to show once) when one was created, else None.
    """
    if app.client_type != ClientType.CONFIDENTIAL:
        app.client_secret = None  # delete-orphan: the row goes
        return None
    if app.client_secret is not None:
        return None
    plaintext = new_client_secret()
    app.client_secret = ClientSecret(current_hash=hash_token(plaintext))
    return plaintext


def rotate_client_secret(app: App, grace_seconds: int = DEFAULT_GRACE_SECONDS) -> str:
    """A new client secret; the old one keeps authenticating for ``grace_seconds``.

    The app must be a confidential client (``confidential_secret`` not None).
    """
    if not 0 <= grace_seconds <= MAX_GRACE_SECONDS:
        raise InvalidSetting(f"grace_seconds must be from 0 to {MAX_GRACE_SECONDS}.")
    secret = confidential_secret(app)
    if secret is None:
        raise InvalidSetting("A public client has no client secret.")
    plaintext = new_client_secret()
    now = utcnow()
    secret.previous_hash = secret.current_hash if grace_seconds else None
    secret.previous_valid_until = now + dt.timedelta(seconds=grace_seconds) if grace_seconds \
        else None
    secret.current_hash = hash_token(plaintext)
    secret.rotated_at = now
    app.updated_at = now
    return plaintext


def revoke_previous_client_secret(app: App) -> bool:
    """Stop the previous client secret authenticating at once; True if there was one."""
    secret = confidential_secret(app)
    if secret is None or secret.previous_hash is None:
        return False
    secret.previous_hash = None
    secret.previous_valid_until = None
    app.updated_at = utcnow()
    return True


def previous_valid_until(app: App, kind: str) -> dt.datetime | None:
    """Until when the rotated-out secret of ``kind`` still verifies (None: none does)."""
    if kind == CLIENT_SECRET_KIND:
        client_secret = confidential_secret(app)
        return client_secret.previous_valid_until if client_secret else None
    return app.secret(SecretKind(kind)).previous_valid_until
