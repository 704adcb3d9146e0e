"""host facts as columns (role, OS, kernel, NixOS generation, Macha version) and host relationships

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29
"""

from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('hosts') as batch:
        batch.add_column(sa.Column('role', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('os', sa.String(length=255), nullable=True))
        batch.add_column(sa.Column('kernel', sa.String(length=255), nullable=True))
        batch.add_column(sa.Column('nixos_generation', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('macha_version', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('facts_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table('host_relationships',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('source', sa.String(length=255), nullable=False),
    sa.Column('target', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'target', 'kind', name='uq_host_relationships')
    )
    op.create_index('ix_host_relationships_target', 'host_relationships', ['target'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_host_relationships_target', table_name='host_relationships')
    op.drop_table('host_relationships')
    with op.batch_alter_table('hosts') as batch:
        for column in ('facts_at', 'macha_version', 'nixos_generation', 'kernel', 'os', 'role'):
            batch.drop_column(column)
