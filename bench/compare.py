"""The tables of ``bench.run`` beside its first one: single Redis against
Redis Cluster (``--topology cluster``), and what one operation costs each
engine (the capacity model's figures, docs/operations.md).

An operation is one iteration of a scenario: a login for the login
scenarios, one request for the others. "Service CPU" is what the service's
own processes spend on it: web workers + Redis (every node of a cluster) +
the sync worker, each less its background with no load. The sync worker's
share depends on how full its batches are (the lag), not only on the store,
so the table gives the ratio without it too.
"""

from __future__ import annotations

TARGET_RATIO = 1.3  # issue #18: the cluster's service CPU per login ≤ 1.3 × the single node's
TIERS = ("web_cpu_ms_per_op", "redis_cpu_ms_per_op", "sync_worker_cpu_ms_per_op")


def service_cpu(row: dict, tiers: tuple[str, ...] = TIERS) -> float | None:
    """Web + Redis + sync worker CPU ms per operation (None if a tier is unmeasured)."""
    parts = [row.get(tier) for tier in tiers]
    return None if any(part is None for part in parts) else sum(parts)


def _ratio(sides: dict, key: str) -> float | None:
    base, new = sides["single"][key], sides["cluster"][key]
    return new / base if base and new is not None else None


def comparison(single: dict, cluster: dict) -> dict[str, dict]:
    """Per scenario run on both topologies: each tier's CPU per operation,
    the operations per second and the ratio cluster / single of service CPU."""
    found = {}
    for name, one in single["scenarios"].items():
        other = cluster["scenarios"].get(name)
        if other is None:
            continue
        sides = {}
        for side, row in (("single", one), ("cluster", other)):
            sides[side] = {key: row.get(key) for key in ("ops_per_s", *TIERS)}
            sides[side]["service_cpu_ms_per_op"] = service_cpu(row)
            sides[side]["web_redis_cpu_ms_per_op"] = service_cpu(row, TIERS[:2])
        found[name] = {**sides, "ratio": _ratio(sides, "service_cpu_ms_per_op"),
                       "web_redis_ratio": _ratio(sides, "web_redis_cpu_ms_per_op")}
    return found


def _num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def comparison_table(rows: dict[str, dict]) -> str:
    lines = ["| scenario | ops/s single | ops/s cluster | web CPU ms/op single | cluster "
             "| Redis CPU ms/op single | cluster (3 nodes) | sync worker CPU ms/op single "
             "| cluster | service CPU ms/op single | cluster "
             f"| cluster / single (≤ {TARGET_RATIO}) | web + Redis only: cluster / single |",
             "|---|" + "---:|" * 12]
    for name, row in rows.items():
        one, other = row["single"], row["cluster"]
        cells = [_num(one["ops_per_s"], 0), _num(other["ops_per_s"], 0)]
        for key in (*TIERS, "service_cpu_ms_per_op"):
            cells += [_num(one[key]), _num(other[key])]
        cells += [_num(row["ratio"], 2), _num(row["web_redis_ratio"], 2)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _rows_of(row: dict, table: str) -> tuple[float, float]:
    rows = row.get("pg_rows_per_op", {}).get(table, {})
    return rows.get("ins", 0.0), rows.get("upd", 0.0)


def capacity_table(runs: list[dict]) -> str:
    """One line per topology and scenario: Redis commands and bytes, the
    PostgreSQL rows, bytes and commits, and the sync worker's CPU, per
    operation; then the stored size of an audit row and a user row."""
    lines = ["| store | scenario | ops/s | Redis cmds/op | Redis bytes in/op "
             "| Redis bytes out/op | audit rows/op | user rows ins + upd/op "
             "| PG bytes/op | PG commits/op | sync worker CPU ms/op |",
             "|---|---|" + "---:|" * 9]
    for run in runs:
        for name, row in run["scenarios"].items():
            audit, _ = _rows_of(row, "audit_events")
            user_ins, user_upd = _rows_of(row, "end_users")
            lines.append(
                f"| {run.get('store', 'single')} | {name} | {_num(row.get('ops_per_s'), 0)} "
                f"| {_num(row.get('redis_cmds_per_op'), 1)} "
                f"| {_num(row.get('redis_bytes_in_per_op'), 0)} "
                f"| {_num(row.get('redis_bytes_out_per_op'), 0)} | {audit:.2f} "
                f"| {user_ins:.2f} + {user_upd:.2f} | {_num(row.get('pg_bytes_per_op'), 0)} "
                f"| {_num(row.get('pg_commits_per_op'), 3)} "
                f"| {_num(row.get('sync_worker_cpu_ms_per_op'))} |")
    sizes = runs[0].get("pg_row_bytes") or {}
    if sizes:
        lines.append("\nstored size at the end of the run (tables + indexes + TOAST): "
                     + "; ".join(f"{name} {info['rows']:,} rows, "
                                 f"{_num(info['bytes_per_row'], 0)} bytes/row"
                                 for name, info in sizes.items()))
    return "\n".join(lines)
