"""Email addresses as stored and compared: NFKC-normalised and case-folded."""

from __future__ import annotations

import unicodedata


def normalise_email(email: str) -> str:
    """One spelling per address: a fullwidth or differently-cased copy of an
    address is the same address (docs/accounts.md)."""
    return unicodedata.normalize("NFKC", email.strip()).casefold()
