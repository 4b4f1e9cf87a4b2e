"""Step-up: sensitive dashboard actions need a fresh second factor.

Revealing or rotating secrets, creating API keys and managing members ask a
member who has a second factor for one given within ``FRESH_SECONDS``; the
time of the last one is kept in the dashboard session. Members without a
second factor pass (their password is checked by the action itself).
"""

from __future__ import annotations

import time

from saas.accounts.factors import has_second_factor
from saas.accounts.second_factor import allowed, check_code

FRESH_SECONDS = 300
STAMP = "second_factor_at"  # epoch seconds of the last second factor in this session
FIELD = "second_factor"  # the forms' code field


def mark_fresh(session) -> None:
    session[STAMP] = time.time()


def _stamp_fresh(request) -> bool:
    stamp = request.session.get(STAMP)
    return isinstance(stamp, int | float) and 0 <= time.time() - stamp < FRESH_SECONDS


def step_up_needed(request) -> bool:
    """Would a sensitive action ask this member for a second factor now?"""
    member = request.member
    return (member is not None and not _stamp_fresh(request)
            and has_second_factor(request.db, member))


def second_factor_fresh(request) -> bool:
    """True when the signed-in member has no second factor, gave one in the
    last five minutes, or posts a right code in the ``second_factor`` field
    now (TOTP or recovery code, which then counts as fresh). Wrong codes are
    throttled and audited like the sign-in's second step."""
    member = request.member
    if member is None:
        return False
    if not step_up_needed(request):
        return True
    code = request.POST.get(FIELD, "").strip()
    if not code or not allowed(request, member).allowed:
        return False
    if check_code(request, member, code) is None:
        return False
    mark_fresh(request.session)
    return True
