"""``SMTP_URL``: ``smtp://user:pass@host:587?starttls=1`` or ``smtps://user:pass@host``."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class SmtpAddress:
    host: str
    port: int
    ssl: bool  # smtps: TLS from the first byte
    starttls: bool  # smtp with ?starttls=1: upgrade before AUTH
    username: str | None
    password: str | None
    timeout: float = 10.0

    def __repr__(self) -> str:  # never print the password
        return f"SmtpAddress({self.host}:{self.port}, ssl={self.ssl}, starttls={self.starttls})"


def parse_smtp_url(value: str) -> SmtpAddress:
    """Parse and check an SMTP URL; raises ValueError naming what is wrong
    (never quoting the URL, which may hold a password)."""
    parts = urlsplit(value.strip())
    if parts.scheme not in DEFAULT_PORTS:
        raise ValueError("must start with smtp:// or smtps://")
    if not parts.hostname:
        raise ValueError("names no host")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise ValueError("has an invalid port") from None
    query = parse_qs(parts.query)
    unknown = set(query) - {"starttls", "timeout"}
    if unknown:
        raise ValueError(f"has unknown parameters: {', '.join(sorted(unknown))}")
    starttls = query.get("starttls", ["0"])[-1].lower() in TRUE
    if starttls and parts.scheme == "smtps":
        raise ValueError("smtps:// is TLS already; starttls is for smtp://")
    timeout = float(query.get("timeout", ["10"])[-1])
    if not timeout > 0:
        raise ValueError("timeout must be positive")
    return SmtpAddress(
        host=parts.hostname, port=port, ssl=parts.scheme == "smtps", starttls=starttls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        timeout=timeout,
    )


def smtp_url(value: str) -> str:
    """The setting's coercion: checked, kept as written."""
    parse_smtp_url(value)
    return value.strip()
