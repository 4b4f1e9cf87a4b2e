"""The service's clock. ``saas.clock_offset`` (seconds) shifts it, so tests can
run web processes with skewed clocks."""

from __future__ import annotations

import time


def includeme(config) -> None:
    offset = float(config.registry.settings.get("saas.clock_offset", 0) or 0)
    config.registry["saas.clock_offset"] = offset
    config.add_request_method(lambda r: time.time() + r.registry["saas.clock_offset"], "now",
                              reify=True)
