"""outbox tier: the likelihood tier each user was in when the message was written (results per tier)

Revision ID: i14_results
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "i14_results"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tier", sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("tier")
