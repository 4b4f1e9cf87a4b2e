"""Login sessions and their rotating refresh tokens, in Redis.

A session is one login's refresh-token family: ``{prefix}:{app}:sess:{sid}``
(a hash: user, external id, ``revoked``) and one ``rt:{sha256}`` hash per
refresh token ever issued in it. Refresh tokens are ``<sid>.<secret>`` with
256 random bits, stored only as hashes.

Rotation is one Lua script: an active token is marked rotated and its
successor recorded; a rotated token presented again within 10 s (a client's
retry) gets the same successor; later, it revokes the whole session (reuse
detection). The successor is derived with an HMAC of the presented token, so
a retry can be answered with the same token without ever storing a refresh
token in plain text.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass

from saas.crypto import hash_token

RETRY_GRACE_MS = 10_000

_ROTATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 'invalid' end
if redis.call('HGET', KEYS[2], 'revoked') ~= '0' then return 'revoked' end
local rotated = redis.call('HGET', KEYS[1], 'rotated_at')
if rotated then
  local age = tonumber(ARGV[1]) - tonumber(rotated)
  if age <= tonumber(ARGV[2]) and redis.call('HGET', KEYS[1], 'successor') == ARGV[3] then
    return 'retry'
  end
  redis.call('HSET', KEYS[2], 'revoked', '1')
  return 'reused'
end
local ttl = redis.call('PTTL', KEYS[2])
if ttl < 1 then return 'invalid' end
redis.call('HSET', KEYS[1], 'rotated_at', ARGV[1], 'successor', ARGV[3])
redis.call('HSET', KEYS[3], 'sid', ARGV[4])
redis.call('PEXPIRE', KEYS[3], ttl)
return 'rotated'
"""


@dataclass(frozen=True)
class Session:
    sid: str
    user_id: str
    external_id: str
    expires_at: int  # epoch seconds


@dataclass(frozen=True)
class Rotation:
    outcome: str  # rotated | retry | reused | revoked | invalid
    session: Session | None = None
    refresh_token: str | None = None


def new_sid() -> str:
    return uuid.uuid4().hex


def _sid_of(refresh_token: str) -> str | None:
    sid, dot, secret = refresh_token.partition(".")
    if not dot or len(sid) != 32 or not secret or len(refresh_token) > 200:
        return None
    try:
        uuid.UUID(hex=sid)
    except ValueError:
        return None
    return sid


class SessionStore:
    def __init__(self, client, keys, successor_key: bytes) -> None:
        self.redis = client
        self.keys = keys
        self._successor_key = successor_key
        self._rotate = client.register_script(_ROTATE)

    def _session_key(self, app_id: str, sid: str) -> str:
        return self.keys.app(app_id, "sess", sid)

    def _token_key(self, app_id: str, refresh_token: str) -> str:
        return self.keys.app(app_id, "rt", hash_token(refresh_token))

    def _successor(self, refresh_token: str, sid: str) -> str:
        mac = hmac.new(self._successor_key, refresh_token.encode("utf-8"), hashlib.sha256)
        return sid + "." + base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode("ascii")

    def create(self, app_id: str, sid: str, user_id: str, external_id: str, ttl: int) -> str:
        """Start a session; returns its first refresh token."""
        refresh_token = f"{sid}.{secrets.token_urlsafe(32)}"
        session_key = self._session_key(app_id, sid)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(session_key, mapping={
            "user_id": user_id,
            "external_id": external_id,
            "revoked": "0",
            "expires_at": str(int(time.time()) + ttl),
        })
        pipe.expire(session_key, ttl)
        pipe.hset(self._token_key(app_id, refresh_token), "sid", sid)
        pipe.expire(self._token_key(app_id, refresh_token), ttl)
        # The user's sessions, so a tenant can revoke them all at once.
        pipe.sadd(self._user_key(app_id, user_id), sid)
        pipe.expire(self._user_key(app_id, user_id), ttl, gt=True)
        pipe.expire(self._user_key(app_id, user_id), ttl, nx=True)
        pipe.execute()
        return refresh_token

    def _user_key(self, app_id: str, user_id: str) -> str:
        return self.keys.app(app_id, "user-sessions", user_id)

    def revoke_user(self, app_id: str, user_id: str) -> int:
        """Revoke every live session of a user; returns how many were live."""
        sids = self.redis.smembers(self._user_key(app_id, user_id))
        revoked = sum(self.revoke(app_id, sid.decode()) for sid in sids)
        self.redis.delete(self._user_key(app_id, user_id))
        return revoked

    def get(self, app_id: str, sid: str) -> Session | None:
        """The session if it exists and is not revoked."""
        data = self.redis.hgetall(self._session_key(app_id, sid))
        if not data or data.get(b"revoked") != b"0":
            return None
        return Session(
            sid=sid,
            user_id=data[b"user_id"].decode(),
            external_id=data[b"external_id"].decode(),
            expires_at=int(data[b"expires_at"]),
        )

    def is_active(self, app_id: str, sid: str) -> bool:
        return self.redis.hget(self._session_key(app_id, sid), "revoked") == b"0"

    def revoke(self, app_id: str, sid: str) -> bool:
        """Revoke a session; True if it was live. Its keys expire on their own."""
        key = self._session_key(app_id, sid)
        was_live = self.redis.hget(key, "revoked") == b"0"
        if was_live:
            self.redis.hset(key, "revoked", "1")
        return was_live

    def session_of_refresh_token(self, app_id: str, refresh_token: str) -> str | None:
        sid = _sid_of(refresh_token)
        if sid and self.redis.exists(self._token_key(app_id, refresh_token)):
            return sid
        return None

    def rotate(self, app_id: str, refresh_token: str) -> Rotation:
        sid = _sid_of(refresh_token)
        if sid is None:
            return Rotation("invalid")
        successor = self._successor(refresh_token, sid)
        outcome = self._rotate(
            keys=[
                self._token_key(app_id, refresh_token),
                self._session_key(app_id, sid),
                self._token_key(app_id, successor),
            ],
            args=[int(time.time() * 1000), RETRY_GRACE_MS, hash_token(successor), sid],
        ).decode()
        if outcome not in ("rotated", "retry"):
            return Rotation(outcome, Session(sid, "", "", 0) if outcome == "reused" else None)
        session = self.get(app_id, sid)
        if session is None:
            return Rotation("revoked")
        return Rotation(outcome, session, successor)


def successor_key_from(master_key: str) -> bytes:
    """A key for deriving successors, separate from the encryption key."""
    return hmac.new(master_key.encode("utf-8"), b"bridgekeeper refresh successor v1",
                    hashlib.sha256).digest()


def includeme(config) -> None:
    registry = config.registry
    registry["saas.sessions_store"] = SessionStore(
        registry["saas.redis"],
        registry["saas.redis_keys"],
        successor_key_from(registry.settings["saas.master_key"]),
    )
    config.add_request_method(
        lambda r: r.registry["saas.sessions_store"], "login_sessions", reify=True
    )
