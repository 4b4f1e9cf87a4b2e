"""Single-use values of the login protocol, kept in Redis.

* **States** (10 min): the nonce we hand to the tenant endpoint. Consumed
  atomically by a Lua script: exactly one request can ever use a state,
  whatever its outcome; a consumed state leaves a marker until the original
  TTL would have run out, so a second use is ``state_replayed``.
* **Tenant-token digests**: recorded with ``SET NX`` — the first use wins.
* **Authorization codes** (60 s): stored by their SHA-256, consumed by a Lua
  script that leaves the code's record behind as a "used" marker, so a reused
  code can revoke the session it created.

Every key of one app lives under the app's cluster hash tag (``saas.redis.Keys``).
Nothing here reads a value and deletes it in two steps.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

import redis

from saas.errors import Reason
from saas.fast_json import dumps
from saas.redis import Keys

STATE_TTL = 600
CODE_TTL = 60
USED_CODE_TTL = 600
_STATE_FORMAT = re.compile(r"^([a-z0-9]{8})\.[A-Za-z0-9_-]{32}$")

# KEYS[1] value key, KEYS[2] used-marker key; ARGV[1] marker TTL (ms) when the
# value has none left, ARGV[2] "keep" to store the value itself as the marker.
_CONSUME = """
local value = redis.call('GET', KEYS[1])
if value then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 1 then ttl = tonumber(ARGV[1]) end
  redis.call('DEL', KEYS[1])
  local marker = '1'
  if ARGV[2] == 'keep' then marker = value; ttl = tonumber(ARGV[1]) end
  redis.call('SET', KEYS[2], marker, 'PX', ttl)
  return {1, value}
end
local used = redis.call('GET', KEYS[2])
if used then return {2, used} end
return {0}
"""


class StateError(Exception):
    def __init__(self, reason: Reason) -> None:
        super().__init__(str(reason))
        self.reason = reason


@dataclass(frozen=True)
class CodeLookup:
    payload: dict[str, Any] | None  # the code's record when this call consumed it
    reused: dict[str, Any] | None  # the record of an already-consumed code


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def state_app_id(state: str) -> str | None:
    """The app a well-formed state was issued for (it is part of the state)."""
    match = _STATE_FORMAT.match(state)
    return match.group(1) if match else None


def state_binding(state: str) -> str:
    """The value of the browser-binding cookie for a state."""
    return _digest("bk-state-binding:" + state)


def state_cookie_name(state: str) -> str:
    return "bk_state_" + state_binding(state)[:16]


class NonceStore:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys
        self._consume = client.register_script(_CONSUME)

    def _value_and_marker(self, app_id: str, kind: str, name: str) -> list[str]:
        return [self.keys.app(app_id, kind, name), self.keys.app(app_id, kind + "-used", name)]

    # States -----------------------------------------------------------------
    def issue_state(self, app_id: str, record: dict[str, Any], ttl: int = STATE_TTL,
                    client=None) -> str:
        """A new state; ``client`` (a pipeline) queues the write instead of sending it."""
        state = f"{app_id}.{secrets.token_urlsafe(24)}"
        (client or self.redis).set(self.keys.app(app_id, "state", state), dumps(record),
                                   ex=ttl)
        return state

    def consume_state(self, app_id: str, state: str) -> dict[str, Any]:
        """The state's record, consumed; or StateError with the reason."""
        issued_for = state_app_id(state)
        if issued_for is None:
            raise StateError(Reason.STATE_UNKNOWN)
        if issued_for != app_id:
            raise StateError(Reason.STATE_APP_MISMATCH)
        found, *value = self._consume(
            keys=self._value_and_marker(app_id, "state", state), args=[STATE_TTL * 1000, "mark"]
        )
        if found == 1:
            return json.loads(value[0])
        raise StateError(Reason.STATE_REPLAYED if found == 2 else Reason.STATE_UNKNOWN)

    def peek_state(self, app_id: str, state: str) -> dict[str, Any] | None:
        """A live state's record, read without consuming it (to explain a refusal)."""
        value = self.redis.get(self.keys.app(app_id, "state", state))
        return json.loads(value) if value else None

    def unconsumed_state_reason(self, app_id: str, state: str) -> Reason:
        """Why a state cannot be used by a request lacking its binding cookie:
        ``state_not_bound`` while it is live, else replayed or unknown."""
        pipe = self.redis.pipeline(transaction=False)
        for key in self._value_and_marker(app_id, "state", state):
            pipe.exists(key)
        live, used = pipe.execute()
        if live:
            return Reason.STATE_NOT_BOUND
        return Reason.STATE_REPLAYED if used else Reason.STATE_UNKNOWN

    # Tenant tokens ------------------------------------------------------------
    def claim_token_once(self, app_id: str, replay_key: str, ttl: int, client=None) -> bool:
        """True for the first use of a token (by its digest or jti), False after.

        With ``client`` (a pipeline) the claim is only queued: its answer is
        the pipeline's, truthy for the first use.
        """
        key = self.keys.app(app_id, "token-used", _digest(replay_key))
        return bool((client or self.redis).set(key, "1", nx=True, ex=max(int(ttl), 1)))

    # Authorization codes ----------------------------------------------------------
    def issue_code(self, app_id: str, payload: dict[str, Any], ttl: int = CODE_TTL,
                   client=None) -> str:
        """A new code; ``client`` (a pipeline) queues the write instead of sending it."""
        code = secrets.token_urlsafe(32)
        (client or self.redis).set(self.keys.app(app_id, "code", _digest(code)),
                                   dumps(payload), ex=ttl)
        return code

    def consume_code(self, app_id: str, code: str) -> CodeLookup:
        if not code or len(code) > 256:
            return CodeLookup(None, None)
        digest = _digest(code)
        found, *value = self._consume(
            keys=self._value_and_marker(app_id, "code", digest), args=[USED_CODE_TTL * 1000, "keep"]
        )
        if found == 1:
            return CodeLookup(json.loads(value[0]), None)
        if found == 2:
            return CodeLookup(None, json.loads(value[0]))
        return CodeLookup(None, None)


def includeme(config) -> None:
    registry = config.registry
    registry["saas.nonces"] = NonceStore(registry["saas.redis"], registry["saas.redis_keys"])
    config.add_request_method(lambda r: r.registry["saas.nonces"], "nonces", reify=True)
