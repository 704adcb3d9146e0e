"""event groups (count, last_seen) and auth-storm windows

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('trigger_events') as batch:
        batch.add_column(sa.Column('count', sa.Integer(), server_default=sa.text('1'), nullable=False))
        batch.add_column(sa.Column('last_seen', sa.DateTime(timezone=True), nullable=True))
        batch.create_index('ix_trigger_events_group', ['hostname', 'fingerprint', 'last_seen'], unique=False)
    op.execute("UPDATE trigger_events SET last_seen = time")
    op.create_table('auth_windows',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('hostname', sa.String(length=255), nullable=False),
    sa.Column('source', sa.String(length=255), nullable=False),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('storm_event_id', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('hostname', 'source', name='uq_auth_windows_source')
    )


def downgrade() -> None:
    op.drop_table('auth_windows')
    with op.batch_alter_table('trigger_events') as batch:
        batch.drop_index('ix_trigger_events_group')
        batch.drop_column('last_seen')
        batch.drop_column('count')
