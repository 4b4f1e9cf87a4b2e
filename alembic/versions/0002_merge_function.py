"""bk_merge_fields: the sync's per-field last-writer-wins merge inside PostgreSQL.

Field versions become fixed-width text (``<15-digit ms>.<event id hex>``,
saas/sync/versions.py) compared with ``COLLATE "C"``, exactly as Python and
Redis' Lua compare them. Nothing else changes; SQLite (development) merges in
Python and gets no function.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

MERGE_FIELDS = """
CREATE FUNCTION bk_merge_fields(
    old_values jsonb, old_versions jsonb, new_values jsonb, new_versions jsonb,
    OUT merged_values jsonb, OUT merged_versions jsonb
) LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(jsonb_object_agg(name, CASE WHEN take_new THEN new_values -> name
                                                ELSE old_values -> name END), '{}'::jsonb),
           coalesce(jsonb_object_agg(name, CASE WHEN take_new THEN new_versions -> name
                                                ELSE old_versions -> name END), '{}'::jsonb)
    FROM (
        SELECT name,
               new_versions ? name AND (
                   NOT old_versions ? name
                   OR (new_versions ->> name) COLLATE "C" > (old_versions ->> name) COLLATE "C"
               ) AS take_new
        FROM (SELECT jsonb_object_keys(old_values) AS name
              UNION SELECT jsonb_object_keys(new_values)) AS names
    ) AS decided
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(MERGE_FIELDS)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION bk_merge_fields(jsonb, jsonb, jsonb, jsonb)")
