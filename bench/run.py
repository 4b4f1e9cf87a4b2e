"""``make bench``: the real topology under load, its floor beside it, one table.

    python -m bench.run [--duration 10] [--warmup 3] [--users 4] [--workers 2]
                        [--threads 1] [--rounds 2] [--sync-events 100000] [--no-sync]
                        [--only "redirect login,OIDC redirect login"] [--smoke] [--gate] [--peer]

``--only`` runs a subset of the scenarios (to A/B two of them alone): names
from the table (or the load generator's, e.g. ``oidc_redirect``), separated
by commas, the option repeatable; an unknown name is an error. The empty app
and the floor are measured in every round whatever the subset.

For each scenario the load generator (``bench.loadgen``, its own process)
drives the service for a fixed time after a warm-up; the runner snapshots the
gunicorn workers' CPU and the benchmark Redis' counters when measuring starts
and stops. The floor (``bench.floor``) runs the scenario's own Redis round
trips and crypto operations in a tight loop in this process; the
contract-minimum floor (``bench.contract_floor``) does the same with only
what the contract requires, and the ≤ 3 target is judged on it (``--gate``:
exit 1 when a scenario misses it). The empty Pyramid app gives the cost of a
request through gunicorn and Pyramid alone.
Results: a Markdown table on stdout and ``bench/results/<date>-<commit>.json``.

Whole service (issue #19): over the same windows the runner also reads the
CPU of Redis (every node), the Celery worker and the PostgreSQL backends of
the bench's own scratch database (``bench.service_cpu``; the machine's
PostgreSQL is shared, so not every child of its postmaster), less each
one's background with no load, and prints service CPU per operation for
every scenario and for ``code exchange`` (``POST /token`` alone, a
service-only scenario: it has no floor). ``--peer`` then runs node
oidc-provider on Redis (``bench.peer``) after our scenarios, never
alongside, and prints the ratio per operation (``bench.service_table``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

import psycopg
import redis
from psycopg import sql

from bench import compare, contract_floor, service_table
from bench import floor as floors
from bench.probes import (
    LagProbe,
    children,
    counter_delta,
    pg_counters,
    pg_delta,
    process_cpu,
    process_memory,
    redis_counters,
)
from bench.service_cpu import PostgresCPU
from bench.sync import ADMIN_DSN
from bench.topology import ROOT, Topology, running
from saas.event_streams import layout_from_settings

# Scenario -> (loadgen scenario, web requests per iteration, floor name).
SCENARIOS = {
    "redirect login": ("redirect", 3, "redirect"),
    "OIDC redirect login": ("oidc_redirect", 3, "oidc_redirect"),
    "authorize only": ("authorize", 1, "authorize"),
    "custom-token login": ("custom_token", 1, "custom_token"),
    "refresh": ("refresh", 1, "refresh"),
    "/me": ("me", 1, "me"),
    "in-app back-channel login": ("inapp", 1, "inapp"),
}
LOGIN_SCENARIOS = {"redirect", "oidc_redirect", "custom_token", "inapp"}
# Measured for the whole-service table only (no floor, not in the ratio table):
# name -> load generator scenario. The code exchange alone, as the peer's.
SERVICE_SCENARIOS = {"code exchange": "exchange"}
# Load generator scenarios that wait for the runner at each mark (several windows).
HANDSHAKE_SCENARIOS = {"exchange"}
TOPOLOGIES = ("single", "cluster")


def select_scenarios(only: list[str] | None) -> dict[str, tuple[str, int, str]]:
    """The scenarios ``--only`` names (all without it), in the table's order.

    Each value may list several names separated by commas; a table name or a
    load-generator name selects a scenario. An unknown name raises ValueError
    rather than quietly running less than asked.
    """
    if not only:
        return dict(SCENARIOS)
    wanted = {name.strip() for value in only for name in value.split(",") if name.strip()}
    known = (set(SCENARIOS) | {scenario for scenario, _, _ in SCENARIOS.values()}
             | set(SERVICE_SCENARIOS) | set(SERVICE_SCENARIOS.values()))
    unknown = sorted(wanted - known)
    if unknown or not wanted:
        raise ValueError(f"unknown scenario(s) {unknown}; choose from {sorted(SCENARIOS)}")
    return {name: row for name, row in SCENARIOS.items() if name in wanted or row[0] in wanted}


def select_service_scenarios(only: list[str] | None) -> dict[str, str]:
    """The service-only scenarios to run: all without ``--only``, else those it names."""
    if not only:
        return dict(SERVICE_SCENARIOS)
    wanted = {name.strip() for value in only for name in value.split(",") if name.strip()}
    return {name: scenario for name, scenario in SERVICE_SCENARIOS.items()
            if name in wanted or scenario in wanted}


def _web_pids(topology: Topology, name: str) -> tuple[int, list[int]]:
    master = topology.processes[name].pid
    return master, children(master)


def _cpu(pids: list[int]) -> dict[int, float]:
    found = {}
    for pid in pids:
        with contextlib.suppress(FileNotFoundError):  # a worker that just exited
            found[pid] = process_cpu(pid)
    return found


def _layout(topology: Topology):
    return layout_from_settings({
        "redis.url": topology.redis_url, "saas.redis_prefix": topology.prefix,
        "saas.sync.stream_shards": topology.env.get("SAAS_SYNC_STREAM_SHARDS"),
    })


def _event_streams(topology: Topology) -> list[str]:
    """The keys of every login event stream shard of the topology's service."""
    return _layout(topology).stream_keys()


