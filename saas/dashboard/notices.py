"""Mail hooks of the dashboard's sign-up, in one place.

HOOK, a no-op for now: mail is being built in parallel (``saas.mail``); when
it lands, this function sends the owner of ``email`` a message saying that
someone tried to create an account with their address (with links to sign
in and to reset the password), through ``saas.mail.notify_signup_attempt``.
The sign-up page answers identically either way, so this mail is the only
place the difference shows, and only to the address's owner.
"""

from __future__ import annotations


def notify_signup_attempt(request, email: str) -> None:
    """Tell the owner of ``email`` (normalised) that a sign-up tried it. No-op until mail."""
    return None
