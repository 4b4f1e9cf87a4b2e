"""CPU of the processes a sync measurement counts, from ``/proc``.

* a process with its descendants (a Celery worker and its embedded beat),
* PostgreSQL: the backends serving one database. The machine's PostgreSQL is
  shared (tests and other benchmarks use it at the same time), so only the
  backends connected to the benchmark's own scratch database count; the
  server's auxiliary processes (WAL writer, checkpointer, background writer)
  serve every database and are left out. A backend that exits inside a
  window takes its CPU with it: the measured drains keep their connections.
"""

from __future__ import annotations

import contextlib

import psycopg

from bench.probes import children, process_cpu


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its live descendants (0 once gone)."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            total += process_cpu(current)
        except (OSError, ValueError, IndexError):  # exited meanwhile
            continue
        pending.extend(children(current))
    return total


class PostgresCPU:
    """CPU seconds of the backends of one database, summed over a window."""

    def __init__(self, admin_dsn: str, database: str) -> None:
        self.admin_dsn = admin_dsn
        self.database = database

    def backends(self) -> list[int]:
        with psycopg.connect(self.admin_dsn, autocommit=True) as admin:
            rows = admin.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s",
                                 (self.database,)).fetchall()
        return [pid for (pid,) in rows]

    def snapshot(self) -> dict[int, float]:
        found = {}
        for pid in self.backends():
            with contextlib.suppress(OSError, ValueError, IndexError):  # exited meanwhile
                found[pid] = process_cpu(pid)
        return found

    @staticmethod
    def spent(before: dict[int, float], after: dict[int, float]) -> float:
        """CPU seconds between two snapshots (backends new in ``after`` count whole)."""
        return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())
