"""Read-your-writes: the merges of logins the sync workers have not stored yet.

Per end user, a Redis hash ``{prefix}:{app_id}:pending:{user_id}`` keeps, for
each top-level field of ``custom`` (``c.<name>``) and ``profile``
(``p.<name>``), the newest value as ``<version>|<json>`` (``saas.sync.versions``,
fixed-width text that orders by login time, then event id). A Lua
script applies the same last-writer-wins rule as the database merge, so the
overlay and the stored row agree whatever the order of logins. ``/me`` lays
the overlay over the stored user.
"""

from __future__ import annotations

import json
from typing import Any

PENDING_TTL = 7 * 24 * 3600

# ARGV: login ms, TTL, field version, then name/json pairs.
_MERGE = """
local key = KEYS[1]
local login_ms = tonumber(ARGV[1])
local version = ARGV[3]
local first = tonumber(redis.call('HGET', key, 'first_login') or '0')
if first == 0 or login_ms < first then redis.call('HSET', key, 'first_login', ARGV[1]) end
local last = tonumber(redis.call('HGET', key, 'last_login') or '0')
if login_ms > last then redis.call('HSET', key, 'last_login', ARGV[1]) end
for i = 4, #ARGV, 2 do
  local current = redis.call('HGET', key, ARGV[i])
  local keep = false
  if current then
    local stored = string.match(current, '^([^|]+)|')
    if stored and stored >= version then keep = true end
  end
  if not keep then redis.call('HSET', key, ARGV[i], version .. '|' .. ARGV[i + 1]) end
end
redis.call('EXPIRE', key, tonumber(ARGV[2]))
return 1
"""


# Drop each user's overlay once the database holds its newest login: KEYS are
# overlays, ARGV the matching committed last-login times. An overlay with a
# newer login (it arrived while the batch was written) stays whole until a
# later batch commits that login; /me compares versions, so older fields left
# in it are harmless.
_TRIM = """
for k = 1, #KEYS do
  local last = tonumber(redis.call('HGET', KEYS[k], 'last_login') or '0')
  if last <= tonumber(ARGV[k]) then redis.call('DEL', KEYS[k]) end
end
return 1
"""


def pending_key(keys, app_id: str, user_id: str) -> str:
    return keys.app(app_id, "pending", user_id)


class PendingMerges:
    def __init__(self, client, keys) -> None:
        self.redis = client
        self.keys = keys
        self._merge = client.register_script(_MERGE)
        self._trim = client.register_script(_TRIM)

    def record(
        self,
        app_id: str,
        user_id: str,
        login_at_ms: int,
        version: str,
        custom: dict[str, Any] | None,
        profile: dict[str, Any] | None,
        client=None,
    ) -> None:
        args: list[Any] = [login_at_ms, PENDING_TTL, version]
        for prefix, data in (("c.", custom), ("p.", profile)):
            for name, value in (data or {}).items():
                args += [prefix + name, json.dumps(value, separators=(",", ":"))]
        self._merge(keys=[pending_key(self.keys, app_id, user_id)], args=args, client=client)

    def trim(self, app_id: str, committed: list[tuple[str, int]], client=None) -> None:
        """Forget what the database now holds, without racing a newer login.

        ``committed`` lists ``(user_id, last_login_ms)`` of one app's users, as
        just committed: one script call for all of them (one hash slot).
        """
        if committed:
            self._trim(keys=[pending_key(self.keys, app_id, u) for u, _ in committed],
                       args=[last for _, last in committed], client=client)

    def read(self, app_id: str, user_id: str) -> dict[str, Any]:
        """``{"custom": {...}, "profile": {...}, "first_login": ms, "last_login": ms}``."""
        return parse_overlay(self.redis.hgetall(pending_key(self.keys, app_id, user_id)))


def parse_overlay(raw: dict[bytes, bytes]) -> dict[str, Any]:
    """The overlay from its hash's fields (``/me`` reads the hash in a pipeline)."""
    overlay: dict[str, Any] = {"custom": {}, "profile": {}, "custom_versions": {},
                               "profile_versions": {}}
    for field_, value in raw.items():
        name, text = field_.decode(), value.decode()
        if name in ("first_login", "last_login"):
            overlay[name] = int(text)
            continue
        version, _, payload = text.partition("|")
        target = "custom" if name.startswith("c.") else "profile"
        overlay[target][name[2:]] = json.loads(payload)
        overlay[target + "_versions"][name[2:]] = version
    return overlay


def includeme(config) -> None:
    registry = config.registry
    registry["saas.pending"] = PendingMerges(registry["saas.redis"], registry["saas.redis_keys"])
    config.add_request_method(lambda r: r.registry["saas.pending"], "pending_merges", reify=True)