def _wait_for_sync_worker(topology: Topology, timeout: float = 60) -> None:
    """Celery takes seconds of CPU to boot: measure nothing before its first
    drain has created a stream's consumer group (then one quiet second)."""
    client = topology.redis()
    streams = _event_streams(topology)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for stream in streams:
            with contextlib.suppress(Exception):  # no stream yet
                if client.xinfo_groups(stream):
                    time.sleep(1.0)
                    return
        time.sleep(0.2)
    raise RuntimeError("the Celery worker did not start draining; see its log")


def _worker_pids(topology: Topology) -> list[int]:
    """The Celery worker (solo pool: it drains in its own process) and its
    children (the embedded beat)."""
    celery = topology.processes.get("celery")
    return [celery.pid, *children(celery.pid)] if celery else []


def _snapshot(topology: Topology, nodes: list, pg, postgres: PostgresCPU | None = None) -> dict:
    """Everything read at a mark except the web workers' CPU. ``postgres``:
    the bench database's backends, less the runner's own connection ``pg``."""
    own = pg.info.backend_pid if pg is not None else None
    pg_cpu = ({pid: cpu for pid, cpu in postgres.snapshot().items() if pid != own}
              if postgres is not None else {})
    return {"redis": redis_counters(nodes),
            "redis_cpu": sum(_cpu(topology.redis_pids).values()),
            "worker_cpu": sum(_cpu(_worker_pids(topology)).values()),
            "pg_cpu": pg_cpu,
            "pg": pg_counters(pg) if pg is not None else None,
            "events_added": _events_added(topology)}


def _events_added(topology: Topology) -> int:
    """Login events ever appended to the topology's stream shards (XINFO's
    ``entries-added``): the events of a window, whatever the drain deleted."""
    client = topology.redis()
    total = 0
    for stream in _event_streams(topology):
        with contextlib.suppress(redis.ResponseError):  # no stream yet
            total += client.xinfo_stream(stream)["entries-added"]
    return total


def _postgres(topology: Topology) -> PostgresCPU:
    """The backends of the bench's scratch database only: the machine's
    PostgreSQL is shared with tests and other benchmarks."""
    return PostgresCPU(ADMIN_DSN, topology.database_name)


def _wait_synced(topology: Topology, timeout: float = 10.0) -> None:
    """Until every event stream shard is empty (entries are deleted once
    their batch is in PostgreSQL): the sync work of what came before is done."""
    client = topology.redis()
    streams = _event_streams(topology)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(client.xlen(stream) for stream in streams):
            return
        time.sleep(0.05)


def _pg_connect(topology: Topology):
    dsn = ADMIN_DSN.rpartition("/")[0] + "/" + topology.database_name
    return psycopg.connect(dsn, autocommit=True)


# Background rates (per second, with no load) taken out of each window.
BACKGROUND = ("reads", "commands", "all_commands", "net_in", "net_out")


def _idle_rates(topology: Topology, seconds: float = 2.0) -> dict[str, float]:
    """Background per second with no load — the sync worker's polling of the
    stream shards, beat, the servers' own timers — to subtract from windows."""
    nodes = topology.redis_nodes()
    postgres = _postgres(topology)
    before = _snapshot(topology, nodes, None, postgres)
    time.sleep(seconds)
    after = _snapshot(topology, nodes, None, postgres)
    delta = counter_delta(before["redis"], after["redis"])
    rates = {k: max(0.0, delta[k] / seconds) for k in BACKGROUND}
    for key in ("redis_cpu", "worker_cpu"):
        rates[key] = max(0.0, (after[key] - before[key]) / seconds)
    rates["pg_cpu"] = max(0.0, PostgresCPU.spent(before["pg_cpu"], after["pg_cpu"]) / seconds)
    return rates


def _less_background(result: dict, idle: dict[str, float]) -> None:
    """The window's figures less what the topology does with no load at all."""
    # The runner's own windows when they differ from the generator's (the
    # exchange's include waiting for the sync to finish).
    window = result.get("window_s", result["seconds"])
    result["redis_rt"] = max(0.0, result["redis_reads"] - idle["reads"] * window)
    result["redis_cmd"] = max(0.0, result["redis_commands"] - idle["commands"] * window)
    result["redis_all_cmd"] = max(0.0, result["redis_all_commands"]
                                  - idle["all_commands"] * window)
    result["redis_in"] = max(0.0, result["redis_net_in"] - idle["net_in"] * window)
    result["redis_out"] = max(0.0, result["redis_net_out"] - idle["net_out"] * window)
    result["redis_cpu_net_s"] = max(0.0, result["redis_cpu_s"] - idle["redis_cpu"] * window)
    result["sync_worker_cpu_net_s"] = max(0.0, result["sync_worker_cpu_s"]
                                         - idle["worker_cpu"] * window)
    result["pg_cpu_net_s"] = max(0.0, result["pg_cpu_s"] - idle.get("pg_cpu", 0.0) * window)


