"""novelty: when each host began learning its templates, each template's first line and benign mark, the last
novelty event of each unit, and the append-only audit of benign marks

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-29
"""

from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('novelty_hosts',
    sa.Column('hostname', sa.String(length=255), nullable=False),
    sa.Column('learning_since', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('hostname')
    )
    op.create_table('novelty_templates',
    sa.Column('id', Id, nullable=False),
    sa.Column('hostname', sa.String(length=255), nullable=False),
    sa.Column('cluster_id', sa.Integer(), nullable=False),
    sa.Column('first_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('first_unit', sa.String(length=255), nullable=True),
    sa.Column('benign', sa.Boolean(), nullable=False),
    sa.Column('benign_by', sa.String(length=128), nullable=True),
    sa.Column('benign_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('events', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('hostname', 'cluster_id', name='uq_novelty_templates_cluster')
    )
    op.create_table('novelty_units',
    sa.Column('id', Id, nullable=False),
    sa.Column('hostname', sa.String(length=255), nullable=False),
    sa.Column('unit', sa.String(length=255), nullable=False),
    sa.Column('last_event_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('hostname', 'unit', name='uq_novelty_units_unit')
    )
    op.create_table('template_audit',
    sa.Column('id', Id, nullable=False),
    sa.Column('time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('hostname', sa.String(length=255), nullable=False),
    sa.Column('template_id', sa.BigInteger(), nullable=False),
    sa.Column('cluster_id', sa.Integer(), nullable=False),
    sa.Column('event', sa.String(length=16), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('template', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_template_audit_host_time', 'template_audit', ['hostname', 'time'], unique=False)

    # Like issue_audit: who said a template is benign stays written, whoever uses the database.
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION template_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'template_audit is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER template_audit_append_only BEFORE UPDATE OR DELETE ON template_audit "
            "FOR EACH ROW EXECUTE FUNCTION template_audit_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER template_audit_no_{verb.lower()} BEFORE {verb} ON template_audit "
                "BEGIN SELECT RAISE(ABORT, 'template_audit is append-only'); END"
            )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS template_audit_append_only ON template_audit")
        op.execute("DROP FUNCTION IF EXISTS template_audit_append_only()")
    op.drop_index('ix_template_audit_host_time', table_name='template_audit')
    op.drop_table('template_audit')
    op.drop_table('novelty_units')
    op.drop_table('novelty_templates')
    op.drop_table('novelty_hosts')
