"""correlation states: a correlation rule's step hits and root-cause event per host and key

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('correlation_states',
    sa.Column('id', Id, nullable=False),
    sa.Column('hostname', sa.String(length=255), nullable=False),
    sa.Column('rule_id', sa.String(length=128), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('hits', JSON, nullable=False),
    sa.Column('root_event_id', sa.BigInteger(), nullable=True),
    sa.Column('root_last', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('hostname', 'rule_id', 'key', name='uq_correlation_states_key')
    )


def downgrade() -> None:
    op.drop_table('correlation_states')
