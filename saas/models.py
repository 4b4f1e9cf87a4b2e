"""Every mapped class, imported once so ``Base.metadata`` is complete (Alembic)."""

from saas.accounts.models import AccountLink, Passkey, RecoveryCode, TotpFactor
from saas.apikeys.models import ApiKey
from saas.apps.models import App, AppSecret, SigningKey
from saas.audit.models import AuditEvent
from saas.db import Base
from saas.tenants.models import Member, Tenant
from saas.users.models import EndUser
from saas.webhooks.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)

__all__ = [
    "AccountLink",
    "ApiKey",
    "App",
    "AppSecret",
    "AuditEvent",
    "Base",
    "EndUser",
    "Member",
    "Passkey",
    "RecoveryCode",
    "SigningKey",
    "Tenant",
    "TotpFactor",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
]
