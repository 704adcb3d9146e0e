"""meta analyses (kind, issue key, attachment, transcript) and chat conversations

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('escalations') as batch:
        batch.add_column(sa.Column('kind', sa.String(length=16), nullable=False, server_default='escalation'))
        batch.add_column(sa.Column('issue_key', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('attached_to', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch.add_column(sa.Column('model', sa.String(length=128), nullable=True))
        batch.add_column(sa.Column('started_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('error', sa.Text(), nullable=True))
        batch.add_column(sa.Column('transcript', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'),
                                   nullable=False, server_default='[]'))
        batch.create_foreign_key('fk_escalations_attached_to', 'escalations', ['attached_to'], ['id'])
        batch.create_index('ix_escalations_issue', ['hostname', 'issue_key'])
    op.create_table('chat_conversations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('hostname', sa.String(length=255), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('approval_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('escalation_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['approval_id'], ['actions.id'], ),
    sa.ForeignKeyConstraint(['escalation_id'], ['escalations.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('chat_messages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('conversation_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('model', sa.String(length=128), nullable=True),
    sa.Column('transcript', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['chat_conversations.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_chat_messages_conversation', 'chat_messages', ['conversation_id', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_chat_messages_conversation', table_name='chat_messages')
    op.drop_table('chat_messages')
    op.drop_table('chat_conversations')
    with op.batch_alter_table('escalations') as batch:
        batch.drop_index('ix_escalations_issue')
        batch.drop_constraint('fk_escalations_attached_to', type_='foreignkey')
        for col in ('transcript', 'error', 'finished_at', 'started_at', 'model', 'attached_to', 'issue_key', 'kind'):
            batch.drop_column(col)
