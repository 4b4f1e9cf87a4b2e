"""Fixtures of the unit tests."""

from __future__ import annotations

import uuid

import pytest

from saas.redis import Keys, redis_from_url


@pytest.fixture(params=["redis", "memory"])
def backend(request, redis_prefix):
    """(client, keys) on real Redis and on the embedded store: one contract, both backends."""
    if request.param == "redis":
        client = request.getfixturevalue("redis_client")
    else:
        client = redis_from_url(f"memory://{uuid.uuid4().hex}")
    return client, Keys(f"{redis_prefix}:unit:{uuid.uuid4().hex[:8]}")
