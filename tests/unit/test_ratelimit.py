"""Rate limiter contract, run on both backends: real Redis and the embedded
development store (fakeredis with Lua). Time is passed in, never slept."""

from __future__ import annotations

import threading
import uuid

import pytest
import redis
from pyramid.request import Request

from saas.client_ip import client_ip, proxy_list
from saas.errors import ApiError, Reason
from saas.ratelimit import (
    DEFAULT_LIMITS,
    PENALTY_CAP,
    Decision,
    Limit,
    RateLimiter,
    enforce,
    limits_from_settings,
    parse_rate,
)
from saas.redis import Keys

APP = "app00001"
OTHER = "app00002"
T0 = 1_700_000_000.0
LOGIN_IP = Limit("login_ip", 10 / 60, 20)  # 10/minute, burst 20
IP_LIMIT = Limit("login_ip", 1.0, 5)
APP_LIMIT = Limit("login_app", 0.5, 3)


@pytest.fixture
def limiter(backend):
    return RateLimiter(*backend)


def tokens(limiter: RateLimiter, app_id: str | None, limit: Limit, disc: str) -> float:
    return float(limiter.client.hget(limiter.key(app_id, limit.name, disc), "t"))


def drain(limiter, app_id, buckets, now=T0) -> int:
    allowed = 0
    while limiter.check(app_id, buckets, now=now).allowed:
        allowed += 1
    return allowed


def test_burst_then_retry_after_one_refill(limiter):
    buckets = [(LOGIN_IP, "203.0.113.9")]
    assert drain(limiter, APP, buckets) == 20
    refused = limiter.check(APP, buckets, now=T0)
    assert refused == Decision(False, 6, "login_ip")  # 1 / (10/60 s) = 6 s
    assert limiter.check(APP, buckets, now=T0 + 5.9).allowed is False
    assert limiter.check(APP, buckets, now=T0 + 6).allowed is True
    assert limiter.check(APP, buckets, now=T0 + 6) == Decision(False, 6, "login_ip")


def test_fractional_waits_round_up(limiter):
    buckets = [(Limit("slow", 0.3, 1), "x")]
    assert limiter.check(APP, buckets, now=T0).allowed
    assert limiter.check(APP, buckets, now=T0).retry_after == 4  # 3.33 s
    assert limiter.check(APP, buckets, now=T0 + 3).retry_after == 1  # 0.33 s: never 0


def test_empty_app_bucket_refuses_a_fresh_ip(limiter):
    assert drain(limiter, APP, [(IP_LIMIT, "ip1"), (APP_LIMIT, "")]) == 3
    refused = limiter.check(APP, [(IP_LIMIT, "ip2"), (APP_LIMIT, "")], now=T0)
    assert refused == Decision(False, 2, "login_app")
    # All or nothing: neither refused call charged its IP bucket.
    assert tokens(limiter, APP, IP_LIMIT, "ip1") == 2
    assert not limiter.client.exists(limiter.key(APP, "login_ip", "ip2"))


def test_empty_ip_bucket_leaves_other_ips_and_the_app_bucket_alone(limiter):
    app_limit = Limit("login_app", 0.5, 10)
    assert drain(limiter, APP, [(IP_LIMIT, "ip1"), (app_limit, "")]) == 5
    assert tokens(limiter, APP, app_limit, "") == 5
    assert limiter.check(APP, [(IP_LIMIT, "ip1"), (app_limit, "")], now=T0).limit == "login_ip"
    assert tokens(limiter, APP, app_limit, "") == 5  # the refusal cost nothing
    assert limiter.check(APP, [(IP_LIMIT, "ip2"), (app_limit, "")], now=T0).allowed
    assert tokens(limiter, APP, app_limit, "") == 4
    assert tokens(limiter, APP, IP_LIMIT, "ip2") == 4


def test_refusal_names_the_limit_with_the_longest_wait(limiter):
    buckets = [(IP_LIMIT, "ip1"), (Limit("login_app", 0.5, 5), "")]
    assert drain(limiter, APP, buckets) == 5
    assert limiter.check(APP, buckets, now=T0) == Decision(False, 2, "login_app")


def test_another_app_is_unaffected_by_a_flood(limiter):
    buckets = [(IP_LIMIT, "ip1"), (APP_LIMIT, "")]
    for ip in range(50):
        limiter.check(APP, [(IP_LIMIT, f"ip{ip}"), (APP_LIMIT, "")], now=T0)
    assert limiter.check(APP, buckets, now=T0).allowed is False
    assert drain(limiter, OTHER, buckets) == 3
    assert tokens(limiter, OTHER, IP_LIMIT, "ip1") == 2
    assert limiter.key(APP, "login_app").split(":")[-4] == "{" + APP + "}"


