"""``bench.run --topology cluster``: the side-by-side table and the per-operation
figures (bench/compare.py, bench/probes.py), on made-up rows."""

from __future__ import annotations

import pytest

from bench.compare import capacity_table, comparison, comparison_table, service_cpu
from bench.probes import counter_delta, pg_delta, resp_size
from bench.run import _arguments


def _row(web: float, redis: float | None, worker: float, ops: float = 100.0) -> dict:
    return {"ops_per_s": ops, "web_cpu_ms_per_op": web, "redis_cpu_ms_per_op": redis,
            "sync_worker_cpu_ms_per_op": worker, "redis_cmds_per_op": 50.0,
            "redis_bytes_in_per_op": 5000.0, "redis_bytes_out_per_op": 8000.0,
            "pg_rows_per_op": {"audit_events": {"ins": 3.0, "upd": 0.0},
                               "end_users": {"ins": 0.25, "upd": 0.5}},
            "pg_bytes_per_op": 2000.0, "pg_commits_per_op": 0.1}


def test_service_cpu_adds_the_tiers_and_is_unknown_when_one_is():
    assert service_cpu(_row(8.0, 1.0, 0.5)) == pytest.approx(9.5)
    assert service_cpu(_row(8.0, None, 0.5)) is None


def test_the_ratio_is_cluster_over_single_service_cpu_per_scenario():
    single = {"scenarios": {"redirect login": _row(8.0, 1.0, 1.0),
                            "/me": _row(0.6, 0.1, 0.0)}}
    cluster = {"scenarios": {"redirect login": _row(9.0, 2.0, 1.0)}}
    rows = comparison(single, cluster)
    assert list(rows) == ["redirect login"]  # only scenarios run on both
    assert rows["redirect login"]["ratio"] == pytest.approx(12.0 / 10.0)
    table = comparison_table(rows)
    assert "| redirect login | 100 | 100 | 8.000 | 9.000 | 1.000 | 2.000 |" in table
    assert rows["redirect login"]["web_redis_ratio"] == pytest.approx(11.0 / 9.0)
    assert table.rstrip().endswith("| 1.20 | 1.22 |")


def test_the_capacity_table_has_a_line_per_store_and_scenario():
    runs = [{"store": "single", "scenarios": {"custom-token login": _row(3, 0.4, 0.3)},
             "pg_row_bytes": {"audit_events": {"rows": 10, "bytes": 5660,
                                               "bytes_per_row": 566.0}}},
            {"store": "cluster", "scenarios": {"custom-token login": _row(3, 0.5, 0.3)}}]
    table = capacity_table(runs)
    assert "| single | custom-token login | 100 | 50.0 | 5,000 | 8,000 | 3.00 | 0.25 + 0.50 |" \
        in table
    assert "| cluster | custom-token login |" in table
    assert "audit_events 10 rows, 566 bytes/row" in table


def test_counter_deltas_are_per_command_and_leave_out_the_unchanged():
    before = {"reads": 1, "commands": 10, "calls": {"get": 5, "xadd": 2}}
    after = {"reads": 4, "commands": 30, "calls": {"get": 5, "xadd": 7, "evalsha": 3}}
    assert counter_delta(before, after) == {"reads": 3, "commands": 20,
                                            "calls": {"xadd": 5, "evalsha": 3}}


def test_pg_deltas_count_tables_new_in_the_window():
    before = {"tables": {"audit_events": {"ins": 5, "upd": 0, "del": 0, "bytes": 8192}},
              "commits": 10}
    after = {"tables": {"audit_events": {"ins": 8, "upd": 0, "del": 0, "bytes": 16384},
                        "end_users": {"ins": 1, "upd": 2, "del": 0, "bytes": 8192}},
             "commits": 12}
    assert pg_delta(before, after) == {
        "tables": {"audit_events": {"ins": 3, "upd": 0, "del": 0, "bytes": 8192},
                   "end_users": {"ins": 1, "upd": 2, "del": 0, "bytes": 8192}},
        "commits": 2}


def test_resp_size_is_the_bytes_on_the_wire():
    command = b"*6\r\n$6\r\nXRANGE\r\n$1\r\nk\r\n$1\r\n-\r\n$1\r\n+\r\n$5\r\nCOUNT\r\n$1\r\n1\r\n"
    assert resp_size(["XRANGE", "k", "-", "+", "COUNT", 1]) == len(command)
    # An XRANGE reply as redis-py parses it: [(id, {field: value})].
    reply = b"*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$5\r\nevent\r\n$2\r\n{}\r\n"
    assert resp_size([(b"1-0", {b"event": b"{}"})]) == len(reply)


def test_topology_is_single_by_default_and_checked():
    assert _arguments([]).topology == "single"
    assert _arguments(["--topology", "cluster"]).topology == "cluster"
    with pytest.raises(SystemExit):
        _arguments(["--topology", "ring"])
