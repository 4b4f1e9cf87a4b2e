"""What the runner reads from outside the processes it measures.

* CPU time and memory of a process from ``/proc`` (``utime + stime``, which
  includes exited threads; ``VmRSS`` and the peak ``VmHWM``),
* Redis counters (``INFO stats``, ``INFO commandstats``), summed over every
  node of a cluster: read events ≈ round trips, commands (including the ones
  Lua scripts run), bytes in and out, calls per command,
* PostgreSQL counters of one database (``pg_stat_user_tables``, the relations'
  sizes, ``pg_stat_database`` commits): rows and bytes the drain writes,
* the sync lag, from the event stream itself: entries are deleted once their
  batch is committed to PostgreSQL, so the oldest entry left marks the frontier
  of what is already in PostgreSQL.
"""

from __future__ import annotations

import os
import threading
import time

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def process_memory(pid: int) -> dict[str, float]:
    """Resident and peak resident memory, MiB."""
    found = {}
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(value.split()[0]) / 1024
    return {"rss_mib": round(found.get("VmRSS", 0), 1),
            "peak_rss_mib": round(found.get("VmHWM", 0), 1)}


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(p) for p in handle.read().split()]
    except FileNotFoundError:
        return []


# Commands only the sync drain (and the lag probe) send, never the login
# path: each XAUTOCLAIM, XREADGROUP and acknowledgement (one XACK per MULTI)
# is one read event of its own. The drain blocks on XREADGROUP, so its reads
# grow with the login load; they are counted here and taken out.
NOT_WEB_READS = ("xautoclaim", "xreadgroup", "xack", "xrange", "info")
NOT_WEB_COMMANDS = (*NOT_WEB_READS, "xdel", "multi", "exec")


# The benchmark's own probes (this module's INFO, the lag probe's XRANGE):
# left out of "every command".
PROBE_COMMANDS = ("xrange", "info")


def redis_counters(clients) -> dict:
    """Counters so far, summed over ``clients`` (one client, or one per node
    of a cluster).

    ``reads`` and ``commands`` are the web tier's (the drain's and the
    probes' own taken out by command type); ``all_commands`` counts the
    drain's too (every command a login causes, less the probes'); ``net_in``
    and ``net_out`` are every client's bytes; ``calls`` is per command.
    """
    totals = {"reads": 0, "commands": 0, "all_commands": 0, "net_in": 0, "net_out": 0}
    every: dict[str, int] = {}
    for client in clients if isinstance(clients, list | tuple) else [clients]:
        stats = client.info("stats")
        calls = {name.removeprefix("cmdstat_"): int(value["calls"])
                 for name, value in client.info("commandstats").items()}
        commands = int(stats["total_commands_processed"])
        totals["reads"] += int(stats["total_reads_processed"]) - sum(
            calls.get(c, 0) for c in NOT_WEB_READS)
        totals["commands"] += commands - sum(calls.get(c, 0) for c in NOT_WEB_COMMANDS)
        totals["all_commands"] += commands - sum(calls.get(c, 0) for c in PROBE_COMMANDS)
        totals["net_in"] += int(stats["total_net_input_bytes"])
        totals["net_out"] += int(stats["total_net_output_bytes"])
        for name, count in calls.items():
            every[name] = every.get(name, 0) + count
    return {**totals, "calls": every}


def counter_delta(before: dict, after: dict) -> dict:
    """``after - before`` for the flat counters and, per name, for ``calls``."""
    delta = {k: after[k] - before[k] for k in before if k != "calls"}
    delta["calls"] = {name: count - before["calls"].get(name, 0)
                      for name, count in after["calls"].items()
                      if count != before["calls"].get(name, 0)}
    return delta


_PG_TABLES = """
SELECT coalesce(parent.relname, c.relname),
       sum(s.n_tup_ins)::bigint, sum(s.n_tup_upd)::bigint, sum(s.n_tup_del)::bigint,
       sum(pg_total_relation_size(c.oid))::bigint
  FROM pg_stat_user_tables s
  JOIN pg_class c ON c.oid = s.relid
  LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
  LEFT JOIN pg_class parent ON parent.oid = i.inhparent
 GROUP BY 1
"""


