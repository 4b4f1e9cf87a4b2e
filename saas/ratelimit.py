"""Rate limits in Redis: token buckets charged atomically, and a progressive penalty.

* :meth:`RateLimiter.check` refills and charges several buckets (per app + IP and
  per app; dashboard per IP and per email) in one Lua call, all or none: a refused
  request costs nothing, so one IP's refused flood cannot drain the app's bucket.
* Per-app buckets live under the app's cluster hash tag, so one tenant's flood
  only ever empties that tenant's buckets. Dashboard buckets share the ``{rl}``
  tag so a multi-bucket check stays one-slot on a cluster.
* :meth:`RateLimiter.penalty` and friends make waits grow 1, 2, 4 … seconds with
  consecutive failures, capped (15 minutes by default): slow, never locked out.

Discriminators (IPs, emails) are hashed into keys: short, fixed length, and no
personal data or attacker-chosen bytes in key names. Callers normalise emails
(``saas.tenants.emails``).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pyramid.settings import asbool

from saas.errors import ApiError, Reason
from saas.redis import Keys

_EPSILON = 1e-9  # float refill arithmetic must not refuse a request at exactly the due time
PENALTY_CAP = 15 * 60
PENALTY_WINDOW = 3600


@dataclass(frozen=True)
class Limit:
    name: str  # e.g. "login_ip", "login_app"
    rate: float  # tokens per second refilled
    burst: int  # bucket size

    def __post_init__(self) -> None:
        if not (self.rate > 0 and self.burst >= 1):
            raise ValueError(f"rate limit {self.name}: rate must be > 0 and burst >= 1")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int  # whole seconds (>= 1) until allowed; 0 when allowed
    limit: str | None  # the name of the limit that refused


ALLOWED = Decision(True, 0, None)

#: Defaults, each overridable by ``saas.ratelimit.<name>.rate`` / ``.burst``:
#: login_ip     10/minute, burst 20  - per app + client IP on every login endpoint;
#: login_app    100/second, burst 300 - per app overall (caps one tenant's load);
#: signin_ip    5/minute, burst 10   - dashboard sign-in per client IP;
#: signup_ip    5/hour, burst 5      - dashboard sign-ups per client IP (each costs an argon2 hash);
#: signup_all   300/hour, burst 60   - dashboard sign-ups overall;
#: signin_email 3/minute, burst 10   - dashboard sign-in FAILURES per (normalised) email:
#:                                     once empty, sign-in for it needs a proof of work.
#: account_mail_ip 20/hour, burst 10 - reset requests per client IP (429 when spent);
#: account_mail_to 5/hour, burst 3   - account mail per address or member (beyond
#:                                      it a reset answers the same, sending nothing).
DEFAULT_LIMITS: dict[str, Limit] = {
    # Generous enough for an office behind one NAT address signing in at 9:00.
    "login_ip": Limit("login_ip", 60 / 60, 120),
    "login_app": Limit("login_app", 100.0, 300),
    "signin_ip": Limit("signin_ip", 5 / 60, 10),
    "signin_email": Limit("signin_email", 3 / 60, 10),
    "signup_ip": Limit("signup_ip", 5 / 3600, 5),
    "signup_all": Limit("signup_all", 300 / 3600, 60),
    "account_mail_ip": Limit("account_mail_ip", 20 / 3600, 10),
    "account_mail_to": Limit("account_mail_to", 5 / 3600, 3),
}

# KEYS: a hash per bucket {t = tokens, ts = refill time}. ARGV: now (s), cost, eps,
# then rate and burst per key. {1}: all charged; else {0, longest wait, its index}
# and nothing written. Idle buckets expire once they would be full again.
_BUCKETS = """
local now, cost, eps = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tokens, stamps, wait, slowest = {}, {}, 0, 0
for i = 1, #KEYS do
  local rate, burst = tonumber(ARGV[2 + 2 * i]), tonumber(ARGV[3 + 2 * i])
  local saved = redis.call('HMGET', KEYS[i], 't', 'ts')
  local t, ts = tonumber(saved[1]), tonumber(saved[2])
  if t == nil or ts == nil then t, ts = burst, now end
  tokens[i] = math.min(burst, t + math.max(0, now - ts) * rate)
  stamps[i] = math.max(ts, now)
  if tokens[i] + eps < cost and (cost - tokens[i]) / rate > wait then
    wait, slowest = (cost - tokens[i]) / rate, i
  end
end
if slowest > 0 then return {0, string.format('%.17g', wait), slowest} end
for i = 1, #KEYS do
  local rate, burst = tonumber(ARGV[2 + 2 * i]), tonumber(ARGV[3 + 2 * i])
  redis.call('HSET', KEYS[i], 't', string.format('%.17g', tokens[i] - cost),
             'ts', string.format('%.17g', stamps[i]))
  redis.call('PEXPIRE', KEYS[i], math.ceil(burst / rate * 1000) + 1000)
