"""The service's clock. ``saas.clock_offset`` (seconds) shifts it, so tests can
run web processes with skewed clocks.

``request.now`` is the clock read once per request; services that keep time
without a request at hand (the login sessions) are given the same clock."""

from __future__ import annotations

import datetime as dt
import time

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MILLISECOND = dt.timedelta(milliseconds=1)


def from_ms(ms: int) -> dt.datetime:
    """Epoch milliseconds to an aware datetime, exactly (no float rounding)."""
    return EPOCH + ms * MILLISECOND


def to_ms(value: dt.datetime | None) -> int | None:
    """An aware datetime (``saas.db.UTCDateTime`` reads them so) to epoch milliseconds."""
    if value is None:
        return None
    return (value - EPOCH) // MILLISECOND


def iso_utc(value: dt.datetime | None) -> str | None:
    """A time as the APIs show it: ISO 8601 in UTC with its offset (``+00:00``),
    to the millisecond."""
    return from_ms(to_ms(value)).isoformat() if value is not None else None


class Clock:
    """Epoch seconds, shifted by ``offset``."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def __call__(self) -> float:
        return time.time() + self.offset


def includeme(config) -> None:
    offset = float(config.registry.settings.get("saas.clock_offset", 0) or 0)
    config.registry["saas.clock"] = Clock(offset)
    config.add_request_method(lambda r: r.registry["saas.clock"](), "now", reify=True)
