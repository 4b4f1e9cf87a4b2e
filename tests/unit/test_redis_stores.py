"""One contract suite for the Redis-backed stores, run on both backends:
real Redis and the embedded development store (fakeredis with Lua)."""

from __future__ import annotations

import threading
import uuid

import pytest

from saas.clock import Clock
from saas.errors import Reason
from saas.flows.nonces import NonceStore, StateError
from saas.sync.versions import field_version
from saas.tokens import login_sessions as sessions_module
from saas.tokens.login_sessions import SessionStore, new_sid
from saas.users.pending import PendingMerges

APP = "app00001"
OTHER = "app00002"


@pytest.fixture
def nonces(backend):
    return NonceStore(*backend)


def test_state_is_single_use_and_replay_is_named(nonces):
    state = nonces.issue_state(APP, {"redirect_uri": "https://a/cb"})
    assert state.startswith(APP + ".")
    assert nonces.consume_state(APP, state) == {"redirect_uri": "https://a/cb"}
    with pytest.raises(StateError) as info:
        nonces.consume_state(APP, state)
    assert info.value.reason == Reason.STATE_REPLAYED


def test_unknown_and_foreign_states(nonces):
    with pytest.raises(StateError) as unknown:
        nonces.consume_state(APP, APP + "." + "x" * 32)
    assert unknown.value.reason == Reason.STATE_UNKNOWN
    foreign = nonces.issue_state(OTHER, {})
    with pytest.raises(StateError) as mismatch:
        nonces.consume_state(APP, foreign)
    assert mismatch.value.reason == Reason.STATE_APP_MISMATCH
    assert nonces.consume_state(OTHER, foreign) == {}  # left intact


def test_unconsumed_state_reason(nonces):
    state = nonces.issue_state(APP, {})
    assert nonces.unconsumed_state_reason(APP, state) == Reason.STATE_NOT_BOUND
    nonces.consume_state(APP, state)
    assert nonces.unconsumed_state_reason(APP, state) == Reason.STATE_REPLAYED
    assert nonces.unconsumed_state_reason(APP, APP + "." + "y" * 32) == Reason.STATE_UNKNOWN


def test_consumed_state_marker_keeps_the_remaining_ttl(nonces, backend):
    client, keys = backend
    state = nonces.issue_state(APP, {}, ttl=100)
    nonces.consume_state(APP, state)
    ttl = client.pttl(keys.app(APP, "state-used", state))
    assert 0 < ttl <= 100_000


def test_concurrent_consumers_only_one_wins(nonces):
    state = nonces.issue_state(APP, {"n": 1})
    results, barrier = [], threading.Barrier(20)

    def consume():
        barrier.wait()
        try:
            results.append(nonces.consume_state(APP, state))
        except StateError as exc:
            results.append(exc.reason)

    threads = [threading.Thread(target=consume) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count({"n": 1}) == 1
    assert results.count(Reason.STATE_REPLAYED) == 19


def test_token_digest_is_claimed_once(nonces):
    assert nonces.claim_token_once(APP, "sig:abc", 60) is True
    assert nonces.claim_token_once(APP, "sig:abc", 60) is False
    assert nonces.claim_token_once(OTHER, "sig:abc", 60) is True


def test_codes_are_single_use_and_remember_their_record(nonces):
    code = nonces.issue_code(APP, {"sid": "s1"})
    first = nonces.consume_code(APP, code)
    assert first.payload == {"sid": "s1"} and first.reused is None
    second = nonces.consume_code(APP, code)
    assert second.payload is None and second.reused == {"sid": "s1"}
    nothing = nonces.consume_code(APP, "made-up")
    assert nothing.payload is None and nothing.reused is None


def test_pending_merges_are_last_writer_wins_per_field(backend):
    merges = PendingMerges(*backend)
    newer, older = field_version(2000, uuid.uuid4()), field_version(1000, uuid.uuid4())
    merges.record(APP, "u1", 2000, newer, {"a": 2, "b": "new"}, None)
    merges.record(APP, "u1", 1000, older, {"a": 1, "c": True}, {"name": "Old"})
    overlay = merges.read(APP, "u1")
    assert overlay["custom"] == {"a": 2, "b": "new", "c": True}
    assert overlay["profile"] == {"name": "Old"}
    assert overlay["custom_versions"] == {"a": newer, "b": newer, "c": older}
    assert overlay["first_login"] == 1000 and overlay["last_login"] == 2000
    merges.record(APP, "u1", 3000, field_version(3000, uuid.uuid4()), {"b": None}, None)
    assert merges.read(APP, "u1")["custom"]["b"] is None
    assert not merges.read(APP, "u1")["complete"]


def test_seeding_merges_the_stored_row_by_version_and_marks_complete(backend):
    merges = PendingMerges(*backend)
    newer, older = field_version(2000, uuid.uuid4()), field_version(1000, uuid.uuid4())
    merges.record(APP, "u1", 2000, newer, {"a": "login"}, None)
    seeded = merges.seed(APP, "u1", {
        "custom": {"a": "stored", "b": "stored"}, "profile": {"name": "Stored"},
        "custom_versions": {"a": older, "b": older}, "profile_versions": {"name": older},
        "created_ms": 500, "last_login_ms": 1000,
    })
    assert seeded == merges.read(APP, "u1")
    assert seeded["complete"]
    assert seeded["custom"] == {"a": "login", "b": "stored"}  # the newer version wins
    assert seeded["profile"] == {"name": "Stored"}
    assert seeded["first_login"] == 500 and seeded["last_login"] == 2000
    # A user with no stored row yet: complete as it is.
    assert merges.seed(APP, "u2", None)["complete"]


def test_session_rotation_retry_and_reuse(backend, monkeypatch):
    store = SessionStore(*backend, successor_key=b"k" * 32)
    sid = new_sid()
    first = store.create(APP, sid, "user", "ext", ttl=3600)
    rotated = store.rotate(APP, first)
    assert rotated.outcome == "rotated" and rotated.refresh_token != first
    retry = store.rotate(APP, first)
    assert retry.outcome == "retry" and retry.refresh_token == rotated.refresh_token
    nxt = store.rotate(APP, rotated.refresh_token)
    assert nxt.outcome == "rotated"
    monkeypatch.setattr(sessions_module, "RETRY_GRACE_MS", -1)
    assert store.rotate(APP, first).outcome == "reused"
    assert store.rotate(APP, nxt.refresh_token).outcome == "revoked"
    assert not store.is_active(APP, sid)
    assert store.rotate(APP, "junk").outcome == "invalid"
    assert store.rotate(APP, new_sid() + ".nope").outcome == "invalid"


def test_sessions_keep_time_by_the_services_clock(backend):
    """Expiry times and the retry grace follow the clock the store is given
    (``saas.clock``, shifted by ``saas.clock_offset``), not the system's."""
    clock = Clock(offset=-1000)
    store = SessionStore(*backend, successor_key=b"k" * 32, clock=clock)
    sid = new_sid()
    first = store.create(APP, sid, "user", "ext", ttl=3600)
    assert abs(store.get(APP, sid).expires_at - (clock() + 3600)) <= 1
    assert store.rotate(APP, first).outcome == "rotated"
    assert store.rotate(APP, first).outcome == "retry"
    clock.offset += 11  # the 10 s grace is over by the store's clock
    assert store.rotate(APP, first).outcome == "reused"