def test_dashboard_buckets_share_one_hash_tag(limiter, backend):
    signin = [(DEFAULT_LIMITS["signin_ip"], "198.51.100.7"),
              (DEFAULT_LIMITS["signin_email"], "ann@example.com")]
    assert drain(limiter, None, signin) == 10  # both hold 10
    keys = [limiter.key(None, limit.name, disc) for limit, disc in signin]
    assert all(key.startswith(backend[1].prefix + ":{rl}:") for key in keys)
    assert not any("ann@" in key for key in keys)


def test_disabled_allows_everything_and_never_calls_redis(backend):
    client, keys = backend
    unreachable = redis.Redis(port=1, socket_connect_timeout=0.1)
    for off in (RateLimiter(unreachable, keys, enabled=False),
                RateLimiter(client, keys, enabled=False)):
        for _ in range(50):
            assert off.check(APP, [(Limit("tiny", 0.001, 1), "ip")], now=T0).allowed
            assert off.penalty(None, "signin", "ann", now=T0).allowed
            assert off.record_failure(None, "signin", "ann") == 0
        off.reset(None, "signin", "ann")
    assert list(client.scan_iter(match=keys.prefix + ":*")) == []


def test_idle_buckets_expire(limiter):
    limits = (IP_LIMIT, APP_LIMIT, LOGIN_IP, DEFAULT_LIMITS["login_app"])
    buckets = [(Limit(f"l{i}", lim.rate, lim.burst), "ip1") for i, lim in enumerate(limits)]
    limiter.check(APP, buckets, now=T0)
    for i, limit in enumerate(limits):
        ttl = limiter.client.pttl(limiter.key(APP, f"l{i}", "ip1"))
        assert 0 < ttl <= (limit.burst / limit.rate + 1.5) * 1000


def test_cost_is_validated_and_charged(limiter):
    assert limiter.check(APP, [(IP_LIMIT, "ip1")], now=T0, cost=4).allowed
    assert tokens(limiter, APP, IP_LIMIT, "ip1") == 1
    with pytest.raises(ValueError):
        limiter.check(APP, [(IP_LIMIT, "ip1")], now=T0, cost=6)
    assert limiter.check(APP, [], now=T0).allowed