def pg_counters(connection) -> dict:
    """Rows inserted/updated/deleted and bytes (tables, indexes, TOAST) per
    table of the connected database, partitions counted under their parent,
    and the database's commits. ``connection`` is an autocommit psycopg
    connection (each read sees fresh statistics)."""
    tables = {name: {"ins": ins, "upd": upd, "del": dele, "bytes": size}
              for name, ins, upd, dele, size in connection.execute(_PG_TABLES)}
    commits = connection.execute("SELECT xact_commit FROM pg_stat_database "
                                 "WHERE datname = current_database()").fetchone()[0]
    return {"tables": tables, "commits": int(commits)}


def pg_delta(before: dict, after: dict) -> dict:
    tables = {}
    for name, row in after["tables"].items():
        old = before["tables"].get(name, {"ins": 0, "upd": 0, "del": 0, "bytes": 0})
        change = {k: row[k] - old[k] for k in row}
        if any(change.values()):
            tables[name] = change
    return {"tables": tables, "commits": after["commits"] - before["commits"]}


def resp_size(value) -> int:
    """Bytes of ``value`` in RESP2, as redis-py sends a command (a list of
    arguments) or parses a reply (a dict is the array of its pairs)."""
    if isinstance(value, dict):
        items = [part for pair in value.items() for part in pair]
        return len(f"*{len(items)}\r\n") + sum(resp_size(item) for item in items)
    if isinstance(value, list | tuple):
        return len(f"*{len(value)}\r\n") + sum(resp_size(item) for item in value)
    raw = value if isinstance(value, bytes) else str(value).encode()
    return len(f"${len(raw)}\r\n") + len(raw) + 2


class LagProbe:
    """Polls the oldest un-synced stream entry; turns the series into lag percentiles.

    At a poll at time T the frontier F is the oldest entry's time (or T when
    the stream is empty): every event appended before F is in PostgreSQL. An
    event appended at t therefore landed by the first poll whose frontier
    passed t. Under the benchmark's steady load events arrive evenly, so
    the lag distribution is taken over t on a 1 ms grid (resolution: the poll
    interval).
    """

    def __init__(self, client, streams: str | list[str], interval: float = 0.05) -> None:
        self.client = client
        # Every stream shard: the frontier is the oldest entry of them all.
        self.streams = [streams] if isinstance(streams, str) else list(streams)
        self.interval = interval
        self.samples: list[tuple[int, int]] = []  # (poll ms, frontier ms)
        # The probe's own traffic, taken out of the window's Redis bytes.
        self.bytes_in = 0
        self.bytes_out = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            pipe = self.client.pipeline(transaction=False)
            for stream in self.streams:
                pipe.xrange(stream, count=1)
                self.bytes_in += resp_size(["XRANGE", stream, "-", "+", "COUNT", 1])
            replies = pipe.execute()
            self.bytes_out += sum(resp_size(reply) for reply in replies)
            heads = [int(first[0][0].split(b"-")[0]) for first in replies if first]
            now = int(time.time() * 1000)
            frontier = min(heads, default=now)
            self.samples.append((now, min(frontier, now)))
            time.sleep(self.interval)

    def lag_percentiles(self, start_ms: int, end_ms: int) -> dict[str, float] | None:
        lags: list[int] = []
        polls = self.samples
        j = 0
        for t in range(start_ms, end_ms):
            while j < len(polls) and polls[j][1] <= t:
                j += 1
            if j == len(polls):
                return None  # never synced within the observation: report no figure
            lags.append(polls[j][0] - t)
        if not lags:
            return None
        lags.sort()
        return {f"p{q}": lags[min(len(lags) - 1, len(lags) * q // 100)] for q in (50, 99)} | {
            "max": lags[-1]}
