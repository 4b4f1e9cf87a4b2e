"""Read-your-writes and the ``/me`` cache: each end user's login merges in Redis.

Per end user, a Redis hash ``{prefix}:{app_id}:pending:{user_id}`` keeps, for
each top-level field of ``custom`` (``c.<name>``) and ``profile``
(``p.<name>``), the newest value as ``<version>|<json>`` (``saas.sync.versions``,
fixed-width text that orders by login time, then event id). A Lua
script applies the same last-writer-wins rule as the database merge, so the
overlay and the stored row agree whatever the order of logins.

The overlay is not trimmed when the sync commits: it lives ``PENDING_TTL``
after the user's last login. The first ``/me`` that finds it without the
``complete`` mark reads the stored row once and merges it in (``seed``, same
rule); from then on ``/me`` is answered from Redis alone — during a PostgreSQL
outage too. Seeding races nothing: whatever the sync commits meanwhile came
from logins already recorded here.
"""

from __future__ import annotations

import json
from typing import Any

PENDING_TTL = 7 * 24 * 3600

# One script for logins (``record``) and for merging the stored row in
# (``seed``). ARGV: TTL, earliest login ms (or ''), latest login ms (or ''),
# '1' to mark the overlay complete and return it (else ''), then
# name/version/json triples. A field is replaced only by a greater version.
_MERGE = """
local key = KEYS[1]
local first_login = tonumber(ARGV[2])
if first_login then
  local first = tonumber(redis.call('HGET', key, 'first_login') or '0')
  if first == 0 or first_login < first then redis.call('HSET', key, 'first_login', ARGV[2]) end
end
local last_login = tonumber(ARGV[3])
if last_login then
  local last = tonumber(redis.call('HGET', key, 'last_login') or '0')
  if last_login > last then redis.call('HSET', key, 'last_login', ARGV[3]) end
end
for i = 5, #ARGV, 3 do
  local version = ARGV[i + 1]
  local current = redis.call('HGET', key, ARGV[i])
  local keep = false
  if current then
    local stored = string.match(current, '^([^|]+)|')
    if stored and stored >= version then keep = true end
  end
  if not keep then redis.call('HSET', key, ARGV[i], version .. '|' .. ARGV[i + 2]) end
end
redis.call('EXPIRE', key, tonumber(ARGV[1]))
if ARGV[4] == '1' then
  redis.call('HSET', key, 'complete', '1')
  return redis.call('HGETALL', key)
end
return 1
"""


def _triples(prefix: str, data: dict[str, Any] | None,
             versions: str | dict[str, str]) -> list[Any]:
    """Script arguments for ``data``'s fields: one version for all, or one each."""
    args: list[Any] = []
    for name, value in (data or {}).items():
        version = versions if isinstance(versions, str) else versions.get(name, "")
        args += [prefix + name, version, json.dumps(value, separators=(",", ":"))]
    return args


def pending_key(keys, app_id: str, user_id: str) -> str:
    return keys.app(app_id, "pending", user_id)


class PendingMerges:
    def __init__(self, client, keys) -> None:
        self.redis = client
        self.keys = keys
        self._merge = client.register_script(_MERGE)

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
        args: list[Any] = [PENDING_TTL, login_at_ms, login_at_ms, ""]
        for prefix, data in (("c.", custom), ("p.", profile)):
            args += _triples(prefix, data, version)
        self._merge(keys=[pending_key(self.keys, app_id, user_id)], args=args, client=client)

    def seed(self, app_id: str, user_id: str,
             stored: dict[str, Any] | None) -> dict[str, Any]:
        """Merge the stored row (or its absence: ``None``), mark the overlay
        complete, and return it as :meth:`read` does (one round trip).

        ``stored`` has ``custom``, ``profile``, their ``*_versions``, and
        ``created_ms`` / ``last_login_ms``.
        """
        args: list[Any] = [PENDING_TTL, "", "", "1"]
        if stored is not None:
            args[1:3] = [stored["created_ms"] or "", stored["last_login_ms"] or ""]
            for prefix, target in (("c.", "custom"), ("p.", "profile")):
                args += _triples(prefix, stored[target], stored[target + "_versions"])
        flat = self._merge(keys=[pending_key(self.keys, app_id, user_id)], args=args)
        return parse_overlay(dict(zip(flat[::2], flat[1::2], strict=True)))

    def read(self, app_id: str, user_id: str) -> dict[str, Any]:
        """``{"custom", "profile", "custom_versions", "profile_versions", "complete"}``,
        plus ``first_login`` / ``last_login`` (ms) when known. ``complete``: the
        stored row is merged in, so the overlay is the whole user."""
        return parse_overlay(self.redis.hgetall(pending_key(self.keys, app_id, user_id)))


def parse_overlay(raw: dict[bytes, bytes]) -> dict[str, Any]:
    """The overlay from its hash as :meth:`PendingMerges.read` returns it, for a
    caller that read the hash in a pipeline (``/me``, with the session check)."""
    overlay: dict[str, Any] = {"custom": {}, "profile": {}, "custom_versions": {},
                               "profile_versions": {}, "complete": False}
    for field_, value in raw.items():
        name, text = field_.decode(), value.decode()
        if name in ("first_login", "last_login"):
            overlay[name] = int(text)
            continue
        if name == "complete":
            overlay["complete"] = True
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
