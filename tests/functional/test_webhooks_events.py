"""One rule, two spellings: the SQL the sync's PostgreSQL path runs is generated
from the same table as the Python of the generic path, and builds the same data."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import text

from saas.webhooks.events import (
    FROM_AUDIT,
    UserChange,
    audit_data,
    audit_data_sql,
    audit_event_type_sql,
    user_data,
    user_data_sql,
    user_event_id,
    user_event_id_sql,
)

AUDIT_ROW = """(SELECT CAST(:type AS text) AS type, CAST(:user_id AS uuid) AS user_id,
                CAST(:external_id AS text) AS external_id, CAST(:reason AS text) AS reason,
                CAST(:details AS jsonb) AS details) c"""


@pytest.mark.parametrize("details", [
    {"flow": "redirect", "attempt_id": "at-1", "sid": "sid-1", "other": 1},
    {},  # absent keys are null in both spellings
], ids=["details", "no-details"])
@pytest.mark.parametrize("audit_type", list(FROM_AUDIT))
def test_each_audit_rule_builds_the_same_event_in_sql_and_python(db, audit_type, details):
    record = {"type": audit_type, "user_id": str(uuid.uuid4()), "external_id": "ann",
              "reason": "user_id_missing", "details": details}
    sql = (f"SELECT {audit_event_type_sql('c')} AS type, "  # noqa: S608 (constants)
           f"{audit_data_sql('c')} AS data FROM {AUDIT_ROW}")
    row = db.execute(text(sql), {**record, "details": json.dumps(details)}).one()
    assert row.type == FROM_AUDIT[audit_type].event.value
    assert row.data == audit_data(record)


def test_user_events_get_the_same_data_and_id_in_sql_and_python(db):
    change = UserChange(user_id=str(uuid.uuid4()), app_uuid=uuid.uuid4(), external_id="ann",
                        custom={"plan": "pro"}, profile={"name": "Ann"},
                        version_ms=1764800000123)
    sql = (f"SELECT {user_event_id_sql('c.user_id', 'c.version_ms')} AS id, "  # noqa: S608
           f"{user_data_sql('c')} AS data FROM (SELECT CAST(:user_id AS uuid) AS user_id, "
           "CAST(:external_id AS text) AS external_id, CAST(:custom AS jsonb) AS custom, "
           "CAST(:profile AS jsonb) AS profile, "
           "CAST(:version_ms AS bigint) AS version_ms) c")
    row = db.execute(text(sql),
        {"user_id": change.user_id, "external_id": change.external_id,
         "custom": json.dumps(change.custom), "profile": json.dumps(change.profile),
         "version_ms": change.version_ms}).one()
    assert row.id == user_event_id(change.user_id, change.version_ms)
    assert row.data == user_data(change) == {"user_id": change.user_id, "external_id": "ann",
                                             "custom": {"plan": "pro"},
                                             "profile": {"name": "Ann"}}