def test_concurrent_requests_get_exactly_the_burst(redis_client, redis_prefix):
    limiter = RateLimiter(redis_client, Keys(f"{redis_prefix}:rl:{uuid.uuid4().hex[:8]}"))
    bucket = [(Limit("login_ip", 0.001, 10), "203.0.113.1")]
    results, barrier = [], threading.Barrier(20)

    def hit():
        barrier.wait()
        results.append(limiter.check(APP, bucket).allowed)

    threads = [threading.Thread(target=hit) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 10 and results.count(False) == 10


def test_penalty_waits_double_and_are_capped(limiter):
    who, now, waits = "ann@example.com", T0, []
    for _ in range(14):
        assert limiter.penalty(None, "signin", who, now=now).allowed
        limiter.record_failure(None, "signin", who)
        refused = limiter.penalty(None, "signin", who, now=now)
        assert refused.limit == "signin" and not refused.allowed
        waits.append(refused.retry_after)
        assert not limiter.penalty(None, "signin", who, now=now + refused.retry_after - 0.5).allowed
        now += refused.retry_after
    assert waits[:6] == [1, 2, 4, 8, 16, 32]
    assert waits[-3:] == [PENALTY_CAP] * 3
    assert limiter.failures(None, "signin", who) == 14
    # No permanent lock-out: once the cap has elapsed, the next attempt goes ahead.
    assert limiter.penalty(None, "signin", who, now=now).allowed


def test_penalty_reset_and_independent_keys(limiter):
    for _ in range(3):
        limiter.penalty(APP, "signin", "ann", now=T0)
        limiter.record_failure(APP, "signin", "ann")
    assert limiter.failures(APP, "signin", "ann") == 3
    assert limiter.penalty(APP, "signin", "bob", now=T0).allowed
    assert limiter.penalty(OTHER, "signin", "ann", now=T0).allowed
    limiter.reset(APP, "signin", "ann")
    assert limiter.failures(APP, "signin", "ann") == 0
    assert limiter.penalty(APP, "signin", "ann", now=T0).allowed


def test_penalty_lets_one_of_concurrent_attempts_through(limiter):
    results = [limiter.penalty(None, "signin", "ann", now=T0).allowed for _ in range(5)]
    assert results == [True, False, False, False, False]
    key = limiter.key(None, "penalty:signin", "ann")
    assert 0 < limiter.client.pttl(key) <= 1000
    limiter.record_failure(None, "signin", "ann", window=60)
    assert 59_000 < limiter.client.pttl(key) <= 60_000


def test_limits_from_settings():
    limits = limits_from_settings({
        "saas.ratelimit.login_ip.rate": "30/minute",
        "saas.ratelimit.login_ip.burst": "40",
        "saas.ratelimit.login_app.rate": 50.0,
    })
    assert limits["login_ip"] == Limit("login_ip", 0.5, 40)
    assert limits["login_app"] == Limit("login_app", 50.0, 300)
    assert limits["signin_email"] == DEFAULT_LIMITS["signin_email"]
    assert limits_from_settings({}) == DEFAULT_LIMITS
    assert parse_rate("5/hours") == 5 / 3600 and parse_rate("2/s") == 2
    assert parse_rate("10/minutes") == parse_rate("10/min") == 10 / 60
    for bad in ("0", "-1", "nan", "3/fortnight", "10/ms", "x/s"):
        with pytest.raises(ValueError):
            parse_rate(bad)
    with pytest.raises(ValueError):
        limits_from_settings({"saas.ratelimit.login_ip.burst": "0"})


def test_enforce_answers_429_with_retry_after():
    enforce(None, Decision(True, 0, None))
    with pytest.raises(ApiError) as info:
        enforce(None, Decision(False, 7, "login_ip"))
    error = info.value
    assert (error.status, error.error, error.reason) == (429, "temporarily_unavailable",
                                                         Reason.RATE_LIMITED)
    assert error.headers == {"Retry-After": "7"}


def _request(remote: str | None, forwarded: str | None = None) -> Request:
    environ = {} if remote is None else {"REMOTE_ADDR": remote}
    if forwarded is not None:
        environ["HTTP_X_FORWARDED_FOR"] = forwarded
    return Request.blank("/", environ=environ)


def test_client_ip_groups_ipv6_by_64_and_keeps_ipv4():
    trusted = ("127.0.0.1", "::1")
    assert client_ip(_request("203.0.113.9"), trusted) == "203.0.113.9"
    assert client_ip(_request("2001:db8:1:2::1"), trusted) == "2001:db8:1:2::/64"
    assert client_ip(_request("2001:db8:1:2:ffff::9"), trusted) == "2001:db8:1:2::/64"
    assert client_ip(_request("2001:db8:1:3::1"), trusted) == "2001:db8:1:3::/64"
    assert client_ip(_request("::ffff:198.51.100.4"), trusted) == "198.51.100.4"
    assert client_ip(_request(None), trusted) == "unknown"


def test_client_ip_trusts_forwarded_for_only_from_trusted_proxies():
    trusted = ("127.0.0.1", "10.0.0.0/8")
    # A client talking to us directly cannot choose its bucket.
    assert client_ip(_request("203.0.113.9", "1.2.3.4"), trusted) == "203.0.113.9"
    # Behind the proxy: the rightmost untrusted hop, not the spoofable leftmost.
    assert client_ip(_request("127.0.0.1", "1.2.3.4, 203.0.113.9"), trusted) == "203.0.113.9"
    assert client_ip(
        _request("127.0.0.1", "203.0.113.9:4711, 10.1.2.3"), trusted) == "203.0.113.9"
    assert client_ip(_request("127.0.0.1", "[2001:db8::7]:443"), trusted) == "2001:db8::/64"
    assert client_ip(_request("127.0.0.1"), trusted) == "127.0.0.1"
    assert client_ip(_request("", "203.0.113.9"), trusted) == "203.0.113.9"  # unix socket
    assert client_ip(_request("127.0.0.1", "1.2.3.4, 203.0.113.9"), ("*",)) == "1.2.3.4"
    # The default comes from the registry's settings (saas.trusted_proxies).
    request = _request("127.0.0.1", "203.0.113.9")
    assert client_ip(request) == "203.0.113.9"
    request.registry = type("Registry", (), {"settings": {"saas.trusted_proxies": []}})()
    assert client_ip(request) == "127.0.0.1"
    # Garbage from a trusted proxy falls back to that proxy, never to a new bucket.
    assert client_ip(_request("127.0.0.1", "evil, not-an-ip"), trusted) == "127.0.0.1"


def test_proxy_list_is_validated_at_startup():
    assert proxy_list("127.0.0.1, 10.0.0.0/8 ::1") == ("127.0.0.1", "10.0.0.0/8", "::1")
    assert proxy_list(["*"]) == ("*",)
    with pytest.raises(ValueError):
        proxy_list("127.0.0.1, proxy.internal")
