"""users.locale: the language a user chose for pages and emails (NULL: follow the browser)

Revision ID: 0009_user_locale
Revises: 0008_passkeys_sessions
Create Date: 2026-12-01 06:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = "0009_user_locale"
down_revision = "0008_passkeys_sessions"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("locale", sa.String(length=16), nullable=True))


def downgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("locale")
