"""Dispatch: how a run that was just made reaches a worker.

`FLOWSERVICE_QUEUE=embedded` (the default): there is nothing to do here. The runs table is the
queue; in-process workers are woken by `Services.run_created` and look for runnable runs every
`poll_seconds` otherwise.

`FLOWSERVICE_QUEUE=postgres`: procrastinate, a job queue living in the same PostgreSQL database.
Every place that inserts a runnable run calls `enqueue` inside the transaction that inserts it, so a
run and its job exist together or not at all: a rolled-back request leaves neither, and a crash
after the commit loses neither. `flowservice worker` processes on any machine execute the jobs
(workers/procrastinate_queue.py). A job is only a wake-up that says "execute run X": the worker
claims the run through the lease and epoch of services/runs.py, so a duplicate or late job is
harmless (it finds the run finished, or held by a live lease, and does nothing).

A job can still go missing: a worker killed while executing takes its job down with it (the job
stays `doing` forever, and its run keeps an expiring lease). The scheduler's loop therefore calls
`requeue_lost`, which queues a new job for every runnable run that has no queued job.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy.orm import Session

from flowservice.services.context import Services
from flowservice.store.repos import jobs as job_repo

log = logging.getLogger("flowservice.dispatch")

TASK = "flowservice.execute_run"  # the procrastinate task name; its one argument is `run_id`
QUEUE = "flowservice-runs"
SWEEP_BATCH = 500


def distributed(services: Services) -> bool:
    return services.settings.queue == "postgres"


def enqueue(session: Session, services: Services, runs: Iterable[tuple[str, int]]) -> None:
    """Queue a job for each (run id, ready_at ms) in the caller's transaction: one statement for the
    batch. A run not due yet (a retry's backoff) gets a job procrastinate holds back until then."""
    if not distributed(services):
        return
    now = services.clock.now_ms()
    job_repo.defer(
        session,
        queue=QUEUE,
        task=TASK,
        runs=[(run_id, ready_at if ready_at > now else None) for run_id, ready_at in runs],
    )


def requeue_lost(services: Services, *, limit: int = SWEEP_BATCH) -> int:
    """Queue a job for runnable runs that no queued job will execute; how many were queued.

    Runs in progress whose lease expired (their worker died or lost it) and runs scheduled and due
    for longer than a lease without a queued job. Idempotent, and safe to run in several schedulers
    at once: the runs are locked with SKIP LOCKED while their jobs are queued, and should a run get
    two jobs anyway, the claim's fence makes the second a no-op.
    """
    if not distributed(services):
        return 0
    lease_ms = int(services.settings.lease_seconds * 1000)
    with services.db.transaction() as session:
        now = services.clock.now_ms()
        lost = job_repo.orphans(session, task=TASK, now=now, settled=now - lease_ms, limit=limit)
        enqueue(session, services, lost)
    if lost:
        log.warning("queued %s runs again whose jobs were lost (a worker died?)", len(lost))
    return len(lost)