end
return {1}
"""

# KEYS[1] penalty hash {n = consecutive failures, u = next attempt allowed at}.
# ARGV now, cap, eps. An allowed attempt moves u to now + min(cap, 2^n) as if it
# will fail, so concurrent attempts cannot all slip through before one records.
_ATTEMPT = """
local now, cap, eps = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local saved = redis.call('HMGET', KEYS[1], 'n', 'u')
local n, u = tonumber(saved[1]) or 0, tonumber(saved[2]) or 0
if now + eps < u then return {0, string.format('%.17g', u - now)} end
local wait = math.min(cap, 2 ^ n)
redis.call('HSET', KEYS[1], 'n', n, 'u', string.format('%.17g', now + wait))
local ms = math.ceil(wait * 1000)
if redis.call('PTTL', KEYS[1]) < ms then redis.call('PEXPIRE', KEYS[1], ms) end
return {1}
"""

# KEYS[1] penalty hash; ARGV[1] window (ms): failures are forgotten after that
# long without a new one. The TTL only grows, so it never cuts a wait short.
_FAILURE = """
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then redis.call('PEXPIRE', KEYS[1], ms) end
return n
"""

_UNITS = {unit: seconds for names, seconds in (
    (("s", "sec", "secs", "second", "seconds"), 1), (("m", "min", "mins", "minute", "minutes"), 60),
    (("h", "hour", "hours"), 3600), (("d", "day", "days"), 86400)) for unit in names}


def parse_rate(value: Any) -> float:
    """Tokens per second from ``0.5``, ``"100/s"``, ``"10/minute"`` or ``"5/hour"``."""
    if isinstance(value, str) and "/" in value:
        count, _, unit = value.partition("/")
        seconds = _UNITS.get(unit.strip().lower())
        if seconds is None:
            raise ValueError(f"unknown rate unit {unit.strip()!r}")
        rate = float(count) / seconds
    else:
        rate = float(value)
    if not rate > 0 or math.isinf(rate):
        raise ValueError("rate must be positive")
    return rate


def limits_from_settings(settings: Mapping[str, Any]) -> dict[str, Limit]:
    """The limits of :data:`DEFAULT_LIMITS`, overridden by ``saas.ratelimit.<name>.*``."""
    limits = {}
    for name, default in DEFAULT_LIMITS.items():
        rate = settings.get(f"saas.ratelimit.{name}.rate")
        burst = settings.get(f"saas.ratelimit.{name}.burst")
        limits[name] = Limit(
            name,
            default.rate if rate in (None, "") else parse_rate(rate),
            default.burst if burst in (None, "") else int(burst),
        )
    return limits


def _seconds(wait: bytes | str) -> int:
    """Whole seconds to wait, never 0 (float noise must not round a wait up)."""
    return max(1, math.ceil(float(wait) - 1e-6))


# One token back per bucket, capped at the burst (ARGV[i] for KEYS[i]).
_REFUND = """
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    local t = tonumber(redis.call('HGET', KEYS[i], 't')) or 0
    redis.call('HSET', KEYS[i], 't', string.format('%.17g', math.min(tonumber(ARGV[i]), t + 1)))
  end
