"""Access tokens (ES256): signed and checked by this service, timed by its clock."""

from __future__ import annotations

import uuid

import pytest

from saas.apps.cache import AppConfig, SigningKeyConfig
from saas.apps.signing_keys import new_signing_key
from saas.crypto import SecretBox
from saas.errors import Reason
from saas.jwt.es256 import AccessClaims, InvalidAccessToken
from saas.tokens.access import AccessTokens

ISSUED = 1_800_000_000
TTL = 900


@pytest.fixture(scope="module")
def box() -> SecretBox:
    return SecretBox("unit-test-master-key-0123456789abcdef")


def app_with(box: SecretBox, app_id: str, *keys) -> AppConfig:
    return AppConfig(
        id=str(uuid.uuid4()), app_id=app_id, tenant_id=str(uuid.uuid4()), name=app_id,
        custom_auth_endpoint=None, redirect_uris=[], backchannel=False,
        custom_token_enabled=False, require_bound_tokens=False, access_token_ttl=TTL,
        refresh_token_ttl=3600, hosted_form=None, restart_url=None, secrets={},
        signing_keys=[SigningKeyConfig(key.kid, key.private_key_ciphertext, key.public_jwk,
                                       False, None) for key in keys])


@pytest.fixture(scope="module")
def world(box):
    key = new_signing_key(box)
    tokens = AccessTokens(box, "https://bk.test")
    app = app_with(box, "k3x9a0bz", key)
    token = tokens.issue(app, user_id="user-1", external_id="ext-1", sid="s" * 32, now=ISSUED)
    return tokens, app, key, token


def refusal(tokens: AccessTokens, app: AppConfig, token: str, now: float) -> Reason:
    with pytest.raises(InvalidAccessToken) as info:
        tokens.verify(app, token, now)
    return info.value.reason


def test_a_token_verifies_for_its_app_within_its_lifetime(world):
    tokens, app, _key, token = world
    claims = tokens.verify(app, token, ISSUED + TTL - 0.5)
    assert claims == AccessClaims("user-1", "ext-1", "s" * 32, ISSUED + TTL, ISSUED)


def test_exp_and_iat_are_judged_by_the_now_given_not_the_system_clock(world):
    """The service's clock (``request.now``, shifted by ``saas.clock_offset``) decides."""
    tokens, app, _key, token = world
    assert refusal(tokens, app, token, ISSUED + TTL) == Reason.TOKEN_EXPIRED
    assert refusal(tokens, app, token, ISSUED - 0.5) == Reason.TOKEN_NOT_YET_VALID
    assert tokens.verify(app, token, ISSUED).user_id == "user-1"


def test_another_apps_key_audience_or_a_tampered_token_is_refused(world, box):
    tokens, app, key, token = world
    stranger = app_with(box, "zz000000", new_signing_key(box))
    assert refusal(tokens, stranger, token, ISSUED) == Reason.TOKEN_BAD_SIGNATURE
    same_key = app_with(box, "zz000001", key)
    assert refusal(tokens, same_key, token, ISSUED) == Reason.CLAIMS_INVALID  # audience
    header, payload, signature = token.split(".")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    assert refusal(tokens, app, f"{header}.{payload}.{flipped}", ISSUED) == \
        Reason.TOKEN_BAD_SIGNATURE
    for garbage in ("", "garbage", "a.b.c", token + ".x", "x" * 9000):
        with pytest.raises(InvalidAccessToken):
            tokens.verify(app, garbage, ISSUED)
