"""PKCE (RFC 7636), S256 only.

The login flows check the challenge and the token endpoint the verifier, so
it sits beside both rather than inside either.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from saas.jwt.codec import b64url_encode

_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43,128}$")
_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")


def valid_challenge(challenge: str | None) -> bool:
    return bool(challenge) and _CHALLENGE.match(challenge) is not None


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return b64url_encode(digest)


def verifier_matches(verifier: str | None, challenge: str) -> bool:
    if not verifier or not _VERIFIER.match(verifier):
        return False
    return hmac.compare_digest(s256(verifier), challenge)
