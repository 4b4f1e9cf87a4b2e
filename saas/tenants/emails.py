"""Members' email addresses in one canonical form, for storing and comparing.

NFKC folds compatibility look-alikes (fullwidth ``ａ`` → ``a``, ligatures
``ﬁ`` → ``fi``, fullwidth ``＠`` → ``@``) and ``str.casefold`` folds case more
thoroughly than ``lower`` (``ẞ`` → ``ss``), so every spelling of one address
is one address: a look-alike copy cannot make a second account, and sign-in,
invitations and rate-limit keys see the same string. Case-folding the local
part is a deliberate departure from RFC 5321 (which lets it be case-sensitive);
no mail provider in use treats it so.
"""

from __future__ import annotations

import unicodedata


def normalise_email(value: str) -> str:
    """The canonical form of an email address (NFKC, case-folded, trimmed)."""
    folded = unicodedata.normalize("NFKC", value).strip().casefold()
    # Case folding can produce sequences NFKC would write differently again.
    return unicodedata.normalize("NFKC", folded)
