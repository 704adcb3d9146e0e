"""metric baselines

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-29
"""

from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('baseline_states',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('hostname', sa.String(length=255), nullable=False),
    sa.Column('series', sa.String(length=512), nullable=False),
    sa.Column('samples', sa.Integer(), nullable=False),
    sa.Column('first_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('fast', sa.Float(), nullable=False),
    sa.Column('mid', sa.Float(), nullable=False),
    sa.Column('center', sa.Float(), nullable=False),
    sa.Column('spread', sa.Float(), nullable=False),
    sa.Column('change_spread', sa.Float(), nullable=False),
    sa.Column('vol', sa.Float(), nullable=False),
    sa.Column('vol_recent', sa.Float(), nullable=False),
    sa.Column('last', sa.Float(), nullable=False),
    sa.Column('streak', sa.Integer(), nullable=False),
    sa.Column('calm', sa.Integer(), nullable=False),
    sa.Column('raised', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('hostname', 'series', name='uq_baseline_states_series')
    )
    op.create_table('baseline_buckets',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('hostname', sa.String(length=255), nullable=False),
    sa.Column('series', sa.String(length=512), nullable=False),
    sa.Column('bucket', sa.Integer(), nullable=False),
    sa.Column('samples', sa.Integer(), nullable=False),
    sa.Column('center', sa.Float(), nullable=False),
    sa.Column('spread', sa.Float(), nullable=False),
    sa.Column('vol', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('hostname', 'series', 'bucket', name='uq_baseline_buckets_bucket')
    )


def downgrade() -> None:
    op.drop_table('baseline_buckets')
    op.drop_table('baseline_states')
