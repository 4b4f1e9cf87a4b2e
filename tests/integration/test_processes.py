"""The production commands start, answer, and refuse to start without their secrets.

``saas-web production.ini`` (and ``gunicorn --paste production.ini``) and
``celery -A workers worker`` run as real
subprocesses from the repository root, configured only through the environment
(DESIGN §8.2, §11). Each runs in its own process group, every wait is bounded,
and the group is killed in a ``finally`` so no process outlives its test.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import IO

import pytest
import redis

from tests.waiting import REQUEST_SECONDS, processes, wait_until

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(sys.prefix, "bin")
CONFIG_VARIABLES = (
    "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_ALWAYS_EAGER",
    "SAAS_MASTER_KEY", "SAAS_MASTER_KEY_PREVIOUS", "SAAS_PUBLIC_BASE_URL",
    "SAAS_REDIS_PREFIX", "SAAS_SECURE_COOKIES", "SAAS_CONFIG",
)
STOP_SECONDS = 10  # after SIGTERM, before SIGKILL (teardown, nothing asserted)


@dataclass
class Process:
    popen: subprocess.Popen
    stdout: IO[str]
    stderr: IO[str]

    def output(self) -> tuple[str, str]:
        return _read(self.stdout), _read(self.stderr)

    def progress(self) -> tuple:
        """CPU time and output sizes (fstat: reading would move the shared offset)."""
        return (*processes(self.popen)(), os.fstat(self.stdout.fileno()).st_size,
                os.fstat(self.stderr.fileno()).st_size)

    def describe(self) -> str:
        out, err = self.output()
        status = self.popen.poll()
        return f"exit status {status}\n--- stdout\n{out[-3000:]}\n--- stderr\n{err[-3000:]}"


def _read(stream: IO[str]) -> str:
    stream.flush()
    stream.seek(0)
    return stream.read()


@contextmanager
def spawn(args: list[str], env: dict[str, str]) -> Iterator[Process]:
    """Run a command in its own process group; always stop the whole group."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        popen = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=out, stderr=err, start_new_session=True
        )
        try:
            yield Process(popen, out, err)
        finally:
            _stop_group(popen)


def _stop_group(popen: subprocess.Popen) -> None:
    """SIGTERM the group we started (a graceful stop), then SIGKILL what is left."""
    if popen.poll() is None:
        with suppress(ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(popen.pid, signal.SIGTERM)
            popen.wait(timeout=STOP_SECONDS)
    # Whatever is left of the group (a child that ignored SIGTERM) goes now.
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, signal.SIGKILL)
    with suppress(subprocess.TimeoutExpired):
        popen.wait(timeout=STOP_SECONDS)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, process: Process, what: str):
    """Poll ``predicate`` until it returns a true value, for as long as the
    process makes progress; fail at once if it dies."""
    def done():
        if (result := predicate()) or process.popen.poll() is None:
            return result
        pytest.fail(f"exited before {what}: {process.describe()}")

    return wait_until(done, what, progress=process.progress, interval=0.2,
                      describe=process.describe)


def get_json(url: str) -> tuple[int, dict] | None:
    try:
        with urllib.request.urlopen(url, timeout=REQUEST_SECONDS) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")
    except OSError:
        return None


@pytest.fixture
def production_env(app_settings) -> dict[str, str]:
    """The environment production.ini needs, and nothing inherited that could mask it."""
    env = {k: v for k, v in os.environ.items() if k not in CONFIG_VARIABLES}
    env.update(
        # The spelling operators use; the service picks the psycopg 3 driver.
        DATABASE_URL=app_settings["sqlalchemy.url"].replace(
            "postgresql+psycopg://", "postgresql://", 1
        ),
        REDIS_URL=app_settings["redis.url"],
        CELERY_BROKER_URL=app_settings["celery.broker_url"],
        SAAS_MASTER_KEY=app_settings["saas.master_key"],
        SAAS_PUBLIC_BASE_URL="http://bk.test",
        SAAS_REDIS_PREFIX=app_settings["saas.redis_prefix"],
        WEB_CONCURRENCY="1",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def unique_queue(app_settings) -> Iterator[str]:
    queue = f"bk-test-{uuid.uuid4().hex}"
    yield queue
    client = redis.Redis.from_url(app_settings["celery.broker_url"])
    for key in client.scan_iter(match=f"*{queue}*"):
        client.delete(key)
    client.close()


def gunicorn_command(port: int) -> list[str]:
    return [os.path.join(BIN, "gunicorn"), "--paste", "production.ini", "-b", f"127.0.0.1:{port}"]


def saas_web_command(port: int) -> list[str]:
    return [os.path.join(BIN, "saas-web"), "production.ini", "-b", f"127.0.0.1:{port}"]


# The documented web tier (saas-web, on Granian) and the one it replaced,
# which still works: both must keep the same promises.
WEB_SERVERS = {"saas-web": saas_web_command, "gunicorn": gunicorn_command}


@pytest.fixture(params=list(WEB_SERVERS))
def web_command(request):
    return WEB_SERVERS[request.param]


def celery_command(queue: str) -> list[str]:
    return [
        os.path.join(BIN, "celery"), "-A", "workers", "worker", "--loglevel=INFO",
        "-Q", queue, "-n", f"{queue}@%h", "--concurrency=1",
    ]


def assert_refused_for_master_key(process: Process) -> str:
    """The process exits non-zero by itself, naming SAAS_MASTER_KEY on one line."""
    wait_until(lambda: process.popen.poll() is not None, "exit without SAAS_MASTER_KEY",
               progress=processes(process.popen), describe=process.describe)
    assert process.popen.returncode != 0, process.describe()
    _, err = process.output()
    lines = [line for line in err.splitlines() if "SAAS_MASTER_KEY" in line]
    assert lines, process.describe()
    assert any("missing required settings" in line for line in lines), process.describe()
    return err


def test_web_tier_serves_health_and_readiness(production_env, web_command):
    port = free_port()
    with spawn(web_command(port), production_env) as process:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: get_json(f"{base}/healthz") == (200, {"status": "ok"}),
                 process, "healthy /healthz")
        status, body = wait_for(lambda: get_json(f"{base}/readyz"), process, "/readyz")
        assert status == 200, body
        assert body["status"] == "ok"
        assert body["checks"] == {"postgres": "ok", "redis": "ok"}


