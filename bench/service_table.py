"""The whole service per operation (issue #19), and its ratio to the peer.

An operation is one iteration of a scenario: a login for the login
scenarios, one request for the others. Service CPU is what every process
the service needs spends on it over the same measured window: the gunicorn
web workers, Redis (every node of a cluster), the Celery worker (with its
embedded beat) and the PostgreSQL backends of the bench's own database,
each less its background with no load (``bench.run._less_background``).
The tenant's endpoint is not the service: its CPU is never counted.

With ``--peer``, node oidc-provider on Redis (``bench.peer``) is measured
after our scenarios and each of its operations is set against ours:
service CPU ours ÷ peer's (node + its Redis), per operation.
"""

from __future__ import annotations

TIERS = ("web_cpu_ms_per_op", "redis_cpu_ms_per_op", "sync_worker_cpu_ms_per_op",
         "pg_cpu_ms_per_op")
# Peer operation -> our scenario measuring the same thing. The login: ours is
# authorize + callback + token (three requests; the tenant's CPU left out),
# the peer's its four requests with no tenant at all.
PEER_PAIRS = {"exchange": "code exchange", "refresh": "refresh", "me": "/me",
              "login": "redirect login"}


def service_total(row: dict) -> float | None:
    """Web + Redis + workers + PostgreSQL CPU ms per operation (None if a tier is unmeasured)."""
    parts = [row.get(tier) for tier in TIERS]
    return None if any(part is None for part in parts) else sum(parts)


def fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def rows_of(report: dict) -> dict[str, dict]:
    """Every scenario of the run with per-operation figures, the table's
    scenarios first, then the service-only ones (the code exchange)."""
    return {**report.get("scenarios", {}), **report.get("service_only", {})}


def table(report: dict) -> str:
    """Scenario, ops/s, each tier's CPU ms/op, the service total, and the
    web CPU per request of the first table beside it."""
    lines = ["| scenario | ops/s | web | Redis | workers | PostgreSQL "
             "| **service total** ms/op | web CPU ms/req (first table) | requests/op |",
             "|---|" + "---:|" * 8]
    for name, row in rows_of(report).items():
        raw = row.get("raw", {})
        per_op = raw.get("requests", 0) / raw["iterations"] if raw.get("iterations") else None
        cells = [fmt(row.get("ops_per_s"), 0), *(fmt(row.get(tier)) for tier in TIERS),
                 f"**{fmt(row.get('service_cpu_ms_per_op'))}**",
                 fmt(row.get("web_cpu_ms_per_request")), fmt(per_op, 0)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def peer_ratios(report: dict, peer: dict[str, dict]) -> dict[str, dict]:
    """Per peer operation with a counterpart measured in this run: both
    service CPU figures per operation and ours ÷ the peer's."""
    rows = rows_of(report)
    found = {}
    for operation, ours_name in PEER_PAIRS.items():
        theirs, ours = peer.get(operation), rows.get(ours_name)
        if theirs is None or ours is None:
            continue
        mine, their_total = ours.get("service_cpu_ms_per_op"), theirs["cpu_ms_per_op"]["total"]
        found[operation] = {
            "label": theirs["label"], "scenario": ours_name,
            "ours_ms_per_op": mine,
            "ours_tiers": {tier: ours.get(tier) for tier in TIERS},
            "ours_ops_per_s": ours.get("ops_per_s"),
            "peer_ms_per_op": their_total, "peer_ops_per_s": theirs["ops_per_s"],
            "peer_tiers": dict(theirs["cpu_ms_per_op"]),
            "ratio": mine / their_total if mine is not None and their_total else None}
    return found


def peer_table(ratios: dict[str, dict]) -> str:
    lines = ["| operation | ours: scenario | ours: service CPU ms/op (web / Redis / workers "
             "/ PostgreSQL) | oidc-provider on Redis: ms/op (node / Redis) "
             "| **ours ÷ peer** (≤ 1.0) |",
             "|---|---|---:|---:|---:|"]
    for row in ratios.values():
        tiers = " / ".join(fmt(row["ours_tiers"][tier], 2) for tier in TIERS)
        peer = row["peer_tiers"]
        lines.append(f"| {row['label']} | {row['scenario']} | {fmt(row['ours_ms_per_op'], 2)} "
                     f"({tiers}) | {fmt(row['peer_ms_per_op'], 2)} "
                     f"({fmt(peer.get('node'), 2)} / {fmt(peer.get('redis'), 2)}) "
                     f"| **{fmt(row['ratio'], 2)}** |")
    return "\n".join(lines)


def live_sync(report: dict) -> dict[str, dict]:
    """The sync at the benchmark's own load (issue #19, "Live sync"): for
    each scenario that appended login events, the Celery worker's and
    PostgreSQL's CPU per event over its windows — whole, idle time included —
    and that as a multiple of the backlog drain's, measured in the same run
    (bench/sync.py's median run: drain process + PostgreSQL)."""
    sync = report.get("sync") or {}
    if not sync.get("events") or sync.get("pg_cpu_s") is None:
        return {}
    backlog_us = (sync["drain_cpu_s"] + sync["pg_cpu_s"]) * 1e6 / sync["events"]
    found = {}
    for name, row in rows_of(report).items():
        raw = row.get("raw", {})
        events = raw.get("events") or 0
        if not events or raw.get("pg_cpu_s") is None:
            continue
        live_us = (raw["sync_worker_cpu_s"] + raw["pg_cpu_s"]) * 1e6 / events
        found[name] = {"events_per_s": events / raw["seconds"], "live_us_per_event": live_us,
                       "backlog_us_per_event": backlog_us, "ratio": live_us / backlog_us}
    return found


def live_sync_table(rows: dict[str, dict]) -> str:
    lines = ["| scenario | events/s | workers + PostgreSQL µs/event | backlog µs/event "
             "| **× backlog** (≤ 2) |", "|---|---:|---:|---:|---:|"]
    for name, row in rows.items():
        lines.append(f"| {name} | {fmt(row['events_per_s'], 0)} "
                     f"| {fmt(row['live_us_per_event'], 0)} "
                     f"| {fmt(row['backlog_us_per_event'], 0)} | **{fmt(row['ratio'], 2)}** |")
    return "\n".join(lines)
