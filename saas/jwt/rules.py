"""Named checks and the two ways of running them.

A :class:`Rule` is one check of a token: a function of the token under check
that returns ``None`` or a refusal ``(Reason, message)``. A kind of token has
one tuple of rules, in the order the contract gives. The login path runs it
with :func:`run_fail_fast` (the first refusal is the answer); the token
debugger runs the very same tuple with :func:`run_all` and shows one row per
check. Nothing on the fail-fast path builds an object per check: a refusal
is a plain tuple and its message is only formatted when a check fails.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from saas.errors import Reason

Refusal = tuple[Reason, str]
PASS, FAIL, SKIP = "pass", "fail", "skip"
HIDDEN = object()  # a rule's ``skip`` answer: show no row for it


class TokenRejected(Exception):
    """A token failed a check; ``reason`` is the contract reason code."""

    def __init__(self, reason: Reason, message: str = "") -> None:
        super().__init__(message or str(reason))
        self.reason = reason
        self.message = message or str(reason).replace("_", " ")


@dataclass(frozen=True, slots=True)
class Rule:
    """One named check. Only ``check`` decides; the rest shapes the debugger's row.

    ``passed``: what a passing row says (a text, or a function of the token;
    None: no row when it passes). ``skip``: a function of the token that says
    why the check cannot be judged with what the debugger was given (a text,
    shown as skipped, or HIDDEN), or None to judge it. ``stops``: after this
    check fails there is nothing left to check.
    """

    name: str
    check: Callable[[Any], Refusal | None]
    passed: str | Callable[[Any], str] | None = None
    skip: Callable[[Any], Any] | None = None
    stops: bool = False


@dataclass(frozen=True)
class Row:
    """One check as the debugger shows it."""

    name: str
    outcome: str  # pass | fail | skip
    detail: str
    reason: str | None = None  # the contract reason, on failures


def run_fail_fast(rules: Sequence[Rule], token: Any,
                  rejected: type[TokenRejected] = TokenRejected) -> None:
    """Raise ``rejected`` with the first refusal, in order (the login path)."""
    for rule in rules:
        refusal = rule.check(token)
        if refusal is not None:
            raise rejected(*refusal)


def run_all(rules: Sequence[Rule], token: Any) -> list[Row]:
    """Every check, one row each, in the same order (the debugger)."""
    rows = []
    for rule in rules:
        why_not = rule.skip(token) if rule.skip is not None else None
        if why_not is HIDDEN:
            continue
        if why_not is not None:
            rows.append(Row(rule.name, SKIP, why_not))
            continue
        refusal = rule.check(token)
        if refusal is not None:
            reason, message = refusal
            rows.append(Row(rule.name, FAIL, message, str(reason)))
            if rule.stops:
                break
        elif rule.passed is not None:
            detail = rule.passed if isinstance(rule.passed, str) else rule.passed(token)
            rows.append(Row(rule.name, PASS, detail))
    return rows
