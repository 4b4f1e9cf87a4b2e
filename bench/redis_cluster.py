"""A throwaway Redis Cluster made from the real ``redis-server`` and ``redis-cli``.

The topology test, the cluster leg of the test suite and ``make bench
--topology cluster`` all need a cluster the machine does not run. This starts
N primaries (no replicas) on free loopback ports, each with its cluster bus on
a port of its own (the default, port + 10000, may be out of range), joins them
with ``redis-cli --cluster create`` and waits until every node reports
``cluster_state:ok``. A missing ``redis-server`` fails loudly.

Waits follow progress: a node that exits fails at once; a node that lives is
given as long as ``start_cap`` seconds (a busy machine may be slow).
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis

SCHEME = "redis+cluster://"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ClusterNode:
    directory: Path
    port: int = field(default_factory=_free_port)
    bus_port: int = field(default_factory=_free_port)
    popen: subprocess.Popen | None = None

    def start(self, extra: dict[str, str]) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--cluster-enabled", "yes", "--cluster-port", str(self.bus_port),
                "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000",
                "--dir", str(self.directory), "--logfile", "redis.log",
                "--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction"]
        for name, value in extra.items():
            args += [f"--{name}", value]
        self.popen = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_connect_timeout=2, socket_timeout=10)

    def log(self) -> str:
        path = self.directory / "redis.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def cluster_state(self) -> str:
        with self.client() as client:
            return client.cluster("info").get("cluster_state", "")

    def stop(self) -> None:
        if self.alive():
            self.popen.send_signal(signal.SIGCONT)
            self.popen.send_signal(signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait(timeout=30)


class RedisCluster:
    """``primaries`` redis-server processes joined into one cluster."""

    def __init__(self, primaries: int = 3, directory: Path | None = None,
                 start_cap: float = 600.0, **config: str) -> None:
        for tool in ("redis-server", "redis-cli"):
            if shutil.which(tool) is None:
                raise RuntimeError(f"{tool} is required for a Redis Cluster "
                                   "(apt install redis-server)")
        self._tmp = None if directory else tempfile.TemporaryDirectory(prefix="bk-cluster-")
        self.directory = Path(directory or self._tmp.name)
        self.primaries = primaries
        self.start_cap = start_cap
        self.config = config
        self.nodes: list[ClusterNode] = []

    @property
    def url(self) -> str:
        return SCHEME + ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    def start(self) -> RedisCluster:
        """Start and join the nodes; a failure stops whatever was started."""
        try:
            for index in range(self.primaries):
                self.nodes.append(self._start_node(index))
            subprocess.run(
                ["redis-cli", "--cluster", "create",
                 *(f"127.0.0.1:{node.port}" for node in self.nodes),
                 "--cluster-replicas", "0", "--cluster-yes"],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                timeout=self.start_cap,
            )
            self._wait("cluster_state:ok on every node", self._formed)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_node(self, index: int) -> ClusterNode:
        # Another process may take a port between our probe and the bind: try
        # fresh ports a few times before calling it a failure.
        for _attempt in range(5):
            directory = self.directory / f"node-{index}-{_free_port()}"
            directory.mkdir(parents=True)
            node = ClusterNode(directory)
            node.start(self.config)
            try:
                answered = self._wait(f"redis-server on port {node.port}",
                                      lambda n=node: self._answers(n), allow_exit=True)
            except BaseException:
                node.stop()
                raise
            if answered:
                return node
        raise RuntimeError(f"redis-server would not start: {node.log()}")

    @staticmethod
    def _answers(node: ClusterNode) -> bool | None:
        if not node.alive():
            return None  # exited (port taken): the caller tries another port
        try:
            with node.client() as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def _formed(self) -> bool:
        for node in self.nodes:
            if not node.alive():
                raise RuntimeError(f"cluster node {node.port} exited: {node.log()}")
            try:
                if node.cluster_state() != "ok":
                    return False
            except redis.RedisError:
                return False
        return True

    def _wait(self, what: str, check, allow_exit: bool = False) -> bool:
        deadline = time.monotonic() + self.start_cap
        while time.monotonic() < deadline:
            outcome = check()
            if outcome:
                return True
            if outcome is None and allow_exit:
                return False
            time.sleep(0.05)
        raise RuntimeError(f"timed out waiting for {what}")

    def primary_ports(self) -> list[int]:
        return [node.port for node in self.nodes]

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        self.nodes = []
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                self._tmp.cleanup()


@contextlib.contextmanager
def redis_cluster(primaries: int = 3, **config: str) -> Iterator[RedisCluster]:
    cluster = RedisCluster(primaries, **config).start()
    try:
        yield cluster
    finally:
        cluster.stop()
