"""actions and audit

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('actions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('hostname', sa.String(length=255), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('arguments', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('dedup_key', sa.String(length=64), nullable=False),
    sa.Column('risk', sa.String(length=16), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('verdict_reason', sa.Text(), nullable=False),
    sa.Column('proposer', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('review_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('evidence', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('merged_count', sa.Integer(), nullable=False),
    sa.Column('autonomy_level', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.String(length=128), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('argv', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('exit_code', sa.Integer(), nullable=True),
    sa.Column('stdout', sa.Text(), nullable=True),
    sa.Column('stderr', sa.Text(), nullable=True),
    sa.Column('duration_s', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['review_id'], ['reviews.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('actions', schema=None) as batch_op:
        batch_op.create_index('ix_actions_host_action_time', ['hostname', 'action', 'started_at'], unique=False)
        batch_op.create_index('ix_actions_status', ['status', 'hostname'], unique=False)
        batch_op.create_index('uq_actions_pending', ['hostname', 'dedup_key'], unique=True, sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'"))

    op.create_table('action_audit',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('action_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('hostname', sa.String(length=255), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('event', sa.String(length=16), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('autonomy_level', sa.String(length=16), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('detail', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['action_id'], ['actions.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('action_audit', schema=None) as batch_op:
        batch_op.create_index('ix_action_audit_action', ['action_id'], unique=False)
        batch_op.create_index('ix_action_audit_time', ['time'], unique=False)

    # The audit log is append-only for everyone who uses Macha's database, not just for Macha's code.
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION action_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'action_audit is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER action_audit_append_only BEFORE UPDATE OR DELETE ON action_audit "
            "FOR EACH ROW EXECUTE FUNCTION action_audit_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER action_audit_no_{verb.lower()} BEFORE {verb} ON action_audit "
                "BEGIN SELECT RAISE(ABORT, 'action_audit is append-only'); END"
            )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS action_audit_append_only ON action_audit")
        op.execute("DROP FUNCTION IF EXISTS action_audit_append_only()")
    with op.batch_alter_table('action_audit', schema=None) as batch_op:
        batch_op.drop_index('ix_action_audit_time')
        batch_op.drop_index('ix_action_audit_action')

    op.drop_table('action_audit')
    with op.batch_alter_table('actions', schema=None) as batch_op:
        batch_op.drop_index('uq_actions_pending', sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'"))
        batch_op.drop_index('ix_actions_status')
        batch_op.drop_index('ix_actions_host_action_time')

    op.drop_table('actions')
