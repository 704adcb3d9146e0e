"""log_templates.merged_into: the surviving template of a template merged into another

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29
"""

from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('log_templates', sa.Column('merged_into', sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column('log_templates', 'merged_into')
