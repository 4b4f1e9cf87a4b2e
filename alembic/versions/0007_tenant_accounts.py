"""Tenant accounts: verified email, mail links, second factors, API keys owned by a member.

Existing API keys get a creator: the tenant's earliest owner, so no key
stops working on upgrade; from now on a key acts with its creator's role.
Existing members count as verified (they signed up before verification
existed and have used the address since).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _created_at() -> sa.Column:
    return sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                     nullable=False)


def _member_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["member_id"], ["members.id"],
                                   name=op.f(f"fk_{table}_member_id_members"),
                                   ondelete="CASCADE")


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("require_second_factor", sa.Boolean(), server_default="0",
                                   nullable=False))
    with op.batch_alter_table("members") as batch:
        batch.add_column(sa.Column("email_verified_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("sessions_valid_after", sa.DateTime(timezone=True)))
    op.execute("UPDATE members SET email_verified_at = created_at")
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("created_by_id", sa.Uuid()))
        batch.create_foreign_key(op.f("fk_api_keys_created_by_id_members"), "members",
                                 ["created_by_id"], ["id"], ondelete="SET NULL")
        batch.create_index(op.f("ix_api_keys_created_by_id"), ["created_by_id"])
    op.execute("""
        UPDATE api_keys SET created_by_id = (
            SELECT m.id FROM members m
            WHERE m.tenant_id = api_keys.tenant_id AND m.role = 'owner'
            ORDER BY m.created_at LIMIT 1)
    """)
    op.create_table(
        "account_links",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("new_email", sa.String(length=254)),
        _created_at(),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True)),
        _member_fk("account_links"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_account_links_token_hash")),
    )
    op.create_index(op.f("ix_account_links_member_id"), "account_links", ["member_id"])
    op.create_table(
        "totp_factors",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("secret_ciphertext", sa.Text(), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True)),
        sa.Column("last_used_step", sa.Integer()),
        _created_at(),
        _member_fk("totp_factors"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_totp_factors")),
        sa.UniqueConstraint("member_id", name=op.f("uq_totp_factors_member_id")),
    )
    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True)),
        _created_at(),
        _member_fk("recovery_codes"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_codes")),
    )
    op.create_index(op.f("ix_recovery_codes_member_id"), "recovery_codes", ["member_id"])
    op.create_table(
        "passkeys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("credential_id", sa.LargeBinary(length=1024), nullable=False),
        sa.Column("public_key", sa.LargeBinary(length=2048), nullable=False),
        sa.Column("sign_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("transports", JSON, server_default="[]", nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        _created_at(),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
        _member_fk("passkeys"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_passkeys")),
        sa.UniqueConstraint("credential_id", name=op.f("uq_passkeys_credential_id")),
    )
    op.create_index(op.f("ix_passkeys_member_id"), "passkeys", ["member_id"])


def downgrade() -> None:
    for table in ("passkeys", "recovery_codes", "totp_factors", "account_links"):
        op.drop_table(table)
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_index(op.f("ix_api_keys_created_by_id"))
        batch.drop_constraint(op.f("fk_api_keys_created_by_id_members"), type_="foreignkey")
        batch.drop_column("created_by_id")
    with op.batch_alter_table("members") as batch:
        batch.drop_column("sessions_valid_after")
        batch.drop_column("email_verified_at")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("require_second_factor")
