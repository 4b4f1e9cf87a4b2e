"""The oidc-provider peer: service CPU per operation of node oidc-provider on Redis.

    python -m bench.peer [--duration 10] [--warmup 3] [--users 4] [--output FILE]

DESIGN §10 compares Bridgekeeper's service CPU per operation with node
``oidc-provider`` 9.x run as two cluster processes on a Redis adapter, with
the same PKCE and refresh-rotation settings, on the same machine in the
same run. This module starts that peer (``bench/peer/server.js``) with a
``redis-server`` of its own on a free port, drives each operation with
``bench.peer_loadgen`` for ``duration`` seconds after a warm-up, and counts
the CPU (``/proc/<pid>/stat``) of the node primary and its workers and of
the Redis server over the same windows.

``run_peer(duration, warmup, users)`` returns, per operation (``exchange``,
``refresh``, ``me``, ``login``), ops/s and CPU ms per operation (node,
Redis, total); ``main`` prints the table and writes the JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

from bench.probes import children, process_cpu
from bench.topology import ROOT, free_port

PEER_DIR = os.path.join(ROOT, "bench", "peer")
INSTALL_HINT = "npm ci --prefix bench/peer --no-audit --no-fund (or: make bench-peer)"

# Operation -> (load generator scenario, what the table calls it).
OPERATIONS = {
    "exchange": ("peer_exchange", "code exchange (PKCE)"),
    "refresh": ("peer_refresh", "refresh (rotation)"),
    "me": ("peer_me", "/me (userinfo)"),
    "login": ("peer_login", "full login"),
    # Not run by default: the login up to the code, to cross-check the exchange.
    "code": ("peer_code", "login up to the code"),
}
DEFAULT_OPERATIONS = ("exchange", "refresh", "me", "login")


@dataclass
class Peer:
    workdir: str
    port: int
    node: subprocess.Popen
    redis: subprocess.Popen
    redis_port: int

    def node_pids(self) -> list[int]:
        return [self.node.pid, *children(self.node.pid)]


def check_installed() -> None:
    if not os.path.isdir(os.path.join(PEER_DIR, "node_modules", "oidc-provider")):
        raise RuntimeError(f"bench/peer/node_modules is missing: run {INSTALL_HINT}")


def _start_redis(workdir: str) -> tuple[subprocess.Popen, int]:
    """A redis-server of the peer's own: its CPU is the peer's alone."""
    import redis

    port = free_port()
    with open(os.path.join(workdir, "redis.log"), "w") as log:
        process = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", workdir], stdout=log, stderr=subprocess.STDOUT)
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited with {process.returncode}")
        try:
            client.ping()
            return process, port
        except redis.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def _wait_ready(path: str, process: subprocess.Popen, log: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            with open(log) as handle:
                raise RuntimeError(f"the peer exited with {process.returncode}: "
                                   f"{handle.read()[-2000:]}")
        if os.path.exists(path):
            return
        time.sleep(0.1)
    raise RuntimeError(f"the peer did not listen within {timeout:.0f} s; see {log}")


@contextlib.contextmanager
def running_peer(workers: int = 2) -> Iterator[Peer]:
    """Start Redis and the node peer; stop both and drop the scratch folder after."""
    check_installed()
    workdir = tempfile.mkdtemp(prefix="bk-peer-")
    redis_process, redis_port = _start_redis(workdir)
    node = None
    try:
        port = free_port()
        ready = os.path.join(workdir, "ready")
        log = os.path.join(workdir, "node.log")
        env = {**os.environ, "PORT": str(port), "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
               "PEER_WORKERS": str(workers), "PEER_READY_FILE": ready,
               "NODE_ENV": "production"}
        with open(log, "w") as handle:
            node = subprocess.Popen(["node", "server.js"], cwd=PEER_DIR, env=env, stdout=handle,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        _wait_ready(ready, node, log)
        yield Peer(workdir, port, node, redis_process, redis_port)
    finally:
        if node is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.pid, signal.SIGTERM)
            try:
                node.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(node.pid, signal.SIGKILL)
                node.wait()
        redis_process.terminate()
        redis_process.wait()
        if not os.environ.get("BENCH_KEEP_LOGS"):
            shutil.rmtree(workdir, ignore_errors=True)


def _cpu(pids: list[int]) -> dict[int, float]:
    found = {}
    for pid in pids:
        with contextlib.suppress(FileNotFoundError):
            found[pid] = process_cpu(pid)
    return found


def measure(peer: Peer, scenario: str, users: int, warmup: float, duration: float) -> dict:
    """One scenario under load; node and Redis CPU summed over its measured windows."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"host": "127.0.0.1", "port": peer.port}, handle)
    loadgen = subprocess.Popen(
        [sys.executable, "-m", "bench.peer_loadgen", handle.name, scenario, "--users", str(users),
         "--warmup", str(warmup), "--duration", str(duration)],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": ROOT})
    import redis

    client = redis.Redis(port=peer.redis_port)
    node_s = redis_s = 0.0
    commands = 0
    opened = None
    result = None
    try:
        for line in loadgen.stdout:
            line = line.strip()
            if line in ("start", "stop"):
                snapshot = (_cpu(peer.node_pids()), process_cpu(peer.redis.pid),
                            int(client.info("stats")["total_commands_processed"]))
                if line == "start":
                    opened = snapshot
                elif opened is not None:
                    (node0, redis0, cmds0), (node1, redis1, cmds1) = opened, snapshot
                    node_s += sum(node1[p] - node0[p] for p in node1 if p in node0)
                    redis_s += redis1 - redis0
                    commands += cmds1 - cmds0 - 1  # less the INFO that read it
                    opened = None
                loadgen.stdin.write("go\n")  # the generator waits for this
                loadgen.stdin.flush()
            elif line.startswith("{"):
                result = json.loads(line)
        loadgen.wait()
    finally:
        os.unlink(handle.name)
        if loadgen.poll() is None:
            loadgen.kill()
            loadgen.wait()
    if result is None:
        raise RuntimeError(f"the peer load generator failed for {scenario} "
                           f"(exit {loadgen.returncode})")
    ops = result["iterations"]
    per_op = 1000 / ops if ops else 0.0
    return {**result,
            "ops": ops,
            "ops_per_s": ops / result["seconds"] if result["seconds"] else 0.0,
            "node_cpu_s": round(node_s, 4), "redis_cpu_s": round(redis_s, 4),
            "redis_commands_per_op": commands / ops if ops else 0.0,
            "cpu_ms_per_op": {"node": node_s * per_op, "redis": redis_s * per_op,
                              "total": (node_s + redis_s) * per_op}}


def run_peer(duration: float = 10.0, warmup: float = 3.0, users: int = 4,
             operations: tuple[str, ...] = DEFAULT_OPERATIONS) -> dict[str, dict]:
    """Start the peer, measure each operation, stop it.

    Returns ``{operation: {"label", "ops_per_s", "cpu_ms_per_op": {"node",
    "redis", "total"}, "errors", "error_examples", ...}}`` for ``exchange``,
    ``refresh``, ``me`` and ``login`` (the load generator's whole result is
    in each row too).
    """
    results = {}
    with running_peer() as peer:
        for name in operations:
            scenario, label = OPERATIONS[name]
            results[name] = {"label": label, **measure(peer, scenario, users, warmup, duration)}
    return results


def table(results: dict[str, dict]) -> str:
    rows = ["| oidc-provider peer: operation | ops/s | CPU ms/op node | Redis | total "
            "| Redis cmds/op | errors |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for row in results.values():
        cpu = row["cpu_ms_per_op"]
        rows.append(f"| {row['label']} | {row['ops_per_s']:,.0f} | {cpu['node']:.3f} "
                    f"| {cpu['redis']:.3f} | {cpu['total']:.3f} "
                    f"| {row['redis_commands_per_op']:.1f} | {row['errors']} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--only", help="operations separated by commas "
                        f"({', '.join(OPERATIONS)})")
    parser.add_argument("--output", help="write the JSON result here (default: stdout only)")
    args = parser.parse_args(argv)
    operations = DEFAULT_OPERATIONS
    if args.only:
        operations = tuple(name.strip() for name in args.only.split(",") if name.strip())
        unknown = sorted(set(operations) - set(OPERATIONS))
        if unknown or not operations:
            parser.error(f"unknown operation(s) {unknown}; choose from {list(OPERATIONS)}")
    load_before = os.getloadavg()
    results = run_peer(args.duration, args.warmup, args.users, operations)
    report = {"duration": args.duration, "warmup": args.warmup, "users": args.users,
              "cpus": os.cpu_count(), "load_before": load_before,
              "load_after": os.getloadavg(), "operations": results}
    if args.output:
        with open(args.output, "w") as handle:
            json.dump(report, handle, indent=1)
    else:
        print(json.dumps(report))
    print(table(results))
    print(f"load average before/after: {load_before[0]:.2f} / {report['load_after'][0]:.2f} "
          f"on {os.cpu_count()} CPUs")
    errors = sum(row["errors"] for row in results.values())
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