def _pg_row_bytes(topology: Topology) -> dict[str, dict]:
    """Rows and bytes (tables, indexes, TOAST) of the tables logins fill, at
    the end of the run: the mean size of a row as stored."""
    found = {}
    with _pg_connect(topology) as pg:
        for table_name in ("audit_events", "end_users"):
            rows = pg.execute(sql.SQL("SELECT count(*) FROM {}").format(
                sql.Identifier(table_name))).fetchone()[0]
            # The table itself and, when partitioned, every partition.
            size = pg.execute(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "WHERE c.oid = %s::regclass OR c.oid IN (SELECT relid FROM pg_partition_tree(%s))",
                (table_name, table_name)).fetchone()[0]
            found[table_name] = {"rows": rows, "bytes": int(size),
                                 "bytes_per_row": round(size / rows, 1) if rows else None}
    return found


def unused_results_path(stem: str) -> str:
    """``<stem>.json``, or ``<stem>-run2.json`` and on if taken: a second run
    of one commit (an A/B, a run of a few scenarios) never overwrites the
    first's results."""
    path, run = f"{stem}.json", 1
    while os.path.exists(path):
        run += 1
        path = f"{stem}-run{run}.json"
    return path


def _profile(pids: list[int], scenario: str, duration: float, folder: str) -> list:
    """py-spy on each worker for the measured window (collapsed stacks)."""
    os.makedirs(folder, exist_ok=True)
    spy = os.path.join(os.path.dirname(sys.executable), "py-spy")
    return [subprocess.Popen([spy, "record", "--pid", str(pid), "--format", "raw",
                              "--rate", "250", "--duration", str(max(1, int(duration))),
                              "--nonblocking", "--gil", "--output",
                              os.path.join(folder, f"{scenario}-{pid}.txt")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for pid in pids]


def run_load(topology: Topology, scenario: str, users: int, warmup: float, duration: float,
             server: str = "web", lag: bool = False, profile: str | None = None) -> dict:
    fixture = topology.fixture()
    if server == "empty":
        fixture["web_port"] = topology.empty_port
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(fixture, handle)
    master, workers = _web_pids(topology, server)
    client = topology.redis()
    nodes = topology.redis_nodes()
    pg = _pg_connect(topology)
    postgres = _postgres(topology)
    handshake = scenario in HANDSHAKE_SCENARIOS
    probe = LagProbe(client, _event_streams(topology)) if lag else None
    if probe:
        probe.start()
    argv = [sys.executable, "-m", "bench.loadgen", handle.name, scenario, "--users", str(users),
            "--warmup", str(warmup), "--duration", str(duration)]
    loadgen = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True,
                               stdin=subprocess.PIPE if handshake else None,
                               env={**os.environ, "PYTHONPATH": ROOT})
    marks = {}
    windows: list[tuple] = []  # (start mark, stop mark) of each measured window
    result = None
    spies = []
    for line in loadgen.stdout:
        line = line.strip()
        if line in ("start", "stop"):
            if handshake:
                # The exchange's window holds its own sync work and no one else's.
                _wait_synced(topology)
            at = _snapshot(topology, nodes, pg, postgres)
            at["probe"] = (probe.bytes_in, probe.bytes_out) if probe else (0, 0)
            marks[line] = (time.time(), _cpu([master, *workers]), at)
            if line == "start" and profile and not spies:
                spies = _profile(workers, scenario, duration, profile)
            if line == "stop" and "start" in marks:
                windows.append((marks["start"], marks["stop"]))
            if handshake:
                loadgen.stdin.write("go\n")  # the generator waits for this
                loadgen.stdin.flush()
        elif line.startswith("{"):
            result = json.loads(line)
    loadgen.wait()
    for spy in spies:
        spy.wait()
    os.unlink(handle.name)
    pg.close()
    if result is None or not windows:
        raise RuntimeError(f"load generator failed for {scenario} (exit {loadgen.returncode})")
    if probe:
        time.sleep(1.5)  # let the last events of the window land
        probe.stop()
    t0, t1 = windows[0][0][0], windows[-1][1][0]
    totals = _sum_windows([_window(start, stop, master, workers) for start, stop in windows])
    worker_cpu = totals["web_cpu_s"]
    requests = max(result["requests"], 1)
    result.update({
        "web_workers": len(workers),
        **{key: round(value, 3) if key.endswith("_s") else value
           for key, value in totals.items()},
        "web_cpu_ms_per_request": round(worker_cpu * 1000 / requests, 4),
        "windows": len(windows),
        "memory": {str(p): process_memory(p) for p in workers},
    })
    if handshake:
        result["window_s"] = round(totals["window_s"], 3)
    else:
        result.pop("window_s")
    if probe:
        result["sync_lag_ms"] = probe.lag_percentiles(int(t0 * 1000), int(t1 * 1000))
    return result


def _window(start: tuple, stop: tuple, master: int, workers: list[int]) -> dict:
    """The figures of one measured window, from its start and stop marks."""
    (t0, cpu0, at0), (t1, cpu1, at1) = start, stop
    redis = counter_delta(at0["redis"], at1["redis"])
    return {
        "window_s": t1 - t0,
        "web_cpu_s": sum(cpu1.get(p, 0) - cpu0.get(p, 0) for p in workers),
        "master_cpu_s": cpu1.get(master, 0) - cpu0.get(master, 0),
        "redis_reads": redis["reads"],
        "redis_commands": redis["commands"],
        "redis_all_commands": redis["all_commands"],
        # The lag probe's own XRANGE traffic is not the service's.
        "redis_net_in": redis["net_in"] - (at1["probe"][0] - at0["probe"][0]),
        "redis_net_out": redis["net_out"] - (at1["probe"][1] - at0["probe"][1]),
        "redis_calls": redis["calls"],
        "redis_cpu_s": at1["redis_cpu"] - at0["redis_cpu"],
        "sync_worker_cpu_s": at1["worker_cpu"] - at0["worker_cpu"],
        "pg_cpu_s": PostgresCPU.spent(at0["pg_cpu"], at1["pg_cpu"]),
        "events": at1["events_added"] - at0["events_added"],
        "pg_backends": len(at1["pg_cpu"]),
        "pg": pg_delta(at0["pg"], at1["pg"]),
    }


def _add(a, b):
    """``a + b`` for numbers; key by key for dicts (a key of one side alone is kept)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return {k: _add(a[k], b[k]) if k in a and k in b else a.get(k, b.get(k))
                for k in {**a, **b}}
    return a + b


def _sum_windows(windows: list[dict]) -> dict:
    """Several windows' figures added up (the backends counted: the most seen)."""
    total = windows[0]
    for window in windows[1:]:
        backends = max(total["pg_backends"], window["pg_backends"])
        total = _add(total, window)
        total["pg_backends"] = backends
    return total


def run_sync(events: int, runs: int) -> dict:
    """bench/sync.py's drain measurement (one process, ``runs`` backlogs), its
    table parsed; the median run is the figure, as bench/sync.py reports it."""
    env = {**os.environ, "PYTHONPATH": ROOT}
    out = subprocess.run([sys.executable, "-m", "bench.sync", "--events", str(events),
                          "--users", str(max(1, events // 5)), "--runs", str(runs)],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    rows = []
    for line in out.stdout.splitlines():
        if line.startswith("| sync drain"):
            cells = [c.strip().replace(",", "") for c in line.strip("|").split("|")]
            rows.append({"events": int(cells[1]), "seconds": float(cells[4]),
                         "events_per_s": float(cells[5]), "drain_cpu_s": float(cells[6]),
                         "pg_cpu_s": float(cells[7]),
                         "floor_events_per_s": float(cells[8]),
                         "pct_of_floor": float(cells[9])})
    counts = re.search(r"audit rows (\d+), users (\d+), dead letters (\d+)", out.stdout)
    if not rows or counts is None:
        raise RuntimeError(f"bench.sync failed: {out.stdout[-500:]} {out.stderr[-1500:]}")
    median = sorted(rows, key=lambda row: row["events_per_s"])[len(rows) // 2]
    # The target is the share of the bare COPY floor, each run against its own.
    median_share = sorted(row["pct_of_floor"] for row in rows)[len(rows) // 2]
    audit, users, dead = (int(n) for n in counts.groups())
    # Checked here rather than by bench/sync.py's own verdict, which predates
    # the drain's user.created audit rows (one per user it creates): every
    # login's audit row plus one per user, every user, no dead letter.
    expected_users = max(1, events // 5)
    landed = dead == 0 and users == expected_users and audit in (events, events + users)
    return {**median, "pct_of_floor": median_share, "runs": rows, "audit_rows": audit,
            "users": users, "dead_letters": dead, "all_landed": landed}


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _fmt(value, digits=0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def table(report: dict) -> str:
    empty = report["empty_request_ms"]
    rows = ["| scenario | req/s | iter/s | p50 ms | p95 ms | p99 ms | web CPU ms/req | "
            "own-RT floor ms/req | ratio own RT | contract floor ms/req | ratio (≤ 3) "
            "| Redis RT/req | Redis cmds/req | peak RSS MiB | errors | loadgen CPU % |",
            "|---|" + "---:|" * 15]
    for name, row in report["scenarios"].items():
        rows.append(
            f"| {name} | {_fmt(row['requests_per_s'])} | {_fmt(row['iterations_per_s'])} "
            f"| {row['p50']} | {row['p95']} | {row['p99']} | {row['web_cpu_ms_per_request']:.3f} "
            f"| {row['floor_ms_per_request']:.3f} | {row['ratio']:.2f} "
            f"| {_fmt(row.get('contract_floor_ms_per_request'), 3)} "
            f"| {_fmt(row.get('contract_ratio'), 2)} "
            f"| {row['redis_rt_per_request']:.2f} | {row['redis_cmds_per_request']:.2f} "
            f"| {row['peak_rss_mib']:.0f} | {row['errors']} | {row['loadgen_cpu_pct']:.0f} |")
    derived = report.get("callback_and_token")
    if derived:
        rows.append(f"| ↳ callback + token (derived) | – | – | – | – | – "
                    f"| {derived['web_cpu_ms_per_request']:.3f} "
                    f"| {derived['floor_ms_per_request']:.3f} | {derived['ratio']:.2f} "
                    f"| {_fmt(derived.get('contract_floor_ms_per_request'), 3)} "
                    f"| {_fmt(derived.get('contract_ratio'), 2)} "
                    f"| – | – | – | – | – |")
    extra = report.get("oidc_over_redirect")
    if extra:
        rows.append(f"| ↳ OIDC − redirect, per login (median of the rounds' differences; "
                    f"ratio of the differences) "
                    f"| – | – | – | – | – | {extra['web_cpu_ms_per_login']:.3f} "
                    f"| {extra['floor_ms_per_login']:.3f} | {_fmt(extra['ratio'], 2)} "
                    f"| – | – | – | – | – | – | – |")
    rows.append(f"| empty Pyramid app | {_fmt(report['empty']['requests_per_s'])} | – | "
                f"{report['empty']['p50']} | {report['empty']['p95']} | {report['empty']['p99']} "
                f"| {empty:.3f} | – | – | – | – | – | – | {report['empty']['peak_rss_mib']:.0f} "
                f"| {report['empty']['errors']} | {report['empty']['loadgen_cpu_pct']:.0f} |")
    sync = report.get("sync")
    lines = ["\n".join(rows)]
    target = report.get("floor_target")
    if target:
        lines.append(
            f"\nfloor target: web CPU per request ≤ {target['target']:g} × (contract-minimum "
            "floor + empty Pyramid request): "
            + ("met by every scenario" if target["met"] else
               "missed by " + ", ".join(f"{name} {target['ratios'][name]:.2f}"
                                       for name in target["over"])))
    if sync and sync.get("events") is None:
        lines.append(
            "\n| sync | lag p50 ms | lag p99 ms (≤ 1000) | lag max ms |\n|---|---:|---:|---:|\n"
            f"| live, at the login load | {_fmt(sync['lag_p50_ms'])} "
            f"| {_fmt(sync['lag_p99_ms'])} | {_fmt(sync['lag_max_ms'])} |")
    elif sync:
        lines.append(
            "\n| sync | events | seconds | events/s per worker process | % of bare COPY "
            "floor (≥ 50) | lag p50 ms | lag p99 ms (≤ 1000) | lag max ms |\n"
            "|---|---:|---:|---:|---:|---:|---:|---:|\n"
            f"| drain backlog (bench/sync.py, median run) | {sync['events']} "
            f"| {sync['seconds']:.2f} "
            f"| {_fmt(sync['events_per_s'])} | {_fmt(sync.get('pct_of_floor'))} | – | – | – |\n"
            f"| live, at the login load | – | – | – | – | {_fmt(sync['lag_p50_ms'])} "
            f"| {_fmt(sync['lag_p99_ms'])} | {_fmt(sync['lag_max_ms'])} |")
    rounds = report.get("rounds") or []
    if rounds:
        after = [max(r["rss_after_mib"] for r in one.values()) for one in rounds]
        lines.append("\nweb process RSS after each round (MiB, largest worker): "
                     + ", ".join(f"{mib:.1f}" for mib in after)
                     + (f"; growth between the last two rounds {after[-1] - after[-2]:+.1f} MiB"
                        if len(after) > 1 else ""))
    machine = report.get("machine", {})
    lines.append(f"load average before/after: {machine.get('load_before', ['?'])[0]:.2f} / "
                 f"{machine.get('load_after', ['?'])[0]:.2f} on {machine.get('cpus')} CPUs "
                 f"(CPU per request is robust to contention; req/s and latencies are not)")
    return "\n".join(lines)


def _callback_and_token(report: dict, empty_ms: float) -> dict | None:
    """Callback and token cannot be driven alone; a redirect login less an
    authorize gives their mean cost per request (and the same for the floor)."""
    rows = report["scenarios"]
    login, start = rows.get("redirect login"), rows.get("authorize only")
    if not login or not start:
        return None
    cpu = (3 * login["web_cpu_ms_per_request"] - start["web_cpu_ms_per_request"]) / 2
    floor = (3 * login["floor_ms_per_request"] - start["floor_ms_per_request"]) / 2
    found = {"web_cpu_ms_per_request": cpu, "floor_ms_per_request": floor,
             "ratio": cpu / (floor + empty_ms)}
    if "contract_floor_ms_per_request" in login and "contract_floor_ms_per_request" in start:
        _against_contract(found, (3 * login["contract_floor_ms_per_request"]
                                  - start["contract_floor_ms_per_request"]) / 2, empty_ms)
    return found


def _against_contract(row: dict, contract_ms: float, empty_ms: float) -> None:
    """The row's contract-minimum floor (bench/contract_floor.py) and its ratio:
    the one the ≤ 3 target is judged on."""
    row["contract_floor_ms_per_request"] = contract_ms
    row["contract_ratio"] = (row["web_cpu_ms_per_request"] / (contract_ms + empty_ms)
                             if contract_ms + empty_ms else 0.0)


TARGET_RATIO = 3.0


def floor_target(report: dict) -> dict:
    """The floor target (docs/performance.md), judged on the contract-minimum floor:
    every scenario's and the derived callback + token's ratio ≤ 3."""
    rows = {name: row for name, row in report["scenarios"].items()
            if "contract_ratio" in row}
    derived = report.get("callback_and_token")
    if derived and "contract_ratio" in derived:
        rows["callback + token (derived)"] = derived
    ratios = {name: round(row["contract_ratio"], 2) for name, row in rows.items()}
    over = sorted(name for name, ratio in ratios.items() if ratio > TARGET_RATIO)
    return {"target": TARGET_RATIO, "ratios": ratios, "over": over, "met": not over}


def _oidc_over_redirect(report: dict) -> dict | None:
    """What OpenID Connect adds to a redirect login (ID token, at_hash, the
    user's overlay): the OIDC login less the plain one, per login (3 requests),
    for the service and for the floor. The difference is a few per cent of a
    login, less than the spread between rounds, so it is taken within each
    round (the two scenarios run one after the other) and the median of the
    rounds is the figure, not the difference of two best rounds."""
    plain, oidc = "redirect login", "OIDC redirect login"
    if plain not in report["scenarios"] or oidc not in report["scenarios"]:
        return None
    cpu = [3 * (r[oidc]["web_cpu_ms_per_request"] - r[plain]["web_cpu_ms_per_request"])
           for r in report["rounds"]]
    floor = [f["oidc_redirect"]["ms_per_login"] - f["redirect"]["ms_per_login"]
             for f in report["floor_rounds"]]
    cpu_ms, floor_ms = statistics.median(cpu), statistics.median(floor)
    return {"web_cpu_ms_per_login": cpu_ms, "floor_ms_per_login": floor_ms,
            "ratio": cpu_ms / floor_ms if floor_ms > 0 else None,
            "web_cpu_rounds": [round(x, 4) for x in cpu],
            "floor_rounds": [round(x, 4) for x in floor]}


def summarise(result: dict, floor_ms: float, empty_ms: float) -> dict:
    steps = result["steps"]
    requests = max(result["requests"], 1)
    whole = steps.get("iteration", {})
    per_req = result["web_cpu_ms_per_request"]
    seconds = result["seconds"]
    return {
        "requests_per_s": result["requests"] / seconds,
        "iterations_per_s": result["iterations"] / seconds,
        "p50": whole.get("p50"), "p95": whole.get("p95"), "p99": whole.get("p99"),
        "steps": steps,
        "web_cpu_ms_per_request": per_req,
        "floor_ms_per_request": floor_ms,
        "ratio": per_req / (floor_ms + empty_ms) if floor_ms + empty_ms else 0.0,
        "redis_rt_per_request": result.get("redis_rt", result["redis_reads"]) / requests,
        "redis_cmds_per_request": result.get("redis_cmd", result["redis_commands"]) / requests,
        "peak_rss_mib": max((m["peak_rss_mib"] for m in result["memory"].values()), default=0),
        "rss_after_mib": max((m["rss_mib"] for m in result["memory"].values()), default=0),
        "errors": result["errors"],
        "error_examples": result["error_examples"],
        "loadgen_cpu_pct": 100 * result["loadgen_cpu_s"] / seconds,
        "web_cpu_pct": 100 * result["web_cpu_s"] / seconds,
        **per_operation(result),
        "raw": result,
    }


def per_operation(result: dict) -> dict:
    """Per operation (one iteration: a login for the login scenarios, one
    request for the others): the CPU of each tier and what Redis and
    PostgreSQL did, the background taken out (``_less_background``)."""
    ops = max(result["iterations"], 1)
    pg = result.get("pg") or {"tables": {}, "commits": 0}
    tables = pg["tables"]

    def per(value: float | None, scale: float = 1.0) -> float | None:
        return None if value is None else value * scale / ops

    return {
        "ops_per_s": result["iterations"] / result["seconds"],
        "web_cpu_ms_per_op": per(result["web_cpu_s"], 1000),
        "redis_cpu_ms_per_op": per(result.get("redis_cpu_net_s"), 1000),
        "sync_worker_cpu_ms_per_op": per(result.get("sync_worker_cpu_net_s"), 1000),
        "pg_cpu_ms_per_op": per(result.get("pg_cpu_net_s"), 1000),
        "redis_cmds_per_op": per(result.get("redis_all_cmd")),
        "redis_bytes_in_per_op": per(result.get("redis_in")),
        "redis_bytes_out_per_op": per(result.get("redis_out")),
        "pg_rows_per_op": {name: {k: row[k] / ops for k in ("ins", "upd")}
                           for name, row in tables.items()},
        "pg_bytes_per_op": per(sum(row["bytes"] for row in tables.values())),
        "pg_commits_per_op": per(pg["commits"]),
    } | {"service_cpu_ms_per_op": service_table.service_total({
        tier: per(result.get(key), 1000) for tier, key in (
            ("web_cpu_ms_per_op", "web_cpu_s"), ("redis_cpu_ms_per_op", "redis_cpu_net_s"),
            ("sync_worker_cpu_ms_per_op", "sync_worker_cpu_net_s"),
            ("pg_cpu_ms_per_op", "pg_cpu_net_s"))})}


def service_only(topology: Topology, scenario: str, args: argparse.Namespace,
                 idle: dict[str, float]) -> dict:
    """A scenario of the whole-service table alone (no floor, no ratio):
    latencies, errors and the CPU of each tier per operation."""
    result = run_load(topology, scenario, args.users, args.warmup, args.duration)
    _less_background(result, idle)
    whole = result["steps"].get("iteration", {})
    return {"requests_per_s": result["requests"] / result["seconds"],
            "p50": whole.get("p50"), "p95": whole.get("p95"), "p99": whole.get("p99"),
            "web_cpu_ms_per_request": result["web_cpu_ms_per_request"],
            "errors": result["errors"], "error_examples": result["error_examples"],
            **per_operation(result), "raw": result}


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Bridgekeeper benchmark")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--server", choices=("granian", "gunicorn"), default="granian",
                        help="the web tier's WSGI server (saas-web, or gunicorn --paste)")
    parser.add_argument("--sync-events", type=int, default=100_000)
    parser.add_argument("--floor-iterations", type=int, default=2000)
    parser.add_argument("--only", action="append",
                        help="run only these scenarios: names separated by commas "
                        '(e.g. "redirect login,OIDC redirect login"); repeatable')
    parser.add_argument("--rounds", type=int, default=2,
                        help="run the scenarios this many times (memory growth check)")
    parser.add_argument("--topology", choices=TOPOLOGIES, default="single",
                        help="single: one redis-server (the default); cluster: the same "
                        "scenarios on one redis-server and then on a 3-primary Redis "
                        "Cluster, with a side-by-side table")
    parser.add_argument("--profile", help="py-spy the web workers into this folder (adds "
                        "CPU: figures of a profiled run are not comparable)")
    parser.add_argument("--no-sync", action="store_true", help="skip the backlog drain")
    parser.add_argument("--gate", action="store_true",
                        help="exit 1 when a scenario's web CPU per request is over 3 × "
                        "(contract-minimum floor + empty request)")
    parser.add_argument("--peer", action="store_true",
                        help="after our scenarios, run node oidc-provider on Redis "
                        "(bench.peer; needs bench/peer/node_modules) and print the ratio of "
                        "service CPU per operation")
    parser.add_argument("--smoke", action="store_true",
                        help="seconds-long run: tiny durations, no results file; fails on errors")
    parser.add_argument("--output",
                        help="results file (default bench/results/<date>-<commit>.json, "
                        "-run2 and on when taken)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.duration, args.warmup, args.sync_events = 1.0, 0.5, 2000
        args.floor_iterations, args.rounds = 100, 1
    try:
        args.scenarios = select_scenarios(args.only)
        args.service_scenarios = select_service_scenarios(args.only)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def measure(args: argparse.Namespace, store: str) -> dict:
    """Every chosen scenario, ``args.rounds`` times, on one topology."""
    scenarios = args.scenarios
    report: dict = {"started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    "commit": _commit(), "machine": {"cpus": os.cpu_count(),
                                                     "python": platform.python_version(),
                                                     "load_before": os.getloadavg()},
                    "settings": {k: getattr(args, k) for k in (
                        "duration", "warmup", "users", "workers", "threads", "sync_events",
                        "server")},
                    "store": store, "scenarios": {}, "rounds": []}
    with running(workers=args.workers, threads=args.threads, store=store,
                 server=args.server) as topology:
        report["redis_url"] = topology.redis_url
        report["redis_pids"] = topology.redis_pids
        report["stream_shards"] = _layout(topology).shards
        _wait_for_sync_worker(topology)
        floor_rounds: list[dict] = []
        contract_rounds: list[dict] = []
        idle = _idle_rates(topology, 1.0 if args.smoke else 3.0)
        report["redis_background_per_s"] = idle
        lags = []
        empties = []
        best: dict[str, dict] = {}
        service_best: dict[str, dict] = {}  # the service-only scenarios' best rounds
        for _round in range(args.rounds):
            this_round = {}
            # The reference is measured in every round too, beside the scenarios.
            empties.append(run_load(topology, "empty", args.users, args.warmup, args.duration,
                                    "empty"))
            empty_ms = empties[-1]["web_cpu_ms_per_request"]
            floor_rounds.append(floors.measure(topology, iterations=args.floor_iterations))
            floor = floor_rounds[-1]
            contract_rounds.append(contract_floor.measure(topology, args.floor_iterations))
            for name, (scenario, _per_iter, floor_name) in scenarios.items():
                result = run_load(topology, scenario, args.users, args.warmup, args.duration,
                                  lag=scenario in LOGIN_SCENARIOS, profile=args.profile)
                _less_background(result, idle)
                row = summarise(result, floor[floor_name]["ms_per_request"], empty_ms)
                _against_contract(row, contract_rounds[-1][floor_name]["ms_per_request"],
                                  empty_ms)
                this_round[name] = row
                if result.get("sync_lag_ms"):
                    lags.append(result["sync_lag_ms"])
                print(f"  [{store}] {name}: {row['requests_per_s']:.0f} req/s, "
                      f"{row['web_cpu_ms_per_request']:.3f} ms CPU/req, "
                      f"ratio {row['ratio']:.2f} (contract {row['contract_ratio']:.2f}), "
                      f"errors {row['errors']}", file=sys.stderr)
            report["rounds"].append({name: {"rss_after_mib": row["rss_after_mib"],
                                            "web_cpu_ms_per_request":
                                            row["web_cpu_ms_per_request"]}
                                     for name, row in this_round.items()})
            for name, row in this_round.items():
                if name not in best or (row["web_cpu_ms_per_request"]
                                        < best[name]["web_cpu_ms_per_request"]):
                    best[name] = row
            for name, scenario in args.service_scenarios.items():
                row = service_only(topology, scenario, args, idle)
                print(f"  [{store}] {name}: {row['ops_per_s']:.0f} ops/s, service "
                      f"{service_table.fmt(row['service_cpu_ms_per_op'])} ms CPU/op, "
                      f"errors {row['errors']}", file=sys.stderr)
                if name not in service_best or (
                        (row["service_cpu_ms_per_op"] or float("inf"))
                        < (service_best[name]["service_cpu_ms_per_op"] or float("inf"))):
                    service_best[name] = row
        # Each figure is its best round: contention from other processes on a
        # shared machine only ever adds CPU time (both rounds are in "rounds").
        report["empty_rounds_ms"] = [e["web_cpu_ms_per_request"] for e in empties]
        empty = min(empties, key=lambda e: e["web_cpu_ms_per_request"])
        empty_ms = empty["web_cpu_ms_per_request"]
        report["empty_request_ms"] = empty_ms
        report["empty"] = summarise(empty, 0.0, empty_ms)
        # The floor too: its best round, per scenario.
        report["floor_rounds"] = floor_rounds
        report["floor"] = {name: min((r[name] for r in floor_rounds),
                                     key=lambda f: f["ms_per_request"])
                           for name in floor_rounds[0]}
        report["contract_floor_rounds"] = contract_rounds
        report["contract_floor"] = {name: min((r[name] for r in contract_rounds),
                                              key=lambda f: f["ms_per_request"])
                                    for name in contract_rounds[0]}
        for name, row in best.items():
            floor_ms = report["floor"][scenarios[name][2]]["ms_per_request"]
            row["floor_ms_per_request"] = floor_ms
            row["ratio"] = row["web_cpu_ms_per_request"] / (floor_ms + empty_ms)
            _against_contract(row, report["contract_floor"][scenarios[name][2]]
                              ["ms_per_request"], empty_ms)
        report["scenarios"] = {name: best[name] for name in scenarios}
        report["service_only"] = service_best
        report["callback_and_token"] = _callback_and_token(report, empty_ms)
        report["floor_target"] = floor_target(report)
        report["oidc_over_redirect"] = _oidc_over_redirect(report)
        report["rss_after_mib"] = {str(p): process_memory(p)
                                   for p in _web_pids(topology, "web")[1]}
        report["pg_row_bytes"] = _pg_row_bytes(topology)
    worst = max(lags, key=lambda lag: lag["p99"]) if lags else {}
    report["lag"] = {"lag_p50_ms": worst.get("p50"), "lag_p99_ms": worst.get("p99"),
                     "lag_max_ms": worst.get("max")}
    report["machine"]["load_after"] = os.getloadavg()
    return report


def run_the_peer(report: dict, args: argparse.Namespace) -> None:
    """node oidc-provider on Redis, after our scenarios (never alongside: our
    topology is stopped by then), the same load; ratios into the report."""
    from bench.peer import run_peer

    load_before = os.getloadavg()
    operations = run_peer(args.duration, args.warmup, args.users)
    report["peer"] = {"operations": operations, "load_before": load_before,
                      "load_after": os.getloadavg()}
    report["peer_ratios"] = service_table.peer_ratios(report, operations)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    report = measure(args, "single")
    sync = {"events": 0, "seconds": 0.0, "events_per_s": None, "drain_cpu_s": 0.0,
            "all_landed": True} if args.no_sync else run_sync(args.sync_events,
                                                              1 if args.smoke else 3)
    sync.update(report.pop("lag"))
    report["sync"] = sync
    runs = [report]
    if args.topology == "cluster":
        report["cluster"] = measure(args, "cluster")
        # The backlog drain (bench/sync.py) is the single topology's alone.
        report["cluster"]["sync"] = {"events": None, "all_landed": True,
                                     **report["cluster"].pop("lag")}
        runs.append(report["cluster"])
        report["comparison"] = compare.comparison(report, report["cluster"])
    if args.peer:
        run_the_peer(report, args)
    report["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    report["machine"]["load_after"] = os.getloadavg()
    print(table(report))
    print("\n### Whole service, CPU per operation (ms; each tier less its background; "
          "PostgreSQL: the bench database's backends)\n")
    print(service_table.table(report))
    report["live_sync"] = service_table.live_sync(report)
    if report["live_sync"]:
        print("\n### The sync at the benchmark's load, per login event (workers and "
              "PostgreSQL over the windows, idle time included; the backlog: the median "
              "drain above)\n")
        print(service_table.live_sync_table(report["live_sync"]))
    if args.topology == "cluster":
        cluster = report["cluster"]
        print(f"\n### The same scenarios on a Redis Cluster ({len(cluster['redis_pids'])} "
              f"primaries, {cluster['stream_shards']} event stream shards; the Celery broker "
              f"stays the single topology's)\n")
        print(table(cluster))
        print("\n### Single Redis against Redis Cluster, CPU per operation\n")
        print(compare.comparison_table(report["comparison"]))
    print("\n### Per operation: Redis, PostgreSQL and worker (capacity figures)\n")
    print(compare.capacity_table(runs))
    if args.peer:
        peer = report["peer"]
        print(f"\n### Against node oidc-provider on Redis (run after ours; load average "
              f"{peer['load_before'][0]:.2f} / {peer['load_after'][0]:.2f})\n")
        print(service_table.peer_table(report["peer_ratios"]))
    errors = sum(sum(row["errors"] for row in run["scenarios"].values()) + run["empty"]["errors"]
                 + sum(row["errors"] for row in run.get("service_only", {}).values())
                 for run in runs)
    errors += sum(row["errors"] for row in report.get("peer", {}).get("operations", {}).values())
    if not args.smoke or args.output:
        path = args.output or unused_results_path(os.path.join(
            ROOT, "bench", "results",
            f"{dt.date.today().isoformat()}-{re.sub(r'[^0-9a-z]', '', report['commit'])}"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            json.dump(report, handle, indent=1, default=str)
        print(f"\nresults: {os.path.relpath(path, ROOT)}")
    if errors:
        print(f"\n{errors} errors: see error_examples in the results", file=sys.stderr)
        return 1
    if not sync["all_landed"]:
        return 1
    if args.gate and not all(run["floor_target"]["met"] for run in runs):
        print("the floor target is missed (see the line under the table)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
