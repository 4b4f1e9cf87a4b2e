"""Last-writer-wins per top-level field, by server login time (DESIGN §2).

Each field carries a version (the login time in ms). A field is replaced only
by a newer version; equal versions are settled by the canonical JSON of the
value, so the result depends on neither the order nor the repetition of the
events — the property the sync relies on to apply batches again safely.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _wins(new_version: int, new_value: Any, old_version: int, old_value: Any) -> bool:
    if new_version != old_version:
        return new_version > old_version
    return _canonical(new_value) > _canonical(old_value)


@dataclass
class VersionedObject:
    """An object with a version per top-level field."""

    values: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)

    def merge(self, data: dict[str, Any] | None, version: int) -> None:
        for name, value in (data or {}).items():
            if name not in self.versions or _wins(
                version, value, self.versions[name], self.values[name]
            ):
                self.values[name] = value
                self.versions[name] = version

    def merge_object(self, other: VersionedObject) -> None:
        for name, value in other.values.items():
            if name not in self.versions or _wins(
                other.versions[name], value, self.versions[name], self.values[name]
            ):
                self.values[name] = value
                self.versions[name] = other.versions[name]


@dataclass
class UserState:
    """What a batch (or the stored row) says about one end user."""

    external_id: str
    app_uuid: Any
    first_login_ms: int
    last_login_ms: int
    custom: VersionedObject = field(default_factory=VersionedObject)
    profile: VersionedObject = field(default_factory=VersionedObject)

    def absorb(self, other: UserState) -> None:
        self.first_login_ms = min(self.first_login_ms, other.first_login_ms)
        self.last_login_ms = max(self.last_login_ms, other.last_login_ms)
        self.custom.merge_object(other.custom)
        self.profile.merge_object(other.profile)


def collapse(merges) -> dict[Any, UserState]:
    """Fold a batch's user merges into one state per user."""
    states: dict[Any, UserState] = {}
    for merge in merges:
        state = states.get(merge.user_id)
        if state is None:
            state = states[merge.user_id] = UserState(
                external_id=merge.external_id, app_uuid=merge.app_uuid,
                first_login_ms=merge.login_at_ms, last_login_ms=merge.login_at_ms,
            )
        state.first_login_ms = min(state.first_login_ms, merge.login_at_ms)
        state.last_login_ms = max(state.last_login_ms, merge.login_at_ms)
        state.custom.merge(merge.custom, merge.login_at_ms)
        state.profile.merge(merge.profile, merge.login_at_ms)
    return states
