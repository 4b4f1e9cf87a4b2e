"""The whole-service table and the ratio to the oidc-provider peer
(bench/service_table.py), and the runner's window arithmetic, on made-up rows."""

from __future__ import annotations

import pytest

from bench.run import _sum_windows, per_operation, select_scenarios, select_service_scenarios
from bench.service_table import (
    live_sync,
    live_sync_table,
    peer_ratios,
    peer_table,
    service_total,
    table,
)


def _row(web: float, redis: float, worker: float, pg: float | None, ops: float = 100.0,
         requests: int = 1) -> dict:
    tiers = {"web_cpu_ms_per_op": web, "redis_cpu_ms_per_op": redis,
             "sync_worker_cpu_ms_per_op": worker, "pg_cpu_ms_per_op": pg}
    return {"ops_per_s": ops, **tiers, "service_cpu_ms_per_op": service_total(tiers),
            "web_cpu_ms_per_request": web / requests,
            "raw": {"iterations": 10, "requests": 10 * requests}}


def _peer(total: float, node: float, label: str) -> dict:
    return {"label": label, "ops_per_s": 300.0,
            "cpu_ms_per_op": {"node": node, "redis": total - node, "total": total}}


def test_service_total_adds_the_four_tiers_and_is_unknown_when_one_is():
    assert _row(1.0, 0.25, 0.5, 0.25)["service_cpu_ms_per_op"] == pytest.approx(2.0)
    assert _row(1.0, 0.25, 0.5, None)["service_cpu_ms_per_op"] is None


def test_the_table_has_each_tier_the_total_and_the_web_figure_per_request():
    report = {"scenarios": {"redirect login": _row(4.5, 0.5, 0.25, 0.75, requests=3)},
              "service_only": {"code exchange": _row(1.5, 0.125, 0.0, 0.375)}}
    lines = table(report).splitlines()
    assert lines[0].startswith("| scenario | ops/s | web | Redis | workers | PostgreSQL |")
    assert lines[2] == ("| redirect login | 100 | 4.500 | 0.500 | 0.250 | 0.750 | **6.000** "
                        "| 1.500 | 3 |")
    assert lines[3].startswith("| code exchange | 100 | 1.500 | 0.125 | 0.000 | 0.375 | **2.000**")


def test_the_peer_ratio_is_ours_over_the_peers_per_operation():
    report = {"scenarios": {"redirect login": _row(4.0, 0.5, 0.5, 1.0),
                            "refresh": _row(1.0, 0.1, 0.05, 0.05)},
              "service_only": {"code exchange": _row(1.5, 0.2, 0.1, 0.2)}}
    peer = {"exchange": _peer(1.0, 0.9, "code exchange (PKCE)"),
            "refresh": _peer(1.2, 1.1, "refresh (rotation)"),
            "me": _peer(0.5, 0.45, "/me (userinfo)"),  # ours was not run: no ratio
            "login": _peer(5.0, 4.6, "full login")}
    ratios = peer_ratios(report, peer)
    assert list(ratios) == ["exchange", "refresh", "login"]
    assert ratios["exchange"]["ratio"] == pytest.approx(2.0)
    assert ratios["refresh"]["ratio"] == pytest.approx(1.0)
    assert ratios["login"]["ratio"] == pytest.approx(6.0 / 5.0)
    assert ratios["login"]["scenario"] == "redirect login"
    assert ("| full login | redirect login | 6.00 (4.00 / 0.50 / 0.50 / 1.00) "
            "| 5.00 (4.60 / 0.40) | **1.20** |") in peer_table(ratios)


def test_windows_add_up_key_by_key_and_keep_what_one_window_alone_has():
    one = {"web_cpu_s": 1.0, "pg_backends": 3, "redis_calls": {"get": 2},
           "pg": {"tables": {"audit_events": {"ins": 5}}, "commits": 1}}
    two = {"web_cpu_s": 0.5, "pg_backends": 2, "redis_calls": {"get": 1, "xadd": 4},
           "pg": {"tables": {"end_users": {"ins": 1}}, "commits": 2}}
    assert _sum_windows([one, two]) == {
        "web_cpu_s": 1.5, "pg_backends": 3, "redis_calls": {"get": 3, "xadd": 4},
        "pg": {"tables": {"audit_events": {"ins": 5}, "end_users": {"ins": 1}}, "commits": 3}}


def test_per_operation_counts_postgres_in_the_service_total():
    result = {"iterations": 100, "seconds": 2.0, "web_cpu_s": 0.2, "redis_cpu_net_s": 0.02,
              "sync_worker_cpu_net_s": 0.01, "pg_cpu_net_s": 0.03,
              "pg": {"tables": {}, "commits": 0}}
    row = per_operation(result)
    assert row["pg_cpu_ms_per_op"] == pytest.approx(0.3)
    assert row["service_cpu_ms_per_op"] == pytest.approx(2.6)


def test_the_code_exchange_is_a_service_only_scenario_only_can_name():
    assert select_service_scenarios(None) == {"code exchange": "exchange"}
    assert select_service_scenarios(["exchange"]) == {"code exchange": "exchange"}
    assert select_service_scenarios(["refresh"]) == {}
    assert select_scenarios(["code exchange,refresh"]) == {
        "refresh": ("refresh", 1, "refresh")}


def test_the_live_sync_is_workers_and_postgres_per_event_over_the_backlogs():
    report = {
        "sync": {"events": 100_000, "drain_cpu_s": 3.0, "pg_cpu_s": 2.0},  # 50 µs/event
        "scenarios": {
            "redirect login": {"raw": {"events": 3000, "seconds": 2.0,
                                       "sync_worker_cpu_s": 0.2, "pg_cpu_s": 0.1}},
            "/me": {"raw": {"events": 0, "seconds": 2.0, "sync_worker_cpu_s": 0.01,
                            "pg_cpu_s": 0.0}},  # appends no event: no row
        },
        "service_only": {"code exchange": {"raw": {"events": 1000, "seconds": 1.0,
                                                   "sync_worker_cpu_s": 0.04,
                                                   "pg_cpu_s": 0.02}}},
    }
    rows = live_sync(report)
    assert list(rows) == ["redirect login", "code exchange"]
    assert rows["redirect login"]["live_us_per_event"] == pytest.approx(100.0)
    assert rows["redirect login"]["events_per_s"] == pytest.approx(1500.0)
    assert rows["redirect login"]["ratio"] == pytest.approx(2.0)
    assert rows["code exchange"]["ratio"] == pytest.approx(1.2)
    assert "| redirect login | 1,500 | 100 | 50 | **2.00** |" in live_sync_table(rows)
    assert live_sync({**report, "sync": {"events": 0}}) == {}  # --no-sync
