"""``make bench-smoke``: the benchmark's runner, for a few seconds, in the suite.

It starts the real topology (gunicorn with production.ini, a Celery worker,
the example tenant endpoint, its own Redis and a scratch database), drives
every scenario through the load generator, measures the floor and the event
drain, and must finish with zero errors and a complete report, so the
benchmark cannot rot unnoticed.
"""

from __future__ import annotations

import json
import os
import sys

import pytest

from bench.run import SCENARIOS
from tests.waiting import run

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_bench_smoke_runs_every_scenario_without_errors(tmp_path):
    output = tmp_path / "smoke.json"
    done = run([sys.executable, "-m", "bench.run", "--smoke", "--output", str(output)],
               cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ROOT})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert "| scenario | req/s |" in done.stdout
    report = json.loads(output.read_text())

    assert set(report["scenarios"]) == set(SCENARIOS)
    for name, row in report["scenarios"].items():
        assert row["errors"] == 0, (name, row["error_examples"])
        assert row["raw"]["requests"] > 0, name
        assert row["web_cpu_ms_per_request"] > 0, name
        assert row["floor_ms_per_request"] > 0, name
        # The contract-minimum floor beside it, and the ratio the target is judged on.
        assert row["contract_floor_ms_per_request"] > 0, name
        assert row["contract_ratio"] == pytest.approx(row["web_cpu_ms_per_request"] / (
            row["contract_floor_ms_per_request"] + report["empty_request_ms"])), name
        # Every scenario talks to Redis; the counters come from the benchmark's own Redis.
        assert row["redis_cmds_per_request"] >= 1, name
        assert 0 < row["peak_rss_mib"] < 1024, name
    # The OIDC login checked an ID token (nonce, at_hash) on every measured login;
    # its floor holds the ID token's signature beside the plain login's.
    oidc = report["scenarios"]["OIDC redirect login"]["raw"]
    assert oidc["id_tokens"] == oidc["iterations"] > 0
    assert report["floor"]["oidc_redirect"]["ms_per_login"] > 0
    assert report["empty"]["errors"] == 0 and report["empty_request_ms"] > 0
    target = report["floor_target"]
    assert set(target["ratios"]) == set(SCENARIOS) | {"callback + token (derived)"}
    assert target["met"] == (not target["over"])
    assert "floor target: web CPU per request ≤ 3 × (contract-minimum floor" in done.stdout
    # The drain of bench/sync.py ran and every event landed.
    assert report["sync"]["all_landed"] and report["sync"]["events_per_s"] > 0
    # The whole service per operation: every tier over the same windows.
    assert "| scenario | ops/s | web | Redis | workers | PostgreSQL |" in done.stdout
    exchange = report["service_only"]["code exchange"]
    assert exchange["errors"] == 0, exchange["error_examples"]
    # Only POST /token in its windows: one request per operation, codes minted outside.
    assert exchange["raw"]["requests"] == exchange["raw"]["iterations"] > 0
    rows = {**report["scenarios"], "code exchange": exchange}
    for name, row in rows.items():
        tiers = [row[key] for key in ("web_cpu_ms_per_op", "redis_cpu_ms_per_op",
                                      "sync_worker_cpu_ms_per_op", "pg_cpu_ms_per_op")]
        assert all(tier is not None and tier >= 0 for tier in tiers), (name, tiers)
        assert row["service_cpu_ms_per_op"] == pytest.approx(sum(tiers)), name
        assert row["service_cpu_ms_per_op"] >= row["web_cpu_ms_per_op"] > 0, name
        # The probe found the bench database's backends (the web tier's, the worker's).
        assert row["raw"]["pg_backends"] >= 1, name
        assert f"| {name} | " in done.stdout.split("### Whole service")[1], name
    # Logins are synced into PostgreSQL inside the windows: its backends spent CPU.
    assert sum(row["raw"]["pg_cpu_s"] for row in rows.values()) > 0
    # The sync at the benchmark's load, per event, against the backlog's.
    live = report["live_sync"]
    assert "redirect login" in live and "/me" not in live
    assert all(row["live_us_per_event"] > 0 and row["ratio"] > 0 for row in live.values())
    assert "### The sync at the benchmark's load, per login event" in done.stdout
    assert "peer" not in report  # the peer has its own smoke test


def test_bench_smoke_compares_a_redis_cluster_with_the_single_redis(tmp_path):
    """``--topology cluster``: two login scenarios on one redis-server, then on
    a 3-primary Redis Cluster the runner starts, side by side (no backlog drain:
    it is the single topology's and the test above runs it)."""
    output = tmp_path / "cluster.json"
    done = run([sys.executable, "-m", "bench.run", "--smoke", "--topology", "cluster",
                "--only", "redirect login,custom-token login", "--no-sync",
                "--output", str(output)],
               cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ROOT})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert "### Single Redis against Redis Cluster" in done.stdout
    report = json.loads(output.read_text())
    cluster = report["cluster"]

    assert cluster["redis_url"].startswith("redis+cluster://")
    assert len(cluster["redis_pids"]) == 3 and cluster["stream_shards"] == 16
    assert report["store"] == "single" and len(report["redis_pids"]) == 1
    assert set(report["comparison"]) == {"redirect login", "custom-token login"}
    for name, row in report["comparison"].items():
        assert cluster["scenarios"][name]["errors"] == 0, name
        for side in ("single", "cluster"):
            assert row[side]["ops_per_s"] > 0, (name, side)
            assert row[side]["web_cpu_ms_per_op"] > 0, (name, side)
            # Redis CPU was read from every node's /proc entry (a figure, not "unmeasured").
            assert row[side]["redis_cpu_ms_per_op"] is not None, (name, side)
        assert row["ratio"] > 0, name
        # The cluster's nodes' counters are summed: the login's commands are all there.
        assert cluster["scenarios"][name]["redis_cmds_per_op"] >= 10, name
