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
        # Every scenario talks to Redis; the counters come from the benchmark's own Redis.
        assert row["redis_cmds_per_request"] >= 1, name
        assert 0 < row["peak_rss_mib"] < 1024, name
    # The OIDC login checked an ID token (nonce, at_hash) on every measured login;
    # its floor holds the ID token's signature beside the plain login's.
    oidc = report["scenarios"]["OIDC redirect login"]["raw"]
    assert oidc["id_tokens"] == oidc["iterations"] > 0
    assert report["floor"]["oidc_redirect"]["ms_per_login"] > 0
    assert report["empty"]["errors"] == 0 and report["empty_request_ms"] > 0
    # The drain of bench/sync.py ran and every event landed.
    assert report["sync"]["all_landed"] and report["sync"]["events_per_s"] > 0