def test_web_tier_accepts_long_request_lines(production_env, web_command):
    # DESIGN §12: tokens travel in URLs; the server's own limit must not refuse them first.
    port = free_port()
    with spawn(web_command(port), production_env) as process:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: get_json(f"{base}/healthz"), process, "/healthz")
        long_query = "x" * 7000
        status, _ = get_json(f"{base}/healthz?token={long_query}")
        assert status == 200
        too_long = "x" * 9000
        try:
            urllib.request.urlopen(f"{base}/healthz?token={too_long}",  # noqa: S310
                                   timeout=REQUEST_SECONDS)
            pytest.fail("a request line over 8190 bytes was accepted")
        except urllib.error.HTTPError as exc:
            assert exc.code in (400, 414)  # 414 URI Too Long from both servers
        # A chunked body announces no length: still refused past 64 KiB.
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_SECONDS)
        connection.request("POST", "/v1/apps/abcd1234/token",
                           body=iter([b"x" * 40_000, b"x" * 40_000]),
                           headers={"Content-Type": "application/json",
                                    "Accept": "application/json"}, encode_chunked=True)
        answer = connection.getresponse()
        assert answer.status == 413 and b"payload_too_large" in answer.read()
        connection.close()


def test_web_tier_refuses_control_characters_in_headers(production_env, web_command):
    port = free_port()
    with spawn(web_command(port), production_env) as process:
        wait_for(lambda: get_json(f"http://127.0.0.1:{port}/healthz"), process, "/healthz")
        for value, status in ((b"fine", b"200"), (b"a\x01b", b"400"), (b"a\x00b", b"400"),
                              (b"a\x7fb", b"400")):
            with socket.create_connection(("127.0.0.1", port), timeout=REQUEST_SECONDS) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Test: " + value
                             + b"\r\nConnection: close\r\n\r\n")
                status_line = sock.recv(64).split(b"\r\n")[0]
            assert status_line.split()[1] == status, (value, status_line)


def _status_of_head(port: int, fields: int, width: int) -> bytes:
    """The status code answered to a GET with ``fields`` extra header fields of ``width``."""
    padding = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * width) for i in range(fields))
    with socket.create_connection(("127.0.0.1", port), timeout=REQUEST_SECONDS) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n" + padding
                     + b"Connection: close\r\n\r\n")
        return sock.recv(64).split(b"\r\n")[0].split()[1]


def test_web_tier_limits_the_request_head(production_env, web_command):
    port = free_port()
    with spawn(web_command(port), production_env) as process:
        wait_for(lambda: get_json(f"http://127.0.0.1:{port}/healthz"), process, "/healthz")
        assert _status_of_head(port, 90, 100) == b"200"
        assert _status_of_head(port, 101, 10) in (b"400", b"431")  # over 100 fields


def test_saas_web_refuses_an_oversized_head(production_env):
    # gunicorn bounds each field (8190 bytes) and their number; Granian the
    # whole head (docs/operations.md, "Web server").
    port = free_port()
    with spawn(saas_web_command(port), production_env) as process:
        wait_for(lambda: get_json(f"http://127.0.0.1:{port}/healthz"), process, "/healthz")
        assert _status_of_head(port, 90, 2500) == b"431"


