"""procrastinate's job table, as the distributed queue uses it (PostgreSQL only).

Jobs are written with procrastinate's own SQL function (`procrastinate_defer_jobs_v1`, what its
`defer` calls) on the SQLAlchemy connection of the caller, so a run and its job commit or roll back
together. A job only says "execute run X"; the run's state stays in the runs table.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, exists, literal_column, or_, select, text
from sqlalchemy.orm import Session

from flowservice.store.tables import Run

# One statement per batch: the runs arrive as two arrays, and every job is built in the database.
_DEFER = text(
    """
    SELECT procrastinate_defer_jobs_v1(ARRAY(
        SELECT ROW(
            CAST(:queue AS varchar),
            CAST(:task AS varchar),
            0,
            NULL::text,
            NULL::text,
            jsonb_build_object('run_id', item.run_id),
            CASE WHEN item.ready_at IS NOT NULL THEN to_timestamp(item.ready_at / 1000.0) END
        )::procrastinate_job_to_defer_v1
        FROM unnest(CAST(:run_ids AS text[]), CAST(:ready_at AS bigint[])) AS item(run_id, ready_at)
    ))
    """
)


def defer(session: Session, *, queue: str, task: str, runs: Sequence[tuple[str, int | None]]) -> None:
    """Queue one job per (run id, not before epoch ms, or None for at once), in one statement."""
    if not runs:
        return
    session.execute(
        _DEFER,
        {
            "queue": queue,
            "task": task,
            "run_ids": [run_id for run_id, _ in runs],
            "ready_at": [ready_at for _, ready_at in runs],
        },
    )


def orphans(session: Session, *, task: str, now: int, settled: int, limit: int) -> list[tuple[str, int]]:
    """Runnable runs that no queued job will execute, locked (SKIP LOCKED: sweepers share them).

    Runnable: in progress under an expired lease (its worker died or lost it), or scheduled and due
    since before `settled` (a job that went missing: its worker died between fetching the job and
    claiming the run, or the run was made while the queue was embedded). A job being executed does
    not count: its worker either holds the run's lease, or is presumed dead.
    """
    queued = exists(
        select(literal_column("1"))
        .select_from(text("procrastinate_jobs AS job"))
        .where(
            text("job.status = 'todo'"),
            text("job.task_name = :task").bindparams(task=task),
            text("job.args->>'run_id' = runs.id"),
        )
    )
    query = (
        select(Run.id, Run.ready_at)
        .where(
            or_(
                and_(Run.status == "scheduled", Run.ready_at <= settled, Run.created_at <= settled),
                and_(Run.status == "inProgress", Run.lease_expires_at < now),
            ),
            ~queued,
        )
        .order_by(Run.created_at, Run.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=Run)
    )
    return [(run_id, ready_at) for run_id, ready_at in session.execute(query)]


_DEFER_SLICES = text(
    """
    SELECT procrastinate_defer_jobs_v1(ARRAY(
        SELECT ROW(
            CAST(:queue AS varchar),
            CAST(:task AS varchar),
            0,
            NULL::text,
            NULL::text,
            jsonb_build_object('run_id', CAST(:run_id AS text), 'index', item.index),
            NULL::timestamptz
        )::procrastinate_job_to_defer_v1
        FROM generate_series(0, CAST(:count AS integer) - 1) AS item(index)
    ))
    """
)


def defer_slices(session: Session, *, queue: str, task: str, run_id: str, count: int) -> None:
    """Queue one job per slice of a run (indexes 0…count-1), in one statement."""
    if count:
        session.execute(_DEFER_SLICES, {"queue": queue, "task": task, "run_id": run_id, "count": count})
