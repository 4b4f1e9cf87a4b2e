"""OpenID Connect: client types, post-logout redirect URIs, hashed client secrets.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("apps") as batch:
        batch.add_column(sa.Column("client_type", sa.String(length=16),
                                   server_default="public", nullable=False))
        batch.add_column(sa.Column("pkce_required", sa.Boolean(), server_default="1",
                                   nullable=False))
        batch.add_column(sa.Column("post_logout_redirect_uris", JSON, server_default="[]",
                                   nullable=False))
        batch.add_column(sa.Column("oidc_custom_claim", sa.Boolean(), server_default="0",
                                   nullable=False))
        batch.create_check_constraint(
            op.f("ck_apps_client_type_known"), "client_type IN ('public', 'confidential')")
    op.create_table(
        "client_secrets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("current_hash", sa.String(length=64), nullable=False),
        sa.Column("previous_hash", sa.String(length=64), nullable=True),
        sa.Column("previous_valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"],
                                name=op.f("fk_client_secrets_app_id_apps"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_secrets")),
        sa.UniqueConstraint("app_id", name=op.f("uq_client_secrets_app_id")),
    )


def downgrade() -> None:
    op.drop_table("client_secrets")
    with op.batch_alter_table("apps") as batch:
        batch.drop_constraint(op.f("ck_apps_client_type_known"), type_="check")
        batch.drop_column("oidc_custom_claim")
        batch.drop_column("post_logout_redirect_uris")
        batch.drop_column("pkce_required")
        batch.drop_column("client_type")
