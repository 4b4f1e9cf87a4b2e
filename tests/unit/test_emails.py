"""Emails are compared and stored NFKC-normalised and case-folded."""

from __future__ import annotations

import pytest

from saas.tenants.emails import normalise_email


@pytest.mark.parametrize(("given", "stored"), [
    ("Alice@Example.com", "alice@example.com"),
    ("  alice@example.com\t", "alice@example.com"),
    ("ａｌｉｃｅ＠ｅｘａｍｐｌｅ．ｃｏｍ", "alice@example.com"),  # fullwidth letters and signs
    ("ALICE@EXAMPLE.COM", "alice@example.com"),
    ("ﬁona@example.com", "fiona@example.com"),  # the "fi" ligature
    ("STRAẞE@example.com", "strasse@example.com"),  # case folding, not just lower()
])
def test_spellings_of_one_address_are_one_address(given, stored):
    assert normalise_email(given) == stored


def test_normalising_is_idempotent():
    for value in ("Ǆemal@example.com", "ｂｏｂ@example.com", "x@example.com"):
        once = normalise_email(value)
        assert normalise_email(once) == once
