"""A tenant's changes to its apps and their shared secrets, the same through either door.

Each function makes the change, writes its audit row and publishes the app's
settings to the login path's cache (``saas.apps.cache``), in that order. A
call that changes nothing records nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from saas.apps import services
from saas.apps.cache import publish_app, unpublish_app
from saas.apps.models import CLIENT_SECRET_KIND, App, SecretKind
from saas.audit.types import AuditType
from saas.tenancy.audit import audit


def allow_private(request) -> bool:
    """Whether endpoints may resolve to private addresses (development only)."""
    return request.registry.settings["saas.backchannel.allow_private"]


def _audit(request, type_: str, app: App, **kw: Any) -> None:
    audit(request, type_, tenant_id=app.tenant_id, app=app, **kw)


def create_app(request, tenant_id: uuid.UUID, settings: dict[str, Any]
               ) -> tuple[App, dict[str, str]]:
    """A new app from checked settings, and its secrets in plain text (shown once).

    Raises ``InvalidSetting`` (nothing written) if the endpoint no longer resolves.
    """
    app, secrets = services.create_app(request.db, request.secret_box, tenant_id=tenant_id,
                                       allow_private=allow_private(request), **settings)
    _audit(request, AuditType.APP_CREATED, app, details={"name": app.name})
    publish_app(request, app)
    return app, secrets


@dataclass
class Update:
    """What ``update_app`` did: the settings that changed and, when the app
    just became a confidential client, its new client secret (shown once)."""

    changed: dict[str, Any]
    secrets: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.changed)


def update_app(request, app: App, settings: dict[str, Any]) -> Update:
    """Apply checked settings; a switch to ``confidential`` creates the client
    secret, a switch to ``public`` deletes it."""
    update = Update(services.update_app(app, settings))
    if update:
        if "client_type" in update.changed:
            plaintext = services.sync_client_secret(app)
            if plaintext is not None:
                update.secrets[CLIENT_SECRET_KIND] = plaintext
        # Field names only: a value could be sensitive, and the log is no settings history.
        _audit(request, AuditType.APP_UPDATED, app, details={"fields": sorted(update.changed)})
        publish_app(request, app)
    return update


def delete_app(request, app: App) -> None:
    """Delete the app with everything it owns, and drop it from the cache."""
    _audit(request, AuditType.APP_DELETED, app, details={"name": app.name})
    request.db.delete(app)
    # The delete reaches PostgreSQL (or the request fails) before the cache forgets the app.
    request.db.flush()
    unpublish_app(request, app.app_id)


def reveal_secrets(request, app: App) -> dict[str, dict[str, Any]]:
    """Both current secrets; revealing is itself audited."""
    _audit(request, AuditType.SECRET_REVEALED, app)
    return services.reveal_secrets(app, request.secret_box)


def rotate_secret(request, app: App, kind: str, grace_seconds: int) -> str:
    """A new current secret (plain text, shown once); the old one verifies for the grace.

    ``kind`` is a ``SecretKind`` or ``client_secret`` (a confidential app's;
    the route context has made sure it has one).
    """
    if kind == CLIENT_SECRET_KIND:
        plaintext = services.rotate_client_secret(app, grace_seconds)
    else:
        plaintext = services.rotate_secret(app, SecretKind(kind), request.secret_box,
                                           grace_seconds)
    _audit(request, AuditType.SECRET_ROTATED, app,
           details={"kind": str(kind), "grace_seconds": grace_seconds})
    publish_app(request, app)
    return plaintext


def revoke_previous_secret(request, app: App, kind: str) -> bool:
    """Stop the previous secret verifying now; False (nothing recorded) if there was none."""
    if kind == CLIENT_SECRET_KIND:
        revoked = services.revoke_previous_client_secret(app)
    else:
        revoked = services.revoke_previous_secret(app, SecretKind(kind))
    if not revoked:
        return False
    _audit(request, AuditType.SECRET_REVOKED, app, details={"kind": str(kind)})
    publish_app(request, app)
    return True
