"""the fleet registry: each host's Macha roles, its collector's last beat, and since when it is silent

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-29
"""

from alembic import op
import sqlalchemy as sa


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('hosts') as batch:
        batch.add_column(sa.Column('macha_role', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('beat_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('silent_since', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('hosts') as batch:
        for column in ('silent_since', 'beat_at', 'macha_role'):
            batch.drop_column(column)
