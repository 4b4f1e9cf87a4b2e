"""``bench/floor.py`` holds the session-create script's text rather than
importing a private name of the service; the floor replays the service's own
script only while the two texts are the same."""

from __future__ import annotations

import redis

from bench.floor import SESSION_CREATE
from saas.tokens.login_sessions import SessionStore


def test_the_floors_session_script_is_the_services():
    store = SessionStore(redis.Redis(), keys=None, successor_key=b"k" * 32)
    # register_script keeps the text and its digest: no round trip.
    assert store._create.script == SESSION_CREATE
