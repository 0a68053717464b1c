"""procrastinate's job queue schema (PostgreSQL only)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 10:00:00.000000

`FLOWSERVICE_QUEUE=postgres` dispatches runs as procrastinate jobs in the same database, so
`flowservice db upgrade` sets the queue up too: procrastinate's own schema file, applied when its job
table is absent, plus an index for finding a run's queued job. SQLite has no such queue: a no-op.
Upgrading procrastinate across a schema change takes a revision of ours applying its migration files
(the dependency is pinned below the next major version).
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# the scheduler's sweep asks "has this run a queued job?" (services/dispatch.requeue_lost)
RUN_INDEX = (
    "CREATE INDEX IF NOT EXISTS flowservice_procrastinate_jobs_run_id "
    "ON procrastinate_jobs ((args->>'run_id')) WHERE status = 'todo'"
)

DROP_SCHEMA = """
DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers, procrastinate_jobs,
    procrastinate_workers CASCADE;
DO $$
DECLARE routine record;
BEGIN
    FOR routine IN
        SELECT p.oid::regprocedure AS signature
        FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
        WHERE p.proname LIKE 'procrastinate\\_%' AND n.nspname = current_schema()
    LOOP
        EXECUTE 'DROP ROUTINE IF EXISTS ' || routine.signature || ' CASCADE';
    END LOOP;
END;
$$;
DROP TYPE IF EXISTS procrastinate_job_to_defer_v1, procrastinate_job_event_type,
    procrastinate_job_status CASCADE;
"""


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    exists = bind.exec_driver_sql("SELECT to_regclass('procrastinate_jobs') IS NOT NULL").scalar()
    if not exists:
        from procrastinate.schema import SchemaManager  # imported for PostgreSQL only: SQLite never needs it

        _execute_script(SchemaManager.get_schema())
    bind.exec_driver_sql(RUN_INDEX)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _execute_script(DROP_SCHEMA)


def _execute_script(sql: str) -> None:
    """Many statements at once, through the driver as written: psycopg runs a parameterless
    script as one simple query, and nothing in it is taken for a parameter placeholder."""
    driver = op.get_bind().connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor:
        cursor.execute(sql)