end
return 1
"""


class RateLimiter:
    """Token buckets and failure penalties in Redis; ``enabled=False`` never calls Redis."""

    def __init__(self, client, keys: Keys, *, enabled: bool = True) -> None:
        self.client = client
        self.keys = keys
        self.enabled = enabled
        self._buckets = client.register_script(_BUCKETS)  # no Redis call until used
        self._attempt = client.register_script(_ATTEMPT)
        self._failure = client.register_script(_FAILURE)
        self._refund = client.register_script(_REFUND)

    def key(self, app_id: str | None, name: str, discriminator: str = "") -> str:
        """The Redis key of one bucket (or, with ``name="penalty:…"``, one penalty)."""
        part = hashlib.sha256(discriminator.encode()).hexdigest()[:24] if discriminator else "all"
        if app_id is None:
            return self.keys.global_("{rl}", name, part)
        return self.keys.app(app_id, "rl", name, part)

    def check(self, app_id: str | None, buckets: list[tuple[Limit, str]],
              now: float | None = None, cost: int = 1) -> Decision:
        """Charge ``cost`` to every bucket, or to none and name the slowest to refill."""
        if not self.enabled or not buckets:
            return ALLOWED
        keys, args = self._charge(app_id, buckets, now, cost)
        return self.decision(self._buckets(keys=keys, args=args), buckets)

    def queue_check(self, pipe, app_id: str | None, buckets: list[tuple[Limit, str]],
                    now: float | None = None, cost: int = 1) -> bool:
        """``check`` queued in ``pipe`` (its reply goes to ``decision``); False,
        queueing nothing, when limits are off."""
        if not self.enabled or not buckets:
            return False
        keys, args = self._charge(app_id, buckets, now, cost)
        self._buckets(keys=keys, args=args, client=pipe)
        return True

    def _charge(self, app_id: str | None, buckets: list[tuple[Limit, str]],
                now: float | None, cost: int) -> tuple[list[str], list[Any]]:
        if cost < 1 or any(cost > limit.burst for limit, _ in buckets):
            raise ValueError("cost must be between 1 and every bucket's burst")
        args: list[Any] = [time.time() if now is None else now, cost, _EPSILON]
        for limit, _ in buckets:
            args += [limit.rate, limit.burst]
        return [self.key(app_id, limit.name, disc) for limit, disc in buckets], args

    @staticmethod
    def decision(result: list, buckets: list[tuple[Limit, str]]) -> Decision:
        """The reply of the buckets' script as a Decision."""
        if int(result[0]) == 1:
            return ALLOWED
        return Decision(False, _seconds(result[1]), buckets[int(result[2]) - 1][0].name)

    def available(self, app_id: str | None, limit: Limit, discriminator: str,
                  now: float | None = None) -> float:
        """The tokens a bucket holds now, read without charging it."""
        if not self.enabled:
            return float(limit.burst)
        saved = self.client.hmget(self.key(app_id, limit.name, discriminator), "t", "ts")
        if saved[0] is None or saved[1] is None:
            return float(limit.burst)
        now = time.time() if now is None else now
        refilled = float(saved[0]) + max(0.0, now - float(saved[1])) * limit.rate
        return min(float(limit.burst), refilled)

    def penalty(self, app_id: str | None, name: str, who: str,
                now: float | None = None, cap: float = PENALTY_CAP) -> Decision:
        """May an attempt go ahead? Call before each attempt, then record_failure or reset.

        After n consecutive failures the next attempt waits min(cap, 2^(n-1)) s
        from the previous one: never a permanent lock-out.
        """
        if not self.enabled:
            return ALLOWED
        args = [time.time() if now is None else now, cap, _EPSILON]
        result = self._attempt(keys=[self.key(app_id, "penalty:" + name, who)], args=args)
        return ALLOWED if int(result[0]) == 1 else Decision(False, _seconds(result[1]), name)

    def record_failure(
        self, app_id: str | None, name: str, who: str, window: float = PENALTY_WINDOW
    ) -> int:
        """Count a failure; the count is forgotten after ``window`` seconds without one."""
        if not self.enabled:
            return 0
        key = self.key(app_id, "penalty:" + name, who)
        return int(self._failure(keys=[key], args=[math.ceil(window * 1000)]))

    def failures(self, app_id: str | None, name: str, who: str) -> int:
        """Consecutive failures so far (for logs or a UI hint)."""
        if not self.enabled:
            return 0
        return int(self.client.hget(self.key(app_id, "penalty:" + name, who), "n") or 0)

    def refund(self, app_id: str | None, buckets: list[tuple[Limit, str]]) -> None:
        """Give back one token to each bucket (never above its burst); a bucket
        that expired meanwhile is full already."""
        if not self.enabled:
            return
        self._refund(keys=[self.key(app_id, limit.name, disc) for limit, disc in buckets],
                     args=[limit.burst for limit, _ in buckets])

    def reset(self, app_id: str | None, name: str, who: str) -> None:
        """Forget the failures (after a success)."""
        if self.enabled:
            self.client.delete(self.key(app_id, "penalty:" + name, who))


def enforce(request, decision: Decision) -> None:
    """Turn a refusal into the contract's 429 (docs/protocol.md §7) with ``Retry-After``."""
    if decision.allowed:
        return
    raise ApiError(
        429, "temporarily_unavailable", Reason.RATE_LIMITED, "too many requests, retry later",
        headers={"Retry-After": str(max(1, decision.retry_after))},
    )


def includeme(config) -> None:
    """``request.rate_limiter`` and ``registry["saas.rate_limits"]`` from settings."""
    settings = config.registry.settings
    config.registry["saas.rate_limits"] = limits_from_settings(settings)
    config.registry["saas.rate_limiter"] = RateLimiter(
        config.registry["saas.redis"], config.registry["saas.redis_keys"],
        enabled=asbool(settings.get("saas.ratelimit.enabled", True)),
    )
    config.add_request_method(
        lambda r: r.registry["saas.rate_limiter"], "rate_limiter", reify=True
    )
