"""Fault injection for tests: a TCP proxy that can be paused or cut.

Point a client at the proxy instead of the real server, then ``pause()``
(bytes stop flowing both ways; connections stay open, as when a server
freezes) or ``cut()`` (connections reset, new ones refused), and ``resume()``.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Iterator


class FaultProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.flowing = threading.Event()
        self.flowing.set()
        self.refusing = False
        self.closed = False
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.refusing:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=2)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        peers = {client: upstream, upstream: client}
        try:
            while not self.closed:
                readable, _, _ = select.select(list(peers), [], [], 0.1)
                if not self.flowing.is_set():
                    continue  # paused: leave the bytes in the socket buffers
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except OSError:
            return
        finally:
            for sock in peers:
                with contextlib.suppress(OSError):
                    sock.close()

    def pause(self) -> None:
        self.flowing.clear()

    def resume(self) -> None:
        self.refusing = False
        self.flowing.set()

    def cut(self) -> None:
        self.refusing = True
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for pair in pairs:
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.close()

    def close(self) -> None:
        self.closed = True
        self.flowing.set()
        self.cut()
        self.listener.close()


@contextlib.contextmanager
def redis_proxy(redis_url: str) -> Iterator[FaultProxy]:
    from urllib.parse import urlsplit

    parts = urlsplit(redis_url)
    proxy = FaultProxy(parts.hostname or "127.0.0.1", parts.port or 6379)
    try:
        yield proxy
    finally:
        proxy.close()
