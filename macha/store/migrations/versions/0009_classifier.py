"""trigger-model classifier: verdicts per template and the call log

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24
"""

from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('classified_templates',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('hostname', sa.String(length=255), nullable=False),
    sa.Column('template_id', sa.Integer(), nullable=False),
    sa.Column('verdict', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('model', sa.String(length=128), nullable=False),
    sa.Column('classified_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('hostname', 'template_id', name='uq_classified_templates')
    )
    op.create_table('classifier_calls',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('hostname', sa.String(length=255), nullable=False),
    sa.Column('time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('templates', sa.Integer(), nullable=False),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_classifier_calls_host_time', 'classifier_calls', ['hostname', 'time'], unique=False)
    op.create_table('classifier_state',
    sa.Column('hostname', sa.String(length=255), nullable=False),
    sa.Column('last_log_event_id', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('hostname')
    )


def downgrade() -> None:
    op.drop_table('classifier_state')
    op.drop_index('ix_classifier_calls_host_time', table_name='classifier_calls')
    op.drop_table('classifier_calls')
    op.drop_table('classified_templates')
