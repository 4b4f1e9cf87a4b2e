"""Passkeys (WebAuthn, py_webauthn): register, list, remove, and check an assertion.

The relying party is the dashboard: its id is the host of
``saas.dashboard_host`` when set, else of ``saas.public_base_url``; the origin
is the dashboard's scheme, host and port. Each ceremony's challenge is kept
server-side in the dashboard session and taken out when the answer comes
back (single use, valid for ``CHALLENGE_SECONDS``).
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import urlsplit

import webauthn
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from webauthn.helpers import bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from saas.accounts.models import Passkey
from saas.tenants.models import Member

RP_NAME = "Bridgekeeper"
CHALLENGE_SECONDS = 300
TIMEOUT_MS = 120_000
MAX_NAME = 100
MAX_CREDENTIAL_JSON = 64 * 1024


class PasskeyRefused(Exception):
    """The browser's answer did not verify (or no challenge was pending)."""


def dashboard_origin(settings) -> str:
    """``scheme://host[:port]`` of the dashboard, as the browser reports it."""
    base = urlsplit(settings["saas.public_base_url"])
    host = settings.get("saas.dashboard_host")
    return f"{base.scheme}://{host}" if host else f"{base.scheme}://{base.netloc}"


def rp_id(settings) -> str:
    return urlsplit(dashboard_origin(settings)).hostname or ""


def passkeys_of(db: Session, member: Member) -> list[Passkey]:
    return list(db.scalars(select(Passkey).where(Passkey.member_id == member.id)
                           .order_by(Passkey.created_at)))


def count_passkeys(db: Session, member: Member) -> int:
    return db.scalar(select(func.count()).select_from(Passkey)
                     .where(Passkey.member_id == member.id)) or 0


def _script_safe(options_json: str) -> str:
    """JSON that can sit inside a <script type="application/json"> element."""
    return (options_json.replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("&", "\\u0026"))


def _descriptors(keys: list[Passkey]) -> list[PublicKeyCredentialDescriptor]:
    transports = {t.value for t in AuthenticatorTransport}
    return [PublicKeyCredentialDescriptor(
                id=key.credential_id,
                transports=[AuthenticatorTransport(t) for t in key.transports
                            if t in transports] or None)
            for key in keys]


def _keep(session: MutableMapping, purpose: str, challenge: bytes) -> None:
    session["webauthn:" + purpose] = {"challenge": bytes_to_base64url(challenge),
                                      "at": time.time()}


def _take(session: MutableMapping, purpose: str) -> bytes:
    kept = session.pop("webauthn:" + purpose, None)
    if not kept or time.time() - kept.get("at", 0) > CHALLENGE_SECONDS:
        raise PasskeyRefused("no pending challenge")
    return webauthn.base64url_to_bytes(kept["challenge"])


def registration_options(settings, session: MutableMapping, db: Session,
                         member: Member) -> str:
    """The options for ``navigator.credentials.create`` (JSON, base64url bytes)."""
    options = webauthn.generate_registration_options(
        rp_id=rp_id(settings), rp_name=RP_NAME, user_name=member.email,
        user_id=member.id.bytes, user_display_name=member.email, timeout=TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.PREFERRED),
        exclude_credentials=_descriptors(passkeys_of(db, member)))
    _keep(session, "register", options.challenge)
    return _script_safe(webauthn.options_to_json(options))


def _parse(credential_json: str) -> dict[str, Any]:
    if not credential_json or len(credential_json) > MAX_CREDENTIAL_JSON:
        raise PasskeyRefused("no credential")
    try:
        parsed = json.loads(credential_json)
    except ValueError as exc:
        raise PasskeyRefused("not JSON") from exc
    if not isinstance(parsed, dict):
        raise PasskeyRefused("not an object")
    return parsed


def register(settings, session: MutableMapping, db: Session, member: Member,
             credential_json: str, name: str) -> Passkey:
    """Verify the browser's new credential against the pending challenge and keep it."""
    challenge = _take(session, "register")
    credential = _parse(credential_json)
    try:
        verified = webauthn.verify_registration_response(
            credential=credential, expected_challenge=challenge,
            expected_rp_id=rp_id(settings), expected_origin=dashboard_origin(settings))
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise PasskeyRefused(type(exc).__name__) from exc
    if db.scalar(select(Passkey.id).where(Passkey.credential_id == verified.credential_id)):
        raise PasskeyRefused("credential registered already")
    transports = (credential.get("response") or {}).get("transports") or []
    key = Passkey(member_id=member.id, credential_id=verified.credential_id,
                  public_key=verified.credential_public_key, sign_count=verified.sign_count,
                  transports=[str(t)[:32] for t in transports if isinstance(t, str)][:8],
                  name=name[:MAX_NAME] or "Passkey")
    db.add(key)
    db.flush()
    return key


def authentication_options(settings, session: MutableMapping, db: Session,
                           member: Member) -> str | None:
    """Options for ``navigator.credentials.get`` limited to the member's
    passkeys; None when the member has none."""
    keys = passkeys_of(db, member)
    if not keys:
        return None
    options = webauthn.generate_authentication_options(
        rp_id=rp_id(settings), timeout=TIMEOUT_MS, allow_credentials=_descriptors(keys),
        user_verification=UserVerificationRequirement.PREFERRED)
    _keep(session, "authenticate", options.challenge)
    return _script_safe(webauthn.options_to_json(options))


def authenticate(settings, session: MutableMapping, db: Session, member: Member,
                 credential_json: str, now: dt.datetime) -> Passkey:
    """The member's passkey that signed the pending challenge (its counter moved on)."""
    challenge = _take(session, "authenticate")
    credential = _parse(credential_json)
    raw_id = credential.get("rawId") or credential.get("id")
    try:
        credential_id = webauthn.base64url_to_bytes(raw_id) if isinstance(raw_id, str) else b""
    except ValueError as exc:
        raise PasskeyRefused("bad id") from exc
    key = db.scalar(select(Passkey).where(Passkey.member_id == member.id,
                                          Passkey.credential_id == credential_id))
    if key is None:
        raise PasskeyRefused("not this member's passkey")
    try:
        verified = webauthn.verify_authentication_response(
            credential=credential, expected_challenge=challenge,
            expected_rp_id=rp_id(settings), expected_origin=dashboard_origin(settings),
            credential_public_key=key.public_key,
            credential_current_sign_count=key.sign_count)
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise PasskeyRefused(type(exc).__name__) from exc
    key.sign_count = verified.new_sign_count
    key.last_used_at = now
    db.flush()
    return key


def remove_passkey(db: Session, member: Member, passkey_id: str) -> Passkey | None:
    """Delete the member's passkey with this id; None if it is not theirs."""
    try:
        wanted = uuid.UUID(passkey_id)
    except ValueError:
        return None
    key = db.scalar(select(Passkey).where(Passkey.member_id == member.id,
                                          Passkey.id == wanted))
    if key is not None:
        db.delete(key)
        db.flush()
    return key