def test_web_tier_refuses_to_start_without_master_key(production_env, web_command):
    env = {k: v for k, v in production_env.items() if k != "SAAS_MASTER_KEY"}
    with spawn(web_command(free_port()), env) as process:
        err = assert_refused_for_master_key(process)
    assert process.popen.returncode == 1
    assert "Traceback" not in err
    # Refused before any worker starts.
    assert "Booting worker" not in err and "Spawning worker" not in err


def test_saas_web_replaces_a_dead_worker_and_reloads_on_sighup(production_env):
    port = free_port()
    with spawn([*saas_web_command(port), "--workers", "2"], production_env) as process:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: get_json(f"{base}/healthz") == (200, {"status": "ok"}),
                 process, "healthy /healthz")
        wait_for(lambda: len(web_workers(process.popen.pid)) == 2, process, "two workers")
        first = web_workers(process.popen.pid)
        assert len(first) == 2, process.describe()
        # A worker that dies is replaced; the service keeps answering.
        os.kill(sorted(first)[0], signal.SIGKILL)
        wait_for(lambda: (lambda now: len(now) == 2 and sorted(first)[0] not in now)(
            web_workers(process.popen.pid)), process, "a new worker for the killed one")
        wait_for(lambda: get_json(f"{base}/healthz") == (200, {"status": "ok"}),
                 process, "healthy after the respawn")
        # SIGHUP: every worker is replaced gracefully, the master stays.
        before = web_workers(process.popen.pid)
        os.kill(process.popen.pid, signal.SIGHUP)
        wait_for(lambda: (lambda now: len(now) == 2 and not now & before)(
            web_workers(process.popen.pid)), process, "workers replaced after SIGHUP")
        wait_for(lambda: get_json(f"{base}/healthz") == (200, {"status": "ok"}),
                 process, "healthy after the reload")
        assert process.popen.poll() is None


def test_saas_web_workers_exit_when_the_master_is_killed(production_env):
    # gunicorn's workers notice a new parent and exit; Granian's would keep
    # serving on the port, so saas-web's watchdog ends them.
    port = free_port()
    with spawn([*saas_web_command(port), "--workers", "2"], production_env) as process:
        wait_for(lambda: get_json(f"http://127.0.0.1:{port}/healthz") == (200, {"status": "ok"}),
                 process, "healthy /healthz")
        wait_for(lambda: len(web_workers(process.popen.pid)) == 2, process, "two workers")
        workers = web_workers(process.popen.pid)
        assert _listening(port)
        os.kill(process.popen.pid, signal.SIGKILL)
        wait_until(lambda: not any(_alive(pid) for pid in workers),
                   "the orphaned workers exit",
                   progress=lambda: tuple(sorted(pid for pid in workers if _alive(pid))))
        # And then nothing listens on the port. (Once seen still listening
        # just after the known workers exited; waited for, and if it never
        # ends, the processes holding the socket are named.)
        wait_until(lambda: not _listening(port), "release of the port",
                   describe=lambda: f"held by {_holders(port)}")


def _listening_inodes(port: int) -> set[str]:
    """The inodes of this machine's sockets in LISTEN on ``port``."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with suppress(FileNotFoundError), open(table) as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                if fields[3] == "0A" and int(fields[1].rpartition(":")[2], 16) == port:
                    inodes.add(fields[9])
    return inodes


def _listening(port: int) -> bool:
    return bool(_listening_inodes(port))


def _holders(port: int) -> list[str]:
    """``pid command line`` of each process with a listening socket of ``port`` open."""
    links = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with suppress(OSError):
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in links
                   for fd in os.listdir(f"/proc/{pid}/fd")):
                with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                    command = cmdline.read().replace(b"\0", b" ").decode(errors="replace")
                found.append(f"{pid} {command[:200]}")
    return found


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for its (new) parent to reap it."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def web_workers(master: int) -> set[int]:
    """The master's child processes that serve requests (multiprocessing's
    resource tracker, when there is one, is not a worker)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with suppress(FileNotFoundError, ProcessLookupError):
            with open(f"/proc/{entry}/stat") as stat:
                ppid = int(stat.read().rpartition(")")[2].split()[1])
            if ppid != master:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as cmd:
                if b"resource_tracker" not in cmd.read():
                    found.add(int(entry))
    return found


def test_celery_worker_starts(production_env, unique_queue):
    env = dict(production_env, SAAS_CONFIG="production.ini")
    with spawn(celery_command(unique_queue), env) as process:
        wait_for(lambda: " ready." in "".join(process.output()), process, "worker ready")
        assert "workers.cleanup.purge_expired" in "".join(process.output())


def test_celery_worker_refuses_to_start_without_master_key(production_env, unique_queue):
    env = dict(production_env, SAAS_CONFIG="production.ini")
    del env["SAAS_MASTER_KEY"]
    with spawn(celery_command(unique_queue), env) as process:
        err = assert_refused_for_master_key(process)
    assert "bridgekeeper: missing required settings: SAAS_MASTER_KEY" in err
