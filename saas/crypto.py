"""Encryption of secrets at rest with the service master key.

Secrets (custom-auth and custom-token secrets, signing keys' private parts) are
stored as Fernet tokens (AES-128-CBC + HMAC-SHA256) under a key derived from
``SAAS_MASTER_KEY`` with HKDF. Previous master keys (``SAAS_MASTER_KEY_PREVIOUS``)
still decrypt, so ``saas-admin CONFIG rotate-master-key`` can re-encrypt
everything under the new key without downtime.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from saas.config import ConfigurationError

MIN_MASTER_KEY_LENGTH = 32


def _derive_fernet_key(master_key: str) -> bytes:
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"bridgekeeper",
        info=b"bridgekeeper secrets at rest v1",
    )
    return base64.urlsafe_b64encode(hkdf.derive(master_key.encode("utf-8")))


class SecretBox:
    """Encrypts with the current master key, decrypts with current or previous."""

    def __init__(self, master_key: str, previous: Iterable[str] = ()) -> None:
        keys = [master_key, *previous]
        for key in keys:
            if len(key) < MIN_MASTER_KEY_LENGTH:
                raise ConfigurationError(
                    "bridgekeeper: SAAS_MASTER_KEY must be at least "
                    f"{MIN_MASTER_KEY_LENGTH} characters (e.g. `openssl rand -base64 32`)"
                )
        self._fernet = MultiFernet([Fernet(_derive_fernet_key(k)) for k in keys])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode("ascii")).decode("utf-8")
        except InvalidToken as exc:
            raise ValueError("secret cannot be decrypted with the configured master keys") from exc

    def reencrypt(self, ciphertext: str) -> str:
        """Return the ciphertext under the current master key."""
        return self._fernet.rotate(ciphertext.encode("ascii")).decode("ascii")


def secret_box_from_settings(settings) -> SecretBox:
    return SecretBox(settings["saas.master_key"], settings.get("saas.master_key_previous", ()))


def hash_token(token: str) -> str:
    """Hash of a high-entropy bearer value (API key, refresh token) for storage.

    These values carry ≥ 256 bits of randomness, so a fast hash is enough; the
    lookup by hash is exact and the comparison happens in the database index.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def constant_time_equals(a: str | bytes, b: str | bytes) -> bool:
    if isinstance(a, str):
        a = a.encode("utf-8")
    if isinstance(b, str):
        b = b.encode("utf-8")
    return hmac.compare_digest(a, b)


def random_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def includeme(config) -> None:
    config.registry["saas.secret_box"] = secret_box_from_settings(config.registry.settings)
    config.add_request_method(
        lambda request: request.registry["saas.secret_box"], "secret_box", reify=True
    )
