"""Merge semantics: any order and any repetition of events give the same result."""

from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from saas.sync.merge import collapse
from saas.sync.parse import UserMerge
from saas.sync.versions import field_version

APP = uuid.UUID(int=1)
USERS = [str(uuid.UUID(int=n)) for n in range(2, 5)]

values = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=3))
objects = st.one_of(st.none(), st.dictionaries(st.sampled_from("abcd"), values, max_size=3))
@st.composite
def merges(draw):
    login_at_ms = draw(st.integers(1000, 1010))  # few values: equal times happen often
    event_id = uuid.UUID(int=draw(st.integers(0, 50)))
    return UserMerge(
        user_id=draw(st.sampled_from(USERS)), app_uuid=APP, app_id="app00001",
        external_id="x", login_at_ms=login_at_ms,
        version=field_version(login_at_ms, event_id),
        custom=draw(objects), profile=draw(objects),
    )


def _snapshot(states):
    return {
        user_id: (s.first_login_ms, s.last_login_ms, s.custom.values, s.custom.versions,
                  s.profile.values, s.profile.versions)
        for user_id, s in states.items()
    }


@settings(max_examples=300)
@given(st.lists(merges(), max_size=12, unique_by=lambda m: m.version), st.randoms())
def test_order_and_repetition_do_not_matter(events, rnd):
    expected = _snapshot(collapse(events))
    shuffled = events * 2
    rnd.shuffle(shuffled)
    assert _snapshot(collapse(shuffled)) == expected
    assert _snapshot(collapse(list(reversed(events)))) == expected


@settings(max_examples=200)
@given(st.lists(merges(), max_size=12, unique_by=lambda m: m.version), st.integers(0, 12))
def test_batches_fold_like_one_batch(events, cut):
    whole = collapse(events)
    first, second = collapse(events[:cut]), collapse(events[cut:])
    for user_id, state in second.items():
        if user_id in first:
            first[user_id].absorb(state)
        else:
            first[user_id] = state
    assert _snapshot(first) == _snapshot(whole)


def test_newest_field_wins_and_null_is_stored():
    user = USERS[0]

    def merge(ms, custom):
        return UserMerge(user, APP, "app00001", "x", ms, field_version(ms, uuid.uuid4()),
                         custom, None)

    states = collapse([merge(2000, {"a": 2, "b": None}), merge(1000, {"a": 1, "c": 3})])
    assert states[user].custom.values == {"a": 2, "b": None, "c": 3}
    versions = states[user].custom.versions
    assert versions["a"] == versions["b"] > versions["c"]
    assert versions["a"].startswith("000000000002000.")
    assert (states[user].first_login_ms, states[user].last_login_ms) == (1000, 2000)


@settings(max_examples=200)
@given(st.uuids(), st.text(min_size=1, max_size=40))
def test_fast_user_id_derivation_is_uuid5(app_uuid, external_id):
    from saas.sync.parse import derived_user_id

    assert derived_user_id(app_uuid, external_id) == str(uuid.uuid5(app_uuid, external_id))
