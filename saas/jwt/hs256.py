"""Strict HS256 tokens of the login protocol (docs/protocol.md §4.1, §4.2, §5.1): what
every one of them must pass, and the request token we sign.

The checks of a token are named rules (``saas.jwt.rules``) over an
:class:`HS256Token`; the rules here (present, size, structure, header,
signature) open both kinds' lists, ``saas.jwt.tenant_tokens`` and
``saas.jwt.custom_tokens``. The key always comes from the caller, never from
the token (``kid``, ``jku`` and friends are ignored or refused). Messages may
quote a short piece of the token's own header or claims (the debugger shows
them to the member who pasted the token); never a secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from saas.errors import Reason
from saas.jwt.codec import Malformed, b64url_decode, b64url_encode, json_object
from saas.jwt.rules import Refusal, Rule

REQUEST_TOKEN_TYP = "bk-request+jwt"

_KEY_HEADERS = ("jku", "jwk", "x5u", "x5c")
_SIGNATURE_BYTES = hashlib.sha256().digest_size


@dataclass(frozen=True)
class Secret:
    """A key, with the words that name it in messages (never its value)."""

    label: str
    value: str


class HS256Token:
    """A presented token as the rules see it: what it is checked against, and
    its parts once the structure check has parsed them.

    ``secrets`` are tried in order (current, then previous); ``labels`` name
    them in messages and ``others`` (secrets of the other kind) are named
    when they verify the token instead — both only for the debugger.
    ``state``, ``require_bound`` and ``max_age`` are for tenant tokens.
    """

    __slots__ = ("claims", "header", "labels", "leeway", "limit", "matched", "max_age", "now",
                 "others", "raw", "require_bound", "secrets", "signature", "signing_input",
                 "state", "too_large")

    def __init__(self, raw: object, limit: int, too_large: Reason, secrets: Sequence[str],
                 now: int, leeway: int, *, labels: Sequence[str] = (),
                 others: Sequence[Secret] = (), state: str | None = None,
                 require_bound: bool = False, max_age: int | None = None) -> None:
        self.raw, self.limit, self.too_large = raw, limit, too_large
        self.secrets, self.labels, self.others = secrets, labels, others
        self.now, self.leeway, self.max_age = now, leeway, max_age
        self.state, self.require_bound = state, require_bound
        self.header = self.claims = None  # dicts, once parsed
        self.signing_input = self.signature = b""
        self.matched = -1  # index of the secret that verified


# -- size, structure, header, signature --------------------------------------------------


def _present(t: HS256Token) -> Refusal | None:
    if t.raw is None or (isinstance(t.raw, str) and not t.raw.strip()):
        return Reason.TOKEN_MISSING, "no token was given"
    if not isinstance(t.raw, str):
        return Reason.TOKEN_MALFORMED, "token is not a string"
    return None


def _size(t: HS256Token) -> Refusal | None:
    if len(t.raw) > t.limit:
        return t.too_large, f"{len(t.raw)} characters, more than {t.limit}"
    return None


def _structure(t: HS256Token) -> Refusal | None:
    """Three strictly decoded parts; records them on the token for the later checks."""
    parts = t.raw.split(".")
    if len(parts) != 3:
        return Reason.TOKEN_MALFORMED, f"a JWT has three dot-separated parts, this has {len(parts)}"
    try:
        t.header = json_object(b64url_decode(parts[0]))
        t.claims = json_object(b64url_decode(parts[1]))
        t.signature = b64url_decode(parts[2])
    except Malformed as exc:
        return Reason.TOKEN_MALFORMED, f"token part is {exc}"
    t.signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    return None


def _header(t: HS256Token) -> Refusal | None:
    header = t.header
    if header.get("alg") != "HS256":
        return Reason.TOKEN_ALG_NOT_ALLOWED, f"alg is {header.get('alg')!r}; only HS256 is allowed"
    present = [name for name in _KEY_HEADERS if name in header]
    if present:
        return Reason.TOKEN_ALG_NOT_ALLOWED, f"keys carried by the token ({', '.join(present)}) " \
                                             "are refused"
    if "crit" in header:
        return Reason.TOKEN_MALFORMED, "critical header extensions (crit) are refused"
    if "typ" not in header:
        return None
    typ = header["typ"]
    if not isinstance(typ, str):
        return Reason.TOKEN_MALFORMED, "typ is not a string"
    typ = typ.lower().removeprefix("application/")
    if typ == REQUEST_TOKEN_TYP:
        return Reason.CLAIMS_INVALID, "this is the request token we sent, not a login token"
    if typ != "jwt":
        return Reason.TOKEN_MALFORMED, f"typ must be JWT when present, not {header['typ']!r}"
    return None


def _hs256(secret: str, signing_input: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), signing_input, hashlib.sha256).digest()


def _verifies(secret: str, t: HS256Token) -> bool:
    return bool(secret) and len(t.signature) == _SIGNATURE_BYTES and hmac.compare_digest(
        _hs256(secret, t.signing_input), t.signature)


def _signature(t: HS256Token) -> Refusal | None:
    """The HMAC against each secret in order; records which one matched."""
    for index, secret in enumerate(t.secrets):
        if _verifies(secret, t):
            t.matched = index
            return None
    if not t.labels:
        return Reason.TOKEN_BAD_SIGNATURE, "signature does not verify"
    # A token signed with the app's other kind of secret is a classic mix-up.
    hint = next((f"; it was signed with the {other.label}" for other in reversed(t.others)
                 if _verifies(other.value, t)), "")
    tried = " and the ".join(t.labels)
    return Reason.TOKEN_BAD_SIGNATURE, f"does not verify with the {tried}{hint}"


def _signature_passed(t: HS256Token) -> str:
    return f"verifies with the {t.labels[t.matched]}" if t.labels else "verifies"


def signature_digest(token: str) -> str:
    """Hex SHA-256 of the decoded signature bytes (the replay marker, §4.2 step 3)."""
    return hashlib.sha256(b64url_decode(token.rsplit(".", 1)[-1], canonical=False)).hexdigest()


PRESENT = Rule("Token present", _present, stops=True)
SIZE = Rule("Size", _size, lambda t: f"{len(t.raw)} characters (at most {t.limit})")
STRUCTURE = Rule("Structure", _structure, "three base64url parts, JSON header and claims",
                 stops=True)
HEADER = Rule("Header", _header, lambda t: f"alg {t.header.get('alg')}")
SIGNATURE = Rule("Signature (HS256)", _signature, _signature_passed)


# -- the request token we send ----------------------------------------------------------------


def sign_request_token(
    secret: str,
    *,
    app_id: str,
    now: int,
    jti: str,
    data: dict | None = None,
    lifetime: int = 300,
) -> str:
    """Sign the request token sent to the tenant endpoint (docs/protocol.md §4.1)."""
    header = {"alg": "HS256", "typ": REQUEST_TOKEN_TYP}
    claims: dict[str, Any] = {"app_id": app_id, "iat": now, "exp": now + lifetime, "jti": jti}
    if data is not None:
        claims["data"] = data
    compact = {"separators": (",", ":"), "ensure_ascii": False, "allow_nan": False}
    signing_input = ".".join(
        b64url_encode(json.dumps(part, **compact).encode("utf-8")) for part in (header, claims)
    ).encode("ascii")
    return signing_input.decode("ascii") + "." + b64url_encode(_hs256(secret, signing_input))

