"""The hosted sign-in form's fields: the app's own, or the protocol's defaults.

The hosted form (docs/protocol.md §5.2) and the dashboard's test login show
the same fields, so the rule that picks them lives outside both views.
"""

from __future__ import annotations

import re

from saas.apps.cache import AppConfig

DEFAULT_FIELDS = (
    {"name": "id", "label": "User ID", "type": "text"},
    {"name": "passphrase", "label": "Passphrase", "type": "password"},
)
FIELD_TYPES = {"text", "password", "email", "tel", "number"}
_FIELD_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_FIELD_CHARS = 1024


def form_fields(app: AppConfig) -> list[dict[str, str]]:
    """The app's fields, or the protocol's defaults (``id``, ``passphrase``)."""
    configured = (app.hosted_form or {}).get("fields") or DEFAULT_FIELDS
    fields = []
    for field in configured:
        name = str(field.get("name", ""))
        if not _FIELD_NAME.fullmatch(name) or name == "state":
            continue
        kind = field.get("type", "text")
        fields.append({"name": name, "label": str(field.get("label") or name)[:100],
                       "type": kind if kind in FIELD_TYPES else "text"})
    return fields or list(DEFAULT_FIELDS)
