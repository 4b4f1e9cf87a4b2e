"""The oidc-provider peer of the benchmark (bench/peer.py), for about a second
per operation, in the suite: so the peer the targets of DESIGN §10 are
measured against cannot rot unnoticed.

It starts node oidc-provider (bench/peer/server.js, two cluster workers) on a
redis-server of its own, drives the code exchange, refresh with rotation,
userinfo and the full login, and must finish each with no error and with
CPU counted for node and Redis.
"""

from __future__ import annotations

import json
import os
import sys

import pytest

from bench.peer import DEFAULT_OPERATIONS, INSTALL_HINT, PEER_DIR
from tests.waiting import run

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_peer_runs_every_operation_without_errors(tmp_path):
    if not os.path.isdir(os.path.join(PEER_DIR, "node_modules", "oidc-provider")):
        pytest.fail(f"bench/peer/node_modules is missing: run {INSTALL_HINT}")
    output = tmp_path / "peer.json"
    done = run([sys.executable, "-m", "bench.peer", "--duration", "1", "--warmup", "0.5",
                "--users", "2", "--output", str(output)],
               cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ROOT})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert "| oidc-provider peer: operation |" in done.stdout
    rows = json.loads(output.read_text())["operations"]

    assert set(rows) == set(DEFAULT_OPERATIONS)
    for name, row in rows.items():
        assert row["errors"] == 0, (name, row["error_examples"])
        assert row["ops"] > 0 and row["ops_per_s"] > 0, name
        assert row["cpu_ms_per_op"]["node"] > 0, name
        assert row["cpu_ms_per_op"]["total"] >= row["cpu_ms_per_op"]["node"], name
        # Every operation reaches the peer's Redis (userinfo: the token and its grant).
        assert row["redis_commands_per_op"] >= 1, name
    # Redis CPU comes in 10 ms clock ticks: over all operations it shows.
    assert sum(row["redis_cpu_s"] for row in rows.values()) > 0
    # The exchange was measured on codes minted outside its windows, none wasted.
    exchange = rows["exchange"]
    assert exchange["minted"]["errors"] == 0
    assert exchange["steps"]["token"]["count"] == exchange["ops"]
    # A full login is four requests to the peer: /auth, the interaction, the resume, /token.
    login = rows["login"]
    assert set(login["steps"]) == {"auth", "interaction", "resume", "token", "iteration"}
    assert login["steps"]["token"]["count"] == login["ops"]
