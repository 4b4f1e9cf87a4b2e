"""Logins and failures as a server-rendered bar chart (inline SVG, no JavaScript).

``login_chart`` turns the buckets of ``saas.audit.queries.login_stats`` into
plain geometry; the template draws it and repeats the numbers in a table for
screen readers and anyone who prefers numbers. ``reason_bars`` sizes the
failures-by-reason meters the same way: SVG attributes, never an inline style
(the CSP refuses those).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

WIDTH, HEIGHT = 760, 260
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 14, 30
TICKS = 4


@dataclass(frozen=True)
class Range:
    """A chart period: its bucket size and how many buckets it shows."""

    key: str
    label: str
    bucket: str
    count: int

    def since(self, now: dt.datetime) -> dt.datetime:
        now = now.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
        if self.bucket == "day":
            return now.replace(hour=0) - dt.timedelta(days=self.count - 1)
        return now - dt.timedelta(hours=self.count - 1)


RANGES = {
    "24h": Range("24h", "Last 24 hours", "hour", 24),
    "30d": Range("30d", "Last 30 days", "day", 30),
}
DEFAULT_RANGE = "24h"


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    kind: str  # "logins" or "failures"
    title: str


@dataclass
class Chart:
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM
    gridlines: list[tuple[float, int]] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    xlabels: list[tuple[float, str]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    logins: int = 0
    failures: int = 0

    @property
    def failure_rate(self) -> float:
        total = self.logins + self.failures
        return self.failures / total if total else 0.0


def nice_step(peak: int, ticks: int = TICKS) -> int:
    """The smallest 1-2-5 step whose ``ticks`` multiples reach ``peak`` (at least 1)."""
    magnitude = 1
    while True:
        for multiple in (1, 2, 5):
            if multiple * magnitude * ticks >= peak:
                return multiple * magnitude
        magnitude *= 10


def _label(start: dt.datetime, bucket: str) -> str:
    return start.strftime("%H:00") if bucket == "hour" else start.strftime("%d %b")


def login_chart(stats: dict[str, Any]) -> Chart:
    """Geometry of grouped bars (logins, failures) per bucket, with axis labels."""
    chart = Chart()
    buckets = stats["buckets"]
    bucket = stats["bucket"]
    peak = max([max(b["logins"], b["failures"]) for b in buckets] + [1])
    step = nice_step(peak)
    top_value = step * TICKS
    plot_width = chart.right - chart.left
    plot_height = chart.bottom - chart.top
    for tick in range(TICKS + 1):
        value = tick * step
        chart.gridlines.append((chart.bottom - value / top_value * plot_height, value))
    group = plot_width / max(len(buckets), 1)
    bar_width = max(group * 0.36, 1.0)
    label_every = max(1, round(len(buckets) / 8))
    for index, item in enumerate(buckets):
        start = dt.datetime.fromisoformat(item["start"])
        label = _label(start, bucket)
        x0 = chart.left + index * group
        for offset, kind in ((0.12, "logins"), (0.5, "failures")):
            value = item[kind]
            height = value / top_value * plot_height
            noun = "login" if kind == "logins" else "failure"
            chart.bars.append(Bar(
                x=round(x0 + group * offset, 2), y=round(chart.bottom - height, 2),
                width=round(bar_width, 2), height=round(height, 2), kind=kind,
                title=f"{label}: {value} {noun}{'' if value == 1 else 's'}",
            ))
        if index % label_every == 0:
            chart.xlabels.append((round(x0 + group / 2, 2), label))
        chart.rows.append({"label": start.strftime("%Y-%m-%d %H:00") if bucket == "hour"
                           else start.strftime("%Y-%m-%d"),
                           "logins": item["logins"], "failures": item["failures"]})
        chart.logins += item["logins"]
        chart.failures += item["failures"]
    return chart


@dataclass(frozen=True)
class ReasonBar:
    reason: str
    count: int
    share: float  # the bar's length, in percent of the most frequent reason's


def reason_bars(failures_by_reason: dict[str, int]) -> list[ReasonBar]:
    """One meter per failure reason, in the given order, the longest at 100."""
    most = max(failures_by_reason.values(), default=0)
    return [ReasonBar(reason, count, round(count / most * 100, 1) if most else 0.0)
            for reason, count in failures_by_reason.items()]
