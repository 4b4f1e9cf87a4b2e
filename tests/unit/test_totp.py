"""TOTP arithmetic: the provisioning URI, the ±1 step window, and recovery code
normalisation (no database: the replay rule is in tests/functional)."""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

import pyotp

from saas.accounts.recovery import normalise
from saas.accounts.totp import matching_step, provisioning_uri, qr_svg

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
NOW = 1_700_000_015.0  # inside step 56_666_667
STEP = int(NOW // 30)


def test_the_uri_names_the_issuer_and_the_member():
    uri = provisioning_uri(SECRET, "owner@example.com")
    parts = urlsplit(uri)
    assert parts.scheme == "otpauth" and parts.netloc == "totp"
    assert unquote(parts.path) == "/Bridgekeeper:owner@example.com"
    query = parse_qs(parts.query)
    assert query["issuer"] == ["Bridgekeeper"] and query["secret"] == [SECRET]


def test_one_step_either_side_is_accepted_and_no_further():
    totp = pyotp.TOTP(SECRET)
    for offset in (-1, 0, 1):
        assert matching_step(SECRET, totp.at(NOW + 30 * offset), NOW) == STEP + offset
    for offset in (-2, 2):
        other = totp.at(NOW + 30 * offset)
        if other not in {totp.at(NOW + 30 * o) for o in (-1, 0, 1)}:
            assert matching_step(SECRET, other, NOW) is None


def test_codes_of_the_wrong_shape_are_refused_without_computing():
    assert matching_step(SECRET, "12345", NOW) is None
    assert matching_step(SECRET, "abcdef", NOW) is None
    assert matching_step(SECRET, "", NOW) is None


def test_spaces_in_a_code_are_ignored():
    code = pyotp.TOTP(SECRET).at(NOW)
    assert matching_step(SECRET, f"{code[:3]} {code[3:]}", NOW) == STEP


def test_the_qr_code_is_inline_svg_without_script_or_style():
    svg = qr_svg(provisioning_uri(SECRET, "owner@example.com"))
    assert svg.startswith("<svg") and "<?xml" not in svg
    assert "<script" not in svg and "style=" not in svg


def test_recovery_codes_compare_without_case_spaces_or_dashes():
    assert normalise(" ABCDE-fghij ") == normalise("abcdefghij") == "abcdefghij"
