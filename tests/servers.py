"""Private, throwaway Redis and PostgreSQL servers for fault tests.

Each test that must stop, kill -9 or freeze a *server* gets its own process on
a free loopback port, so the shared services of the run (and the other xdist
worker) never notice. Faults are real signals to the real server process:

* ``stop()`` — a clean shutdown (``SIGTERM``, or ``pg_ctl stop -m fast``);
* ``kill()`` — ``SIGKILL`` of the server and, for PostgreSQL, its backends;
* ``pause()`` / ``resume()`` — ``SIGSTOP`` / ``SIGCONT``: the server freezes,
  its sockets stay open, as under a long GC pause or a stuck VM;
* ``start()`` — start again on the same port and data directory.

PostgreSQL refuses to run as root, so when the tests run as root (CI here)
the cluster belongs to the ``postgres`` account (``Popen(user=...)``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import redis

from tests.live import free_port
from tests.waiting import CAP_SECONDS, processes, run, wait_until

# pg_ctl's own wait for a start or stop: it fails at once if the server dies,
# so its limit is only a cap, as long as a busy machine may need.
PG_CTL_WAIT = str(int(CAP_SECONDS))


def _children(pid: int) -> list[int]:
    """Direct children of a process, from /proc (PostgreSQL's backends)."""
    found = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(stat.split("/")[2]))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):  # a zombie counts as gone
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


class RedisServer:
    """``redis-server`` on a free port; AOF with fsync always, so a kill -9
    loses nothing that was acknowledged."""

    def __init__(self, directory: Path, **config: str) -> None:
        self.directory = directory
        self.port = free_port()
        self.config = {"appendonly": "yes", "appendfsync": "always", "save": "",
                       **config}
        self.popen: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def client(self, **kwargs) -> redis.Redis:
        return redis.Redis(port=self.port, socket_connect_timeout=2, socket_timeout=5, **kwargs)

    def start(self) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.directory), "--logfile", "redis.log"]
        for name, value in self.config.items():
            args += [f"--{name}", value]
        self.popen = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_until(self._answers, f"redis-server on port {self.port} answering",
                   progress=processes(self.popen), describe=lambda: self.log()[-2000:])

    def _answers(self) -> bool:
        if self.popen.poll() is not None:
            raise RuntimeError(f"redis-server exited: {self.log()[-2000:]}")
        try:
            with self.client() as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def log(self) -> str:
        path = self.directory / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _signal(self, sig: int) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(sig)

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def stop(self) -> None:
        self.resume()
        self._signal(signal.SIGTERM)
        wait_until(lambda: self.popen.poll() is not None, "redis-server's clean shutdown",
                   progress=processes(self.popen))

    def kill(self) -> None:
        self._signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def close(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.resume()
            self.kill()


@contextlib.contextmanager
def private_redis(tmp_path: Path, **config: str) -> Iterator[RedisServer]:
    directory = tmp_path / f"redis-{free_port()}"
    directory.mkdir()
    server = RedisServer(directory, **config)
    server.start()
    try:
        yield server
    finally:
        server.close()


def postgres_bin() -> Path:
    """The newest installed PostgreSQL's bin directory (Debian layout)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                   key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError("no /usr/lib/postgresql/*/bin/pg_ctl: install postgresql")
    return Path(found[-1]).parent


class PostgresServer:
    """A private cluster (``initdb`` + ``pg_ctl``), trust auth, loopback only."""

    def __init__(self) -> None:
        self.bin = postgres_bin()
        self.port = free_port()
        # Not under pytest's tmp_path, which the postgres account cannot enter.
        self.directory = Path(tempfile.mkdtemp(prefix="bk-pg-"))
        self.data = self.directory / "data"
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            account = pwd.getpwnam(self.user)
            os.chown(self.directory, account.pw_uid, account.pw_gid)
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        run([str(self.bin / args[0]), *args[1:]], check=True, user=self.user,
            cwd=self.directory, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def initdb(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--no-sync", "--no-instructions")

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c full_page_writes=off -c max_connections=40")
        self._run("pg_ctl", "start", "-w", "-t", PG_CTL_WAIT, "-D", str(self.data), "-o", options,
                  "-l", str(self.directory / "postgres.log"))

    def log(self) -> str:
        path = self.directory / "postgres.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def postmaster_pid(self) -> int | None:
        path = self.data / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int(path.read_text().splitlines()[0])
        return None

    def answers(self) -> bool:
        try:
            with psycopg.connect(self.dsn, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError:
            return False
        return True

    def stop(self) -> None:
        self._run("pg_ctl", "stop", "-w", "-t", PG_CTL_WAIT, "-m", "fast", "-D", str(self.data))

    def kill(self) -> None:
        """SIGKILL the postmaster and every backend: a crash, recovered at start()."""
        pid = self.postmaster_pid()
        if pid is None:
            return
        victims = [pid, *_children(pid)]
        for victim in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
        wait_until(lambda: not any(_alive(v) for v in victims), "end of the killed cluster")
        # A killed postmaster may linger as a zombie until our container's init
        # reaps it; its pid files would then block the restart.
        for lock in [self.data / "postmaster.pid", *self.directory.glob(".s.PGSQL.*.lock")]:
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()

    def pause(self) -> None:
        pid = self.postmaster_pid()
        for victim in [pid, *_children(pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGSTOP)

    def resume(self) -> None:
        pid = self.postmaster_pid()
        for victim in [pid, *_children(pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGCONT)

    def close(self) -> None:
        pid = self.postmaster_pid()
        if pid is not None and _alive(pid):
            self.resume()
            self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)


@contextlib.contextmanager
def private_postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        server.initdb()
        server.start()
        yield server
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"{exc.cmd[0]} failed: {exc.stderr.decode(errors='replace')}\n"
                           f"{server.log()[-2000:]}") from exc
    finally:
        server.close()
