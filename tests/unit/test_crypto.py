"""Secrets at rest: encryption under the master key, rotation, hashing."""

from __future__ import annotations

import pytest

from saas.config import ConfigurationError
from saas.crypto import SecretBox, constant_time_equals, hash_token

OLD = "old-master-key-" + "a" * 32
NEW = "new-master-key-" + "b" * 32


def test_round_trip_and_ciphertext_hides_the_plaintext():
    box = SecretBox(NEW)
    ciphertext = box.encrypt("s3cret-value")
    assert "s3cret-value" not in ciphertext
    assert box.decrypt(ciphertext) == "s3cret-value"
    assert box.encrypt("s3cret-value") != ciphertext  # random IV each time


def test_previous_keys_decrypt_and_reencrypt_moves_to_the_current_key():
    old_ciphertext = SecretBox(OLD).encrypt("value")
    rotating = SecretBox(NEW, previous=[OLD])
    assert rotating.decrypt(old_ciphertext) == "value"
    moved = rotating.reencrypt(old_ciphertext)
    assert SecretBox(NEW).decrypt(moved) == "value"
    with pytest.raises(ValueError):
        SecretBox(NEW).decrypt(old_ciphertext)


def test_short_master_keys_are_refused():
    with pytest.raises(ConfigurationError, match="SAAS_MASTER_KEY"):
        SecretBox("too-short")


def test_hash_and_constant_time_compare():
    assert hash_token("abc") == hash_token("abc") != hash_token("abd")
    assert len(hash_token("abc")) == 64
    assert constant_time_equals("abc", b"abc")
    assert not constant_time_equals("abc", "abd")
