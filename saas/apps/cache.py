"""App settings for the login hot path, read from Redis (docs/architecture.md).

The login endpoints never need PostgreSQL for an app whose settings are
cached: ``load`` reads ``{prefix}:{app_id}:config`` (settings, the secrets'
ciphertexts and the public/encrypted signing keys) and falls back to
PostgreSQL only on a miss, filling the cache. Every change made on the
dashboard, the API or the CLI writes the cache through (``store``), so the
TTL is only a safety net. Unknown app ids are cached briefly as misses, so a
flood of made-up ids does not reach the database.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from saas.apps.models import App, ClientType, SecretKind
from saas.apps.validation import is_app_id
from saas.crypto import SecretBox, constant_time_equals, hash_token

CACHE_TTL = 24 * 3600
MISS_TTL = 30
_MISS = b"-"
PARSED_ENTRIES = 1024  # apps whose parsed settings a web process keeps


@dataclass(frozen=True)
class SecretVersions:
    current: str  # ciphertext
    previous: str | None  # ciphertext
    previous_valid_until: float | None  # epoch seconds


@dataclass(frozen=True)
class ClientSecretHashes:
    current: str  # SHA-256 hex of the client secret
    previous: str | None
    previous_valid_until: float | None  # epoch seconds


@dataclass(frozen=True)
class SigningKeyConfig:
    kid: str
    private_ciphertext: str
    public_jwk: dict[str, Any]
    retired: bool
    published_until: float | None


@dataclass(frozen=True)
class AppConfig:
    id: str  # internal UUID, the namespace of end-user ids
    app_id: str
    tenant_id: str
    name: str
    custom_auth_endpoint: str | None
    redirect_uris: list[str]
    backchannel: bool
    custom_token_enabled: bool
    require_bound_tokens: bool
    access_token_ttl: int
    refresh_token_ttl: int
    hosted_form: dict[str, Any] | None
    restart_url: str | None
    secrets: dict[str, SecretVersions]
    signing_keys: list[SigningKeyConfig] = field(default_factory=list)
    # OpenID Connect (docs/oidc.md); the defaults read entries cached before them.
    client_type: str = ClientType.PUBLIC.value
    pkce_required: bool = True
    post_logout_redirect_uris: list[str] = field(default_factory=list)
    oidc_custom_claim: bool = False
    client_secret: ClientSecretHashes | None = None

    @property
    def confidential(self) -> bool:
        return self.client_type == ClientType.CONFIDENTIAL.value

    def client_secret_matches(self, presented: str, now: float) -> bool:
        """Whether ``presented`` is the client secret, or its predecessor in grace.

        Both hashes are compared, in constant time, whatever the first answer.
        """
        hashes = self.client_secret
        if hashes is None or not presented:
            return False
        digest = hash_token(presented)
        current = constant_time_equals(digest, hashes.current)
        previous = bool(hashes.previous) and (hashes.previous_valid_until or 0) > now \
            and constant_time_equals(digest, hashes.previous or "")
        return current or previous

    def secret_candidates(self, kind: SecretKind, box: SecretBox, now: float) -> list[str]:
        """The current secret, then the previous one while its grace lasts."""
        versions = self.secrets[kind.value]
        candidates = [_decrypt(box, versions.current)]
        if versions.previous and (versions.previous_valid_until or 0) > now:
            candidates.append(_decrypt(box, versions.previous))
        return candidates

    def active_signing_key(self) -> SigningKeyConfig:
        return next(k for k in self.signing_keys if not k.retired)

    def published_keys(self, now: float) -> list[dict[str, Any]]:
        return [
            k.public_jwk
            for k in self.signing_keys
            if not k.retired or (k.published_until or 0) > now
        ]

    def to_json(self) -> str:
        data = dict(self.__dict__)
        data["secrets"] = {kind: v.__dict__ for kind, v in self.secrets.items()}
        data["signing_keys"] = [k.__dict__ for k in self.signing_keys]
        data["client_secret"] = self.client_secret.__dict__ if self.client_secret else None
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> AppConfig:
        data = json.loads(raw)
        data["secrets"] = {k: SecretVersions(**v) for k, v in data["secrets"].items()}
        data["signing_keys"] = [SigningKeyConfig(**k) for k in data["signing_keys"]]
        if data.get("client_secret"):
            data["client_secret"] = ClientSecretHashes(**data["client_secret"])
        return cls(**data)


@functools.lru_cache(maxsize=4 * PARSED_ENTRIES)
def _decrypt(box: SecretBox, ciphertext: str) -> str:
    """Secrets decrypted once per process (a Fernet decrypt per login request
    was ~3 % of its CPU). Keyed by ciphertext: a rotated secret is a new entry."""
    return box.decrypt(ciphertext)


def _epoch(value: dt.datetime | None) -> float | None:
    if value is None:
        return None
    return value.timestamp()


def config_of(app: App) -> AppConfig:
    return AppConfig(
        id=str(app.id),
        app_id=app.app_id,
        tenant_id=str(app.tenant_id),
        name=app.name,
        custom_auth_endpoint=app.custom_auth_endpoint,
        redirect_uris=list(app.redirect_uris or []),
        backchannel=app.backchannel,
        custom_token_enabled=app.custom_token_enabled,
        require_bound_tokens=app.require_bound_tokens,
        access_token_ttl=app.access_token_ttl,
        refresh_token_ttl=app.refresh_token_ttl,
        hosted_form=app.hosted_form,
        restart_url=app.restart_url,
        secrets={
            s.kind.value: SecretVersions(
                current=s.current_ciphertext,
                previous=s.previous_ciphertext,
                previous_valid_until=_epoch(s.previous_valid_until),
            )
            for s in app.secrets
        },
        signing_keys=[
            SigningKeyConfig(
                kid=k.kid,
                private_ciphertext=k.private_key_ciphertext,
                public_jwk=k.public_jwk,
                retired=k.retired_at is not None,
                published_until=_epoch(k.published_until),
            )
            for k in sorted(app.signing_keys, key=lambda k: k.created_at, reverse=True)
        ],
        client_type=app.client_type,
        pkce_required=app.pkce_required,
        post_logout_redirect_uris=list(app.post_logout_redirect_uris or []),
        oidc_custom_claim=app.oidc_custom_claim,
        client_secret=_client_secret_hashes(app),
    )


def _client_secret_hashes(app: App) -> ClientSecretHashes | None:
    secret = app.client_secret
    if secret is None or app.client_type != ClientType.CONFIDENTIAL.value:
        return None
    return ClientSecretHashes(current=secret.current_hash, previous=secret.previous_hash,
                              previous_valid_until=_epoch(secret.previous_valid_until))


class AppConfigCache:
    def __init__(self, client, keys) -> None:
        self.redis = client
        self.keys = keys
        # app_id -> (the cached bytes, their parsed AppConfig): Redis stays the
        # source of truth (read on every request, so a change written through
        # by any process is seen at once); only the parsing is skipped while
        # the bytes are unchanged.
        self._parsed: dict[str, tuple[bytes, AppConfig]] = {}
        self._lock = threading.Lock()

    def key(self, app_id: str) -> str:
        return self.keys.app(app_id, "config")

    def store(self, app: App) -> AppConfig:
        """Write-through after any change of the app (call before commit)."""
        config = config_of(app)
        self.redis.set(self.key(app.app_id), config.to_json(), ex=CACHE_TTL)
        return config

    def forget(self, app_id: str) -> None:
        self.redis.delete(self.key(app_id))

    def known(self, app_id: str) -> bool:
        """Whether this process has served the app lately: its settings' ``GET``
        may then share a round trip with the request's first step (a made-up id
        never does, so it never reaches a script that writes)."""
        return app_id in self._parsed

    def load(self, db: Callable[[], Session], app_id: str) -> AppConfig | None:
        """The app's settings; ``db`` is called only on a cache miss."""
        if not is_app_id(app_id):
            return None
        return self.answer(db, app_id, self.redis.get(self.key(app_id)))

    def answer(self, db: Callable[[], Session], app_id: str, raw: bytes | None) -> AppConfig | None:
        """The settings from ``raw``, the reply to a ``GET`` of ``key(app_id)`` sent
        in some pipeline; a miss reads PostgreSQL and fills the cache."""
        if raw == _MISS:
            return None
        if raw is not None:
            return self._parse(app_id, raw)
        app = db().scalar(
            select(App)
            .where(App.app_id == app_id)
            .options(selectinload(App.secrets), selectinload(App.signing_keys),
                     selectinload(App.client_secret))
        )
        if app is None:
            self.redis.set(self.key(app_id), _MISS, ex=MISS_TTL)
            return None
        return self.store(app)

    def _parse(self, app_id: str, raw: bytes) -> AppConfig:
        known = self._parsed.get(app_id)
        if known is not None and known[0] == raw:
            return known[1]
        config = AppConfig.from_json(raw)
        with self._lock:
            if len(self._parsed) >= PARSED_ENTRIES:
                self._parsed.clear()
            self._parsed[app_id] = (raw, config)
        return config


def publish_app(request, app: App) -> None:
    """Publish the app's new settings to the login path's cache (every change
    of an app, dashboard or API): written after the flush, within the request,
    and again once the transaction has committed (a login that missed the
    cache meanwhile may have refilled it from the old row); if the transaction
    aborts or fails to commit the entry is dropped, so PostgreSQL stays the
    truth."""
    request.db.flush()
    cache = request.app_cache
    cache.store(app)

    def after_commit(committed: bool) -> None:
        if committed:
            cache.store(app)
        else:
            cache.forget(app.app_id)

    current = request.tm.get()
    current.addAfterCommitHook(after_commit)
    current.addAfterAbortHook(cache.forget, args=(app.app_id,))


def unpublish_app(request, app_id: str) -> None:
    """Drop a deleted app from the cache, now and once the delete has committed."""
    request.db.flush()
    cache = request.app_cache
    cache.forget(app_id)
    request.tm.get().addAfterCommitHook(lambda _committed: cache.forget(app_id))


def includeme(config) -> None:
    registry = config.registry
    registry["saas.app_cache"] = AppConfigCache(registry["saas.redis"], registry["saas.redis_keys"])
    config.add_request_method(lambda r: r.registry["saas.app_cache"], "app_cache", reify=True)
