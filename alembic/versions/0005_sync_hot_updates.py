"""end_users: let the sync's updates be HOT (heap-only tuple) updates.

Every login moves ``last_login_at``. While an index covered that column, each
sync update had to write a new entry into every index of the table; no query
reads it (users are listed by external id). Without the index, and with room
left in each page (fillfactor 80), PostgreSQL updates a user row in place on
its page and touches no index: the sync's user upserts got faster.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_end_users_app_id_last_login_at", table_name="end_users")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE end_users SET (fillfactor = 80)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE end_users RESET (fillfactor)")
    op.create_index("ix_end_users_app_id_last_login_at", "end_users",
                    ["app_id", "last_login_at"])
