"""Login sessions and their rotating refresh tokens, in Redis.

A session is one login's refresh-token family: ``{prefix}:{app}:sess:{sid}``
(a hash: user, external id, ``revoked``) and one ``rt:{sha256}`` hash per
refresh token ever issued in it. Refresh tokens are ``<sid>.<secret>`` with
256 random bits, stored only as hashes.

Creation is one Lua script (atomic without MULTI, so it can share a
pipeline, and a round trip, with the login's event). Rotation is one Lua
script too, which also reads the session back: an active token is marked
rotated and its successor recorded; a rotated token presented again within 10 s (a client's
retry) gets the same successor; later, it revokes the whole session (reuse
detection). The successor is derived with an HMAC of the presented token, so
a retry can be answered with the same token without ever storing a refresh
token in plain text.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from saas.crypto import hash_token
from saas.jwt.codec import b64url_encode

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

# Rotation then reads the session (one round trip instead of two): the
# outcome, and for rotated/retry/reused the session's user, external id,
# expiry and revoked flag (a reuse is audited with the session's user).
_ROTATE_AND_READ = """
local outcome = (function()
""" + _ROTATE + """
end)()
if outcome == 'rotated' or outcome == 'retry' or outcome == 'reused' then
  local s = redis.call('HMGET', KEYS[2], 'user_id', 'external_id', 'expires_at', 'revoked',
                       'scope', 'auth_time', 'amr')
  return {outcome, s[1] or '', s[2] or '', s[3] or '0', s[4] or '', s[5] or '', s[6] or '0',
          s[7] or ''}
