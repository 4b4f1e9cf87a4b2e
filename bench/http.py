"""A minimal asyncio HTTP/1.1 client for the load generator.

Why not httpx or aiohttp: the load generator must cost far less CPU per
request than the server it drives, on the same two cores. This client does
only what the benchmark needs — one request at a time per connection,
keep-alive when the server allows it, ``Content-Length`` bodies (or read to
close) — and parses nothing it does not use.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass
class Reply:
    status: int
    headers: dict[bytes, bytes]
    cookies: list[bytes] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: bytes) -> str:
        return self.headers.get(name, b"").decode("latin-1")


class Connection:
    """One keep-alive connection to ``host:port``; reconnects when the server closed it."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._host_header = f"Host: {host}:{port}\r\n".encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def request(self, method: str, target: str, headers: tuple[tuple[str, str], ...] = (),
                      body: bytes = b"") -> Reply:
        reused = self._writer is not None
        try:
            return await self._exchange(method, target, headers, body)
        except (ConnectionError, asyncio.IncompleteReadError):
            self.close()
            if not reused:
                raise
            # The server closed an idle keep-alive connection: one fresh try.
            return await self._exchange(method, target, headers, body)

    async def _exchange(self, method: str, target: str, headers, body: bytes) -> Reply:
        if self._writer is None:
            await self._connect()
        lines = [f"{method} {target} HTTP/1.1\r\n".encode(), self._host_header]
        lines += [f"{name}: {value}\r\n".encode() for name, value in headers]
        if body or method == "POST":
            lines.append(b"Content-Length: %d\r\n" % len(body))
        lines.append(b"\r\n")
        lines.append(body)
        self._writer.write(b"".join(lines))
        head = await self._reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head[:-4].split(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        found: dict[bytes, bytes] = {}
        cookies: list[bytes] = []
        for line in header_lines:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            value = value.strip()
            if name == b"set-cookie":
                cookies.append(value)
            found[name] = value
        length = found.get(b"content-length")
        closing = found.get(b"connection", b"").lower() == b"close"
        if length is not None:
            payload = await self._reader.readexactly(int(length)) if int(length) else b""
        elif closing:
            payload = await self._reader.read()
        else:
            payload = b""
        if closing:
            self.close()
        return Reply(status, found, cookies, payload)
