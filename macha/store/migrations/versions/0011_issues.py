"""issues: one problem on one host, its audit log, and the issue_id of its events, reviews, analyses and actions

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
#: The rows an issue gathers: each gets a nullable issue_id (plain ALTER TABLE ADD COLUMN on every backend: no
#: foreign key, so SQLite does not rebuild the tables, and trigger_events may be a TimescaleDB hypertable).
LINKED = ('trigger_events', 'reviews', 'escalations', 'actions')


def upgrade() -> None:
    op.create_table('issues',
    sa.Column('id', Id, nullable=False),
    sa.Column('hostname', sa.String(length=255), nullable=False),
    sa.Column('issue_key', sa.String(length=64), nullable=False),
    sa.Column('groups', JSON, nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_event_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('event_count', sa.Integer(), nullable=False),
    sa.Column('acknowledged_by', sa.String(length=128), nullable=True),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_by', sa.String(length=128), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolve_reason', sa.Text(), nullable=True),
    sa.Column('reopened', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('hostname', 'issue_key', name='uq_issues_key')
    )
    op.create_index('ix_issues_status', 'issues', ['status', 'hostname'], unique=False)
    op.create_table('issue_audit',
    sa.Column('id', Id, nullable=False),
    sa.Column('time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('issue_id', Id, nullable=False),
    sa.Column('event', sa.String(length=16), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['issue_id'], ['issues.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_issue_audit_issue', 'issue_audit', ['issue_id', 'time'], unique=False)
    for table in LINKED:
        op.add_column(table, sa.Column('issue_id', sa.BigInteger(), nullable=True))
    op.create_index('ix_trigger_events_issue', 'trigger_events', ['issue_id'], unique=False)
    op.create_index('ix_reviews_issue', 'reviews', ['issue_id'], unique=False)
    op.create_index('ix_escalations_issue_id', 'escalations', ['issue_id'], unique=False)
    op.create_index('ix_actions_issue', 'actions', ['issue_id'], unique=False)

    # Like action_audit: who acknowledged, closed or reopened an issue stays written, whoever uses the database.
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION issue_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'issue_audit is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER issue_audit_append_only BEFORE UPDATE OR DELETE ON issue_audit "
            "FOR EACH ROW EXECUTE FUNCTION issue_audit_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER issue_audit_no_{verb.lower()} BEFORE {verb} ON issue_audit "
                "BEGIN SELECT RAISE(ABORT, 'issue_audit is append-only'); END"
            )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS issue_audit_append_only ON issue_audit")
        op.execute("DROP FUNCTION IF EXISTS issue_audit_append_only()")
    op.drop_index('ix_actions_issue', table_name='actions')
    op.drop_index('ix_escalations_issue_id', table_name='escalations')
    op.drop_index('ix_reviews_issue', table_name='reviews')
    op.drop_index('ix_trigger_events_issue', table_name='trigger_events')
    for table in LINKED:
        with op.batch_alter_table(table) as batch:
            batch.drop_column('issue_id')
    op.drop_index('ix_issue_audit_issue', table_name='issue_audit')
    op.drop_table('issue_audit')
    op.drop_index('ix_issues_status', table_name='issues')
    op.drop_table('issues')