end
return {outcome}
"""

# KEYS: session, its first refresh token, the user's sessions.
# ARGV: user id, external id, expires_at, ttl (s), sid, scope, auth_time, amr (JSON).
_CREATE = """
local ttl = tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 'user_id', ARGV[1], 'external_id', ARGV[2], 'revoked', '0',
           'expires_at', ARGV[3], 'scope', ARGV[6], 'auth_time', ARGV[7], 'amr', ARGV[8])
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('HSET', KEYS[2], 'sid', ARGV[5])
redis.call('EXPIRE', KEYS[2], ttl)
redis.call('SADD', KEYS[3], ARGV[5])
-- The set lives as long as its longest session (EXPIRE GT, or NX if it has none).
local left = redis.call('TTL', KEYS[3])
if left < ttl then redis.call('EXPIRE', KEYS[3], ttl) end
return 1
"""


@dataclass(frozen=True)
class OidcLogin:
    """What a session's ID tokens say of its login (docs/oidc.md); empty scopes
    for a login without OpenID Connect."""

    scopes: tuple[str, ...] = ()
    auth_time: int = 0
    amr: tuple[str, ...] = ()

    @property
    def scope(self) -> str:
        return " ".join(self.scopes)


NO_OIDC = OidcLogin()


@dataclass(frozen=True)
class Session:
    sid: str
    user_id: str
    external_id: str
    expires_at: int  # epoch seconds
    oidc: OidcLogin = NO_OIDC


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
    """``clock``: the service's clock (``saas.clock``), for expiry times and the
    retry grace; Redis's own clock expires the keys."""

    def __init__(self, client, keys, successor_key: bytes,
                 clock: Callable[[], float] = time.time) -> None:
        self.redis = client
        self.keys = keys
        self._successor_key = successor_key
        self._clock = clock
        self._rotate = client.register_script(_ROTATE_AND_READ)
        self._create = client.register_script(_CREATE)

    def session_key(self, app_id: str, sid: str) -> str:
        return self.keys.app(app_id, "sess", sid)

    def _token_key(self, app_id: str, refresh_token: str) -> str:
        return self.keys.app(app_id, "rt", hash_token(refresh_token))

    def _successor(self, refresh_token: str, sid: str) -> str:
        mac = hmac.new(self._successor_key, refresh_token.encode("utf-8"), hashlib.sha256)
        return sid + "." + b64url_encode(mac.digest())

    def create(self, app_id: str, sid: str, user_id: str, external_id: str, ttl: int,
               client=None, oidc: OidcLogin = NO_OIDC) -> str:
        """Start a session; returns its first refresh token. With ``client``
        (a pipeline) the script is only queued there."""
        refresh_token = f"{sid}.{secrets.token_urlsafe(32)}"
        self._create(
            keys=[self.session_key(app_id, sid), self._token_key(app_id, refresh_token),
                  self._user_key(app_id, user_id)],
            args=[user_id, external_id, str(int(self._clock()) + ttl), ttl, sid, oidc.scope,
                  oidc.auth_time, json.dumps(list(oidc.amr)) if oidc.amr else ""],
            client=client,
        )
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
        data = self.redis.hgetall(self.session_key(app_id, sid))
        if not data or data.get(b"revoked") != b"0":
            return None
        return _session_of(sid, data)

    def is_active(self, app_id: str, sid: str) -> bool:
        return self.redis.hget(self.session_key(app_id, sid), "revoked") == b"0"

    def revoke(self, app_id: str, sid: str) -> bool:
        """Revoke a session; True if it was live. Its keys expire on their own."""
        key = self.session_key(app_id, sid)
        was_live = self.redis.hget(key, "revoked") == b"0"
        if was_live:
            self.redis.hset(key, "revoked", "1")
        return was_live

    def session_of_refresh_token(self, app_id: str, refresh_token: str) -> str | None:
        sid = _sid_of(refresh_token)
        if sid and self.redis.exists(self._token_key(app_id, refresh_token)):
            return sid
        return None

    def live_session_of_refresh_token(self, app_id: str,
                                      refresh_token: str) -> Session | None:
        """The live session whose current refresh token this is (introspection):
        None for an unknown, rotated-out or revoked one."""
        sid = _sid_of(refresh_token)
        if sid is None:
            return None
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(self._token_key(app_id, refresh_token))
        pipe.hgetall(self.session_key(app_id, sid))
        token, data = pipe.execute()
        if not token or b"rotated_at" in token or data.get(b"revoked") != b"0":
            return None
        return _session_of(sid, data)

    def rotate(self, app_id: str, refresh_token: str) -> Rotation:
        sid = _sid_of(refresh_token)
        if sid is None:
            return Rotation("invalid")
        successor = self._successor(refresh_token, sid)
        answer = self._rotate(
            keys=[
                self._token_key(app_id, refresh_token),
                self.session_key(app_id, sid),
                self._token_key(app_id, successor),
            ],
            args=[int(self._clock() * 1000), RETRY_GRACE_MS, hash_token(successor), sid],
        )
        outcome = answer[0].decode()
        if outcome not in ("rotated", "retry", "reused"):
            return Rotation(outcome)
        user_id, external_id, expires_at, revoked, scope, auth_time, amr = answer[1:8]
        if outcome == "reused":  # the session was revoked by this very call
            return Rotation(outcome, Session(sid, user_id.decode(), external_id.decode(),
                                             int(expires_at)))
        if revoked != b"0" or not user_id:  # revoked or gone meanwhile, as get() would say
            return Rotation("revoked")
        session = Session(sid=sid, user_id=user_id.decode(), external_id=external_id.decode(),
                          expires_at=int(expires_at), oidc=_oidc_login(scope, auth_time, amr))
        return Rotation(outcome, session, successor)


def _session_of(sid: str, data: dict[bytes, bytes]) -> Session:
    """A session from its stored hash (HGETALL)."""
    return Session(sid=sid, user_id=data[b"user_id"].decode(),
                   external_id=data[b"external_id"].decode(),
                   expires_at=int(data[b"expires_at"]),
                   oidc=_oidc_login(data.get(b"scope", b""), data.get(b"auth_time", b""),
                                    data.get(b"amr", b"")))


def _oidc_login(scope: bytes, auth_time: bytes, amr: bytes) -> OidcLogin:
    if not scope:
        return NO_OIDC
    return OidcLogin(tuple(scope.decode().split()), int(auth_time or 0),
                     tuple(json.loads(amr)) if amr else ())


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
        registry["saas.clock"],
    )
    config.add_request_method(
        lambda r: r.registry["saas.sessions_store"], "login_sessions", reify=True
    )
