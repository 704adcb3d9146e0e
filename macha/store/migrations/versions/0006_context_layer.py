"""context layer: log templates, token calibration, unique metric samples, memory sync marker

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('log_templates',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('hostname', sa.String(length=255), nullable=False),
    sa.Column('cluster_id', sa.Integer(), nullable=False),
    sa.Column('template', sa.Text(), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('first_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('hostname', 'cluster_id', name='uq_log_templates_cluster')
    )
    op.create_table('template_state',
    sa.Column('hostname', sa.String(length=255), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('hostname')
    )
    op.create_table('token_calibration',
    sa.Column('model', sa.String(length=255), nullable=False),
    sa.Column('factor', sa.Float(), nullable=False),
    sa.Column('samples', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('model')
    )
    op.add_column('log_events', sa.Column('template_id', sa.Integer(), nullable=True))
    op.add_column('reviews', sa.Column('remembered_at', sa.DateTime(timezone=True), nullable=True))
    # Samples become unique per (host, series, time) so that imports are idempotent. Samples of labelled series
    # (disk_percent of each mount) were stored under the bare name with the series in metadata: name them by series
    # first, so that only true twins remain; keep the first of those.
    series = ("json_extract(metadata, '$.series')" if op.get_bind().dialect.name == "sqlite"
              else "metadata->>'series'")
    op.execute(f"UPDATE system_metrics SET metric_name = substr({series}, 1, 128) WHERE {series} IS NOT NULL")
    op.execute(
        "DELETE FROM system_metrics WHERE id NOT IN "
        "(SELECT min(id) FROM system_metrics GROUP BY hostname, metric_name, time)"
    )
    op.drop_index('ix_system_metrics_host_name_time', table_name='system_metrics')
    op.create_index('ix_system_metrics_host_name_time', 'system_metrics', ['hostname', 'metric_name', 'time'],
                    unique=True)


def downgrade() -> None:
    op.drop_index('ix_system_metrics_host_name_time', table_name='system_metrics')
    op.create_index('ix_system_metrics_host_name_time', 'system_metrics', ['hostname', 'metric_name', 'time'],
                    unique=False)
    op.drop_column('reviews', 'remembered_at')
    op.drop_column('log_events', 'template_id')
    op.drop_table('token_calibration')
    op.drop_table('template_state')
    op.drop_table('log_templates')
