"""What the runner reads from outside the processes it measures.

* CPU time and memory of a process from ``/proc`` (``utime + stime``, which
  includes exited threads; ``VmRSS`` and the peak ``VmHWM``),
* Redis counters (``INFO stats``): read events ≈ round trips, and commands
  (including the ones Lua scripts run),
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


def redis_counters(client) -> dict[str, int]:
    """Read events and commands of the web tier so far (the drain's and this
    probe's own taken out by command type)."""
    stats = client.info("stats")
    calls = {name.removeprefix("cmdstat_"): int(value["calls"])
             for name, value in client.info("commandstats").items()}
    return {"reads": int(stats["total_reads_processed"])
            - sum(calls.get(c, 0) for c in NOT_WEB_READS),
            "commands": int(stats["total_commands_processed"])
            - sum(calls.get(c, 0) for c in NOT_WEB_COMMANDS)}


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
            heads = [int(first[0][0].split(b"-")[0]) for first in pipe.execute() if first]
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
