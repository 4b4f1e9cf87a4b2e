"""Webhook signatures (what receivers check) and the retry schedule."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import itertools
import json

import pytest

from saas.webhooks.delivery import Policy, backoff, next_attempt
from saas.webhooks.signing import new_secret, signature_header
from saas.webhooks.verify import InvalidSignature, verify_webhook

SECRET = "whsec_test-secret-0123456789"
BODY = json.dumps({"id": "e1", "type": "user.created", "data": {}}).encode()
NOW = 1_800_000_000


def test_the_header_is_hmac_sha256_of_timestamp_dot_body():
    header = signature_header(SECRET, NOW, BODY)
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert header == f"t={NOW},v1={expected}"


def test_verify_accepts_a_fresh_signature_and_returns_the_event():
    event = verify_webhook(BODY, signature_header(SECRET, NOW, BODY), SECRET, now=NOW + 299)
    assert event == {"id": "e1", "type": "user.created", "data": {}}


def test_verify_accepts_any_of_several_v1_signatures():
    good = signature_header(SECRET, NOW, BODY).split(",")[1]
    header = f"t={NOW},v1={'0' * 64},{good}"
    assert verify_webhook(BODY, header, SECRET, now=NOW)["id"] == "e1"


@pytest.mark.parametrize(("case", "body", "header", "secret", "now"), [
    ("tampered body", BODY.replace(b"e1", b"e2"), None, SECRET, NOW),
    ("other secret", BODY, None, "whsec_other", NOW),
    ("replayed after the window", BODY, None, SECRET, NOW + 301),
    ("from the future", BODY, None, SECRET, NOW - 301),
    ("no header", BODY, "", SECRET, NOW),
    ("no timestamp", BODY, "v1=abc", SECRET, NOW),
    ("no signature", BODY, f"t={NOW}", SECRET, NOW),
    ("timestamp moved", BODY, "shift", SECRET, NOW),
])
def test_verify_refuses(case, body, header, secret, now):
    if header is None:
        header = signature_header(SECRET, NOW, BODY)
    elif header == "shift":  # a valid v1 with another t: the timestamp is signed too
        header = signature_header(SECRET, NOW, BODY).replace(f"t={NOW}", f"t={NOW + 1}")
    with pytest.raises(InvalidSignature):
        verify_webhook(body, header, secret, now=now)


def test_secrets_are_prefixed_and_random():
    first, second = new_secret(), new_secret()
    assert first.startswith("whsec_") and len(first) > 40 and first != second


POLICY = Policy(retry_base=10, retry_cap=3600, retry_for=86400)


@pytest.mark.parametrize(("failed", "full"), [(1, 10), (2, 20), (3, 40), (8, 1280), (9, 2560),
                                              (10, 3600), (40, 3600)])
def test_backoff_doubles_up_to_the_cap_with_equal_jitter(failed, full):
    assert backoff(failed, POLICY, rand=lambda: 0.0) == full / 2
    assert backoff(failed, POLICY, rand=lambda: 1.0) == full
    assert full / 2 <= backoff(failed, POLICY) <= full


def test_retries_last_24_hours_and_the_last_lands_at_the_end_of_the_window():
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    now, failed, attempts = start, 0, []
    while True:
        failed += 1
        after = next_attempt(start, now, failed, POLICY, rand=lambda: 0.5)
        if after is None:
            break
        assert after > now
        attempts.append(after)
        now = after
    assert attempts[-1] == start + dt.timedelta(hours=24)  # tried at the very end, then gave up
    assert now - start >= dt.timedelta(hours=24)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(attempts)]
    assert gaps[:4] == [15.0, 30.0, 60.0, 120.0]  # 0.75 of 20, 40, 80, 160: exponential
    assert max(gaps) <= 3600
