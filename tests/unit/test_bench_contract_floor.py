"""``bench/contract_floor.py``: each endpoint's contract minimum sends exactly
the Redis round trips and commands ``MINIMUM`` lists (docs/performance.md),
counted by a Redis of the test's own (``INFO commandstats`` and
``total_reads_processed``, so no other client's traffic is in the delta), and
each step really does what the contract asks of it (single use, rotation)."""

from __future__ import annotations

import time

import pytest

from bench.contract_floor import MINIMUM, ContractFloor, _sha, measure_floor
from tests.servers import private_redis


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with private_redis(tmp_path_factory.mktemp("contract-floor"), appendonly="no") as server:
        yield server


@pytest.fixture
def floor(server):
    found = ContractFloor(server.url, "app_floor", b"k" * 32, iterations=5)
    yield found
    found.cleanup()


def _counters(admin) -> tuple[int, dict[str, int]]:
    reads = admin.info("stats")["total_reads_processed"]
    calls = {name.removeprefix("cmdstat_"): row["calls"]
             for name, row in admin.info("commandstats").items()}
    return reads, calls


def _delta(admin, step) -> tuple[int, dict[str, int]]:
    """Round trips and commands of ``step`` alone: the counters read around it
    on another connection, less the counting's own INFO (one read each)."""
    reads0, calls0 = _counters(admin)
    step()
    reads1, calls1 = _counters(admin)
    commands = {name: calls1[name] - calls0.get(name, 0) for name in calls1}
    return reads1 - reads0 - 2, {k: v for k, v in commands.items() if v and k != "info"}


def _redirect_login(floor: ContractFloor, oidc: bool = False) -> None:
    floor.tenant_tokens.append(floor.tenant_token())
    floor.authorize(oidc)
    floor.callback()
    floor.exchange()


def test_each_endpoint_sends_exactly_its_contract_minimum(floor, server):
    admin = server.client()
    _redirect_login(floor)  # connections open, scripts loaded
    floor.refresh()
    _redirect_login(floor)
    floor.tenant_tokens.append(floor.tenant_token())
    sid = floor.refresh_token.partition(".")[0]
    floor.access_token = floor.es256_sign(floor.access_claims(sid))

    def call_tenant(state: str, request_token: str) -> str:
        return floor.tenant_token()  # what the tenant endpoint answers (its own work)

    steps = {
        "authorize": floor.authorize,
        "callback": floor.callback,
        "exchange": floor.exchange,
        "refresh": floor.refresh,
        "me": floor.me,
        "custom_token": lambda: floor.custom_token(floor.custom_token_request()),
        "inapp": lambda: floor.inapp(call_tenant),
    }
    for name, step in steps.items():
        assert _delta(admin, step) == MINIMUM[name], name

    floor.tenant_tokens.append(floor.tenant_token())
    floor.authorize(oidc=True)
    floor.callback()
    assert _delta(admin, floor.exchange) == MINIMUM["exchange_oidc"]


def test_the_minimum_keeps_the_contracts_promises(floor):
    """Single-use state, code and tokens; rotation; a retry within the grace
    gets the same successor, a later reuse revokes the session."""
    floor.tenant_tokens.append(floor.tenant_token())
    floor.authorize()
    state = floor.state
    floor.callback()
    floor.state = state
    floor.tenant_tokens.append(floor.tenant_token())
    with pytest.raises(ValueError, match="state_unknown"):
        floor.callback()  # the state was consumed
    code = floor.code
    answer = floor.exchange()
    assert floor.es256_verify(answer["access_token"])["aud"] == "app_floor"
    floor.code = code
    with pytest.raises(ValueError, match="code_invalid"):
        floor.exchange()

    first = floor.refresh_token
    second = floor.refresh()
    floor.refresh_token = first
    assert floor.refresh() == second  # a retry within 10 s: the same successor
    floor.refresh_token = second
    third = floor.refresh()
    # Past the grace, presenting the rotated-out token revokes the session.
    assert floor.rotate(keys=[floor.key("sess", second.partition(".")[0])],
                        args=[_sha(second), _sha("any"), int(time.time() * 1000) + 20_000,
                              10_000]) is None
    floor.refresh_token = third
    with pytest.raises(ValueError, match="refresh_invalid"):
        floor.refresh()

    token = floor.custom_token_request()
    floor.custom_token(token)
    with pytest.raises(ValueError, match="token_replayed"):
        floor.custom_token(token)


def test_measure_gives_every_scenario_a_positive_floor(floor):
    found = measure_floor(floor)
    assert set(found) == {"authorize", "redirect", "oidc_redirect", "custom_token",
                          "refresh", "me"}
    assert all(row["ms_per_request"] > 0 for row in found.values())
    assert found["redirect"]["ms_per_login"] == pytest.approx(
        3 * found["redirect"]["ms_per_request"])


def test_every_login_entry_point_counts_both_rate_limits(floor):
    """Per app and client address, and per app (protocol.md, "Rate limits"):
    each entry point adds one to both counters of the window, which expire."""
    first = int(time.time()) // 60
    floor.authorize()
    floor.custom_token(floor.custom_token_request())
    floor.inapp(lambda state, request_token: floor.tenant_token())
    windows = [str(n) for n in range(first, int(time.time()) // 60 + 1)]  # a minute may turn
    for parts in (("127.0.0.1",), ()):
        keys = [floor.key("rl", *parts, window) for window in windows]
        assert sum(int(floor.redis.get(key) or 0) for key in keys) == 3
        assert all(0 < floor.redis.ttl(key) <= 120 for key in keys if floor.redis.exists(key))
