"""A small proof of work: the cost limit put on sign-in for an email under attack.

The server issues a random challenge bound to one subject (the normalised
email) and stores only its hash in Redis for ten minutes. The client finds a
nonce such that SHA-256("<challenge>:<nonce>") starts with ``bits`` zero bits
(``static/pow.js`` in the browser; :func:`solve` here, for tests and scripts)
and sends both back. A challenge is good once, for its subject only.

It is deliberately modest (2^16 hashes by default: a second or two in a
browser): it makes each guess cost something without locking anyone out. A
CAPTCHA would replace it in ``saas.dashboard.auth.cost_challenge_passed``.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
from dataclasses import dataclass

from saas.crypto import hash_token, random_token

CHALLENGE_TTL = 600
MAX_CHALLENGE_LENGTH = 64
MAX_NONCE_LENGTH = 32


@dataclass(frozen=True)
class Challenge:
    token: str
    bits: int


def _key(request, token: str) -> str:
    return request.redis_keys.global_("pow", hash_token(token))


def _subject(subject: str) -> str:
    return hashlib.sha256(subject.encode()).hexdigest()


def leading_zero_bits(digest: bytes) -> int:
    bits = 0
    for byte in digest:
        if byte:
            return bits + 8 - byte.bit_length()
        bits += 8
    return bits


def _meets(token: str, nonce: str, bits: int) -> bool:
    return leading_zero_bits(hashlib.sha256(f"{token}:{nonce}".encode()).digest()) >= bits


def issue(request, subject: str, bits: int) -> Challenge:
    """A new challenge for ``subject``, kept (as a hash) for ten minutes."""
    token = random_token(24)
    request.redis.set(_key(request, token), f"{bits}:{_subject(subject)}", ex=CHALLENGE_TTL)
    return Challenge(token, bits)


def redeem(request, subject: str, token: str, nonce: str) -> bool:
    """Whether the nonce solves a live challenge of this subject; the challenge
    is used up either way once it is known."""
    if not (0 < len(token) <= MAX_CHALLENGE_LENGTH and 0 < len(nonce) <= MAX_NONCE_LENGTH):
        return False
    stored = request.redis.getdel(_key(request, token))
    if stored is None:
        return False
    bits, _, bound = (stored.decode() if isinstance(stored, bytes) else stored).partition(":")
    return hmac.compare_digest(bound, _subject(subject)) and _meets(token, nonce, int(bits))


def solve(token: str, bits: int) -> str:
    """The first nonce that solves the challenge (what static/pow.js does)."""
    for counter in itertools.count():
        if _meets(token, str(counter), bits):
            return str(counter)
    raise AssertionError("unreachable")
