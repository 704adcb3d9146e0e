"""indexes for the dashboard's reads: metric values covered by the series index, and active event groups by host

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29

A chart reads every sample of its series over the range; with the value in the index it never visits the table
(half the time of a 24 h chart on both backends). PostgreSQL carries the value in the unique index itself
(INCLUDE); SQLite has no INCLUDE, so it gets a second index with the value as its last column.

A host's health counts the event groups seen in the last hour, coalesce(last_seen, time): an expression index
makes that a range seek instead of a pass over every event of the host.
"""

from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

SERIES_KEY = ['hostname', 'metric_name', 'time']
ACTIVE = sa.text('coalesce(last_seen, "time")')


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_index('ix_system_metrics_host_name_time', table_name='system_metrics')
        op.create_index('ix_system_metrics_host_name_time', 'system_metrics', SERIES_KEY, unique=True,
                        postgresql_include=['value'])
    else:
        op.create_index('ix_system_metrics_host_name_time_value', 'system_metrics', [*SERIES_KEY, 'value'])
    op.create_index('ix_trigger_events_host_active', 'trigger_events', ['hostname', ACTIVE])


def downgrade() -> None:
    op.drop_index('ix_trigger_events_host_active', table_name='trigger_events')
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_index('ix_system_metrics_host_name_time', table_name='system_metrics')
        op.create_index('ix_system_metrics_host_name_time', 'system_metrics', SERIES_KEY, unique=True)
    else:
        op.drop_index('ix_system_metrics_host_name_time_value', table_name='system_metrics')
