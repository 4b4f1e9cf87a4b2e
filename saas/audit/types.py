"""The audit log's vocabulary: every event type and outcome as enums
(docs/management-api.md, audit log).

A ``StrEnum``: members are the strings stored in ``audit_events.type`` and
carried in the login stream, so they compare equal to what the database and
the stream give back, and a typo is an ``AttributeError`` instead of a type
that silently never matches.
"""

from __future__ import annotations

import enum


class Outcome(enum.StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"


class AuditType(enum.StrEnum):
    # The login path (written by the sync from the login stream).
    LOGIN_STARTED = "login.started"
    LOGIN_SUCCEEDED = "login.succeeded"
    LOGIN_FAILED = "login.failed"
    CUSTOM_TOKEN_SUCCEEDED = "custom_token.succeeded"
    CUSTOM_TOKEN_FAILED = "custom_token.failed"
    TOKEN_ISSUED = "token.issued"
    TOKEN_REFRESHED = "token.refreshed"
    TOKEN_REFRESH_REUSE_DETECTED = "token.refresh_reuse_detected"
    TOKEN_CODE_REUSE_DETECTED = "token.code_reuse_detected"
    LOGOUT = "logout"
    TOKEN_REVOKED = "token.revoked"  # OAuth revocation (RFC 7009)
    USER_CREATED = "user.created"
    # A tenant's changes, through the dashboard or the management API.
    USER_DISABLED = "user.disabled"
    USER_ENABLED = "user.enabled"
    USER_DELETED = "user.deleted"
    SESSION_REVOKED = "session.revoked"
    APP_CREATED = "app.created"
    APP_UPDATED = "app.updated"
    APP_DELETED = "app.deleted"
    SECRET_REVEALED = "secret.revealed"
    SECRET_ROTATED = "secret.rotated"
    SECRET_REVOKED = "secret.revoked"
    WEBHOOK_CREATED = "webhook.created"
    WEBHOOK_UPDATED = "webhook.updated"
    WEBHOOK_DELETED = "webhook.deleted"
    WEBHOOK_SECRET_REVEALED = "webhook.secret_revealed"
    WEBHOOK_SECRET_ROTATED = "webhook.secret_rotated"
    WEBHOOK_RESENT = "webhook.resent"
    WEBHOOK_TESTED = "webhook.tested"
    DIAGNOSTICS_TEST_LOGIN = "diagnostics.test_login"
    # The tenant account itself.
    TENANT_CREATED = "tenant.created"
    API_KEY_CREATED = "api_key.created"
    API_KEY_REVOKED = "api_key.revoked"
    MEMBER_SIGNED_IN = "member.signed_in"
    MEMBER_SIGN_IN_FAILED = "member.sign_in_failed"
    MEMBER_INVITED = "member.invited"
    MEMBER_INVITE_REVOKED = "member.invite_revoked"
    MEMBER_JOINED = "member.joined"
    MEMBER_ROLE_CHANGED = "member.role_changed"
    MEMBER_REMOVED = "member.removed"
    # A member's own account (docs/accounts.md).
    MEMBER_EMAIL_VERIFIED = "member.email_verified"
    MEMBER_PASSWORD_RESET_REQUESTED = "member.password_reset_requested"
    MEMBER_PASSWORD_RESET = "member.password_reset"
    MEMBER_PASSWORD_CHANGED = "member.password_changed"
    MEMBER_EMAIL_CHANGE_REQUESTED = "member.email_change_requested"
    MEMBER_EMAIL_CHANGED = "member.email_changed"
    MEMBER_SESSION_REVOKED = "member.session_revoked"
    MEMBER_SECOND_FACTOR_ENROLLED = "member.second_factor_enrolled"
    MEMBER_SECOND_FACTOR_REMOVED = "member.second_factor_removed"
    MEMBER_SECOND_FACTOR_FAILED = "member.second_factor_failed"
    MEMBER_RECOVERY_CODE_USED = "member.recovery_code_used"
    MEMBER_RECOVERY_CODES_REGENERATED = "member.recovery_codes_regenerated"
    TENANT_SECOND_FACTOR_RULE_CHANGED = "tenant.second_factor_rule_changed"
