"""Waiting in tests: follow progress, not the clock.

On a busy machine everything takes longer, so a fixed short deadline fails
tests that were only waiting. These helpers wait for as long as the awaited
thing makes progress — a process (with its children) uses CPU, a log grows, a
count moves — and fail when progress stops for ``STALL_SECONDS``, or in any
case after ``CAP_SECONDS``. A hang is still a failure, only not a slow start.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterable
from typing import Any

from bench.service_cpu import tree_cpu

STALL_SECONDS = 60.0  # no progress at all for this long: a hang
CAP_SECONDS = 600.0  # and nothing a test waits for may take longer in all
# One HTTP request to a server of the test's own: generous, it is not a wait
# for progress (the request either completes or the server is stuck).
REQUEST_SECONDS = 120.0


def processes(*popens: subprocess.Popen | int) -> Callable[[], tuple[float, ...]]:
    """Progress of processes: their trees' CPU time."""
    pids = [p if isinstance(p, int) else p.pid for p in popens]
    return lambda: tuple(tree_cpu(pid) for pid in pids)


def combined(*probes: Callable[[], Any]) -> Callable[[], tuple]:
    return lambda: tuple(probe() for probe in probes)


def wait_until(done: Callable[[], Any], what: str, *,
               progress: Callable[[], Any] | None = None,
               stall: float = STALL_SECONDS, cap: float = CAP_SECONDS,
               interval: float = 0.05, describe: Callable[[], str] | None = None) -> Any:
    """Poll ``done()`` until it returns something true, and return that.

    Fails when ``progress()`` (any snapshot that changes while the awaited
    thing advances) stayed the same for ``stall`` seconds, or after ``cap``
    seconds; without ``progress`` only the cap applies.
    """
    start = changed = time.monotonic()
    seen = progress() if progress is not None else None
    while not (result := done()):
        now = time.monotonic()
        if progress is not None and (current := progress()) != seen:
            seen, changed = current, now
        stuck = progress is not None and now - changed > stall
        if stuck or now - start > cap:
            why = f"no progress for {stall:.0f} s" if stuck else f"not within {cap:.0f} s"
            raise AssertionError(f"no {what}: {why}" + (f"\n{describe()}" if describe else ""))
        time.sleep(interval)
    return result


def finish(process: subprocess.Popen, what: str, *, progress: Callable[[], Any] | None = None,
           stall: float = STALL_SECONDS, cap: float = CAP_SECONDS,
           input: Any = None) -> tuple[Any, Any]:
    """``process.communicate(input)`` for as long as the process (and its
    children) use CPU, or ``progress`` changes; the process is killed when it hangs."""
    progress = progress or processes(process)
    start = changed = time.monotonic()
    seen = progress()
    while True:
        try:
            return process.communicate(input, timeout=1)
        except subprocess.TimeoutExpired:
            input = None  # sent: a retried communicate() goes on where it stopped
            now = time.monotonic()
            if (current := progress()) != seen:
                seen, changed = current, now
            if now - changed > stall or now - start > cap:
                process.kill()
                out, err = process.communicate()
                raise AssertionError(f"{what} hung (no progress for {now - changed:.0f} s, "
                                     f"{now - start:.0f} s in all)\n{out or ''}\n{err or ''}"
                                     ) from None


def run(argv: Iterable[str], what: str | None = None, *, stall: float = STALL_SECONDS,
        cap: float = CAP_SECONDS, **popen: Any) -> subprocess.CompletedProcess:
    """``subprocess.run`` (``capture_output``, ``text``, ``check`` as given)
    without a fixed timeout: it waits while the command makes progress."""
    argv = list(argv)
    check = popen.pop("check", False)
    input_ = popen.pop("input", None)
    if input_ is not None:
        popen.setdefault("stdin", subprocess.PIPE)
    if popen.pop("capture_output", False):
        popen.setdefault("stdout", subprocess.PIPE)
        popen.setdefault("stderr", subprocess.PIPE)
    process = subprocess.Popen(argv, **popen)
    out, err = finish(process, what or " ".join(argv), stall=stall, cap=cap, input=input_)
    done = subprocess.CompletedProcess(argv, process.returncode, out, err)
    if check:
        done.check_returncode()
    return done
