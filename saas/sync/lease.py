"""A lease on one stream: a Redis key set with ``NX`` and an expiry.

The holder's token is the key's value. Taking it is ``SET key token NX PX ttl``;
keeping it (``extend``) and giving it back (``release``) are compare-and-set
scripts on that one key, so a holder whose lease expired and was taken over
can neither extend nor delete its successor's. Each command touches one key,
which is legal on any Redis Cluster node; nothing else is coordinated.

The holder trusts its lease only until ``ttl`` after it *sent* the command
that set or extended it (less a margin), by its own monotonic clock: Redis
starts counting later, so the holder always gives up first.
"""

from __future__ import annotations

import time
import uuid

LEASE_TTL_MS = 5_000
# Stop trusting a lease this long before the holder's own deadline: covers a
# Redis clock running a little fast against ours.
SAFETY_MARGIN = 0.2  # fraction of the TTL

_EXTEND = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


def new_token(owner: str) -> str:
    """A holder's token: readable owner (host:pid) plus a per-run random part."""
    return f"{owner}:{uuid.uuid4().hex[:12]}"


class Lease:
    def __init__(self, client, key: str, token: str, ttl_ms: int = LEASE_TTL_MS) -> None:
        self.redis = client
        self.key = key
        self.token = token
        self.ttl_ms = ttl_ms
        self._trusted_until = 0.0  # monotonic; 0 = not held

    def _trust_from(self, sent: float) -> None:
        self._trusted_until = sent + self.ttl_ms / 1000 * (1 - SAFETY_MARGIN)

    def acquire(self) -> bool:
        sent = time.monotonic()
        if not self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms):
            return False
        self._trust_from(sent)
        return True

    @property
    def held(self) -> bool:
        return time.monotonic() < self._trusted_until

    def spare_ms(self) -> int:
        """How long the holder may go without calling ``keep`` (it extends the
        lease once past half its trusted time): a blocking read or a linger
        between two calls must not last longer."""
        window = self.ttl_ms * (1 - SAFETY_MARGIN)
        return max(0, int((self._trusted_until - time.monotonic()) * 1000 - window / 2))

    def keep(self) -> bool:
        """True while the lease is ours; past half its time, extend it first.

        False once it lapsed (a pause longer than the TTL, say): the caller
        must stop reading the stream, someone else may hold it now.
        """
        if not self.held:
            self._trusted_until = 0.0
            return False
        window = self.ttl_ms / 1000 * (1 - SAFETY_MARGIN)
        if self._trusted_until - time.monotonic() > window / 2:
            return True
        sent = time.monotonic()
        # Plain EVAL: an extension is rare (every couple of seconds) and needs
        # no script cache on any node.
        if self.redis.eval(_EXTEND, 1, self.key, self.token, self.ttl_ms):
            self._trust_from(sent)
            return True
        self._trusted_until = 0.0
        return False

    def release(self) -> None:
        """Delete the key if it still holds our token (never a successor's)."""
        self._trusted_until = 0.0
        self.redis.eval(_RELEASE, 1, self.key, self.token)


def lease_key(stream_key: str) -> str:
    """A stream's lease, beside it: ``{prefix}:events:{s3}:lease`` shares its
    stream's hash tag (same node), ``{prefix}:events:lease`` the single one's."""
    return stream_key + ":lease"
