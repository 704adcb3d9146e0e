"""threshold states

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('threshold_states',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('hostname', sa.String(length=255), nullable=False),
    sa.Column('series', sa.String(length=512), nullable=False),
    sa.Column('streak', sa.Integer(), nullable=False),
    sa.Column('raised', sa.Boolean(), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('hostname', 'series', name='uq_threshold_states_series')
    )


def downgrade() -> None:
    op.drop_table('threshold_states')
