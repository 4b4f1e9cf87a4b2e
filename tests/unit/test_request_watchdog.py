"""The last resort against a stuck request (saas/request_watchdog.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

from saas.request_watchdog import EXIT_STUCK, RequestWatchdog


def test_only_a_request_over_the_timeout_counts_as_stuck():
    release = threading.Event()
    entered = threading.Event()

    def slow(environ, start_response):
        entered.set()
        release.wait(30)
        start_response("200 OK", [])
        return [b""]

    watchdog = RequestWatchdog(slow, timeout=5)
    thread = threading.Thread(target=watchdog, args=({"PATH_INFO": "/v1/apps/x/me"},
                                                     lambda *a: None))
    thread.start()
    try:
        assert entered.wait(30)
        started = min(s for s, _ in watchdog._running.values())
        assert watchdog.stuck(started + 4.9) is None
        assert watchdog.stuck(started + 5.1) == "/v1/apps/x/me"
    finally:
        release.set()
        thread.join(30)
    assert watchdog.stuck(started + 60) is None  # finished requests are forgotten


def test_a_stuck_request_ends_the_worker_with_a_redacted_log_line():
    # In a process of its own: the watchdog's answer is os._exit.
    script = textwrap.dedent("""
        import logging, sys, time
        from saas.request_watchdog import RequestWatchdog
        logging.basicConfig(stream=sys.stderr, format="%(message)s %(path)s")
        def hang(environ, start_response):
            time.sleep(60)
        RequestWatchdog(hang, timeout=0.2, interval=0.05).start()(
            {"PATH_INFO": "/dashboard/reset/secret-token"}, None)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == EXIT_STUCK, done.stderr
    assert "request watchdog" in done.stderr
    assert "/dashboard/reset/~" in done.stderr and "secret-token" not in done.stderr


def test_a_worker_whose_master_is_gone_is_an_orphan_only_between_requests():
    watchdog = RequestWatchdog(lambda environ, start_response: [b""], timeout=30)
    assert not watchdog.orphaned()  # its parent is the one it started with
    watchdog.parent = -1  # as after the master died and the worker was re-parented
    assert watchdog.orphaned()
    watchdog._running[1] = (0.0, "/v1/apps/x/me")  # a request still running finishes first
    assert not watchdog.orphaned()
