"""Last-writer-wins per top-level field, by server login time (docs/events.md).

Each field carries a version (``saas.sync.versions``: login time, then event
id). A field is replaced only by a greater version, so the result depends on
neither the order nor the repetition of the events — the property the sync
relies on to apply batches again safely. PostgreSQL applies the same rule in
``bk_merge_fields`` (migration 0002).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class VersionedObject:
    """An object with a version per top-level field."""

    values: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)

    def merge(self, data: dict[str, Any] | None, version: str) -> None:
        for name, value in (data or {}).items():
            if version > self.versions.get(name, ""):
                self.values[name] = value
                self.versions[name] = version

    def merge_object(self, other: VersionedObject) -> None:
        for name, value in other.values.items():
            if other.versions[name] > self.versions.get(name, ""):
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
        state.custom.merge(merge.custom, merge.version)
        state.profile.merge(merge.profile, merge.version)
    return states
