"""The distributed queue: procrastinate jobs on PostgreSQL, executed by `flowservice worker` anywhere.

Runs get their jobs in the transaction that makes them (services/dispatch.py). This module is the
executing side: a procrastinate worker with one task, `flowservice.execute_run(run_id)`, which
claims exactly that run through the store's lease and epoch (`runs.claim`) and executes it with the
same code as the embedded queue. A job for a run that is finished, or held under a live lease by
another worker, ends at once: duplicates are harmless, so lost jobs can simply be queued again.

procrastinate is asyncio; the engine is threads (Arrow and Parquet release the GIL). The worker runs
on an event loop of its own thread, and each job executes its run on a daemon thread of its own, so
that a run stuck past the shutdown timeout, once released, cannot keep the process alive.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from contextlib import suppress

from procrastinate import App, JobContext, PsycopgConnector

from flowservice.services import dispatch, execution, runs, slices
from flowservice.services.context import Services
from flowservice.workers import ready
from flowservice.workers.queue import InFlight

log = logging.getLogger("flowservice.workers")
READY_TIMEOUT = 30.0  # seconds a stop() waits for a worker that is still starting


def build_app(services: Services, pool_size: int = 4) -> App:
    """A procrastinate App on the service's PostgreSQL database (libpq URL: no SQLAlchemy driver)."""
    connector = PsycopgConnector(conninfo=services.db.conninfo(), min_size=1, max_size=pool_size)
    return App(connector=connector)


class ProcrastinateQueue:
    """`RunQueue` over procrastinate: `concurrency` runs at once in this process."""

    def __init__(
        self, services: Services, concurrency: int, *, on_exit: Callable[[], None] | None = None
    ) -> None:
        self.services = services
        self.concurrency = concurrency
        self.identity = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.in_flight = InFlight()
        self.error: BaseException | None = None  # why the worker ended, if it ended by itself
        self._on_exit = on_exit
        # jobs open a connection to finish; the listener, heartbeat and fetches need theirs
        self.app = build_app(services, pool_size=concurrency + 4)
        self.app.task(name=dispatch.TASK, queue=dispatch.QUEUE, pass_context=True)(self._execute_run)
        self.app.task(name=slices.TASK, queue=dispatch.QUEUE, pass_context=True)(self._execute_slice)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._worker: asyncio.Task[None] | None = None
        self._ready = threading.Event()
        self._stopping = False

    def start(self) -> None:
        ready.prepare_process()
        self._thread = threading.Thread(target=self._serve, name="procrastinate", daemon=True)
        self._thread.start()

    def notify(self, run_id: str) -> None:
        """Nothing to do: the run's job was queued with it, and its insert notifies the workers."""
        del run_id

    def stop(self, timeout: float) -> None:
        """Stop fetching jobs, wait up to `timeout` seconds for the runs in flight, release the rest
        (their jobs are queued again with the release), and let the worker unregister."""
        self._stopping = True
        self._ready.wait(READY_TIMEOUT)
        if self._loop is not None and self._worker is not None:
            # cancelling run_worker_async is procrastinate's graceful stop: no new job is fetched
            # and it waits for the running ones (no shutdown_graceful_timeout is set: ours follows)
            with suppress(RuntimeError):  # the loop has ended already
                self._loop.call_soon_threadsafe(self._worker.cancel)
        self.in_flight.drain(timeout)
        self.in_flight.release_all(self.services)  # also ends the jobs still waiting on their runs
        if self._thread is not None:
            self._thread.join(timeout=READY_TIMEOUT)

    def _serve(self) -> None:
        try:
            asyncio.run(self._main())
            if not self._stopping:  # procrastinate stops itself when a side task fails (lost database)
                raise RuntimeError("the procrastinate worker stopped by itself; see the log above")
        except BaseException as exc:  # the database went away, say: the process must end, and say why
            self.error = exc
            log.exception("the procrastinate worker stopped")
        finally:
            self._ready.set()
            if self._on_exit is not None:
                self._on_exit()

    async def _main(self) -> None:
        async with self.app.open_async():
            self._loop = asyncio.get_running_loop()
            self._worker = asyncio.create_task(
                self.app.run_worker_async(
                    queues=[dispatch.QUEUE],
                    concurrency=self.concurrency,
                    name=self.identity,
                    install_signal_handlers=False,  # the CLI owns the signals and calls stop()
                    delete_jobs="successful",  # the runs table is the history; keep the queue small
                    fetch_job_polling_interval=self.services.settings.poll_seconds,
                )
            )
            self._ready.set()
            with suppress(asyncio.CancelledError):
                await self._worker

    async def _execute_run(self, context: JobContext, run_id: str) -> None:
        """The task: claim the run and execute it on a daemon thread; done when the run is (or when
        it is released at shutdown)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        owner = f"{self.identity}/{context.job.id}"

        def settle(error: BaseException | None) -> None:
            if done.done():
                return
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(error)

        def report(error: BaseException | None = None) -> None:
            with suppress(RuntimeError):  # the loop is gone: the process is ending
                loop.call_soon_threadsafe(settle, error)

        def work() -> None:
            try:
                lease_ms = int(self.services.settings.lease_seconds * 1000)
                claim = runs.claim(self.services, run_id, owner, lease_ms=lease_ms)
                if claim is None:
                    log.info("run %s needs nothing from this job (finished, held, or not due)", run_id)
                else:
                    self.in_flight.execute(self.services, claim, abandon=report)
            except BaseException as exc:  # the job fails; the run is queued again by the scheduler
                log.exception("job for run %s failed", run_id)
                report(exc)
            else:
                report()

        threading.Thread(target=work, name=f"run-{run_id[:8]}", daemon=True).start()
        await done

    async def _execute_slice(self, context: JobContext, run_id: str, index: int) -> None:
        """The slice task: claim that slice of the run and promote it on a daemon thread. A slice
        done, held, or of a finished run needs nothing; one whose job is lost is taken by the run's
        coordinator (or another job) once its lease expires."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        owner = f"{self.identity}/{context.job.id}"

        def settle() -> None:
            if not done.done():
                done.set_result(None)

        def work() -> None:
            try:
                claim = slices.claim_next(self.services, owner, run_id=run_id, index=index)
                if claim is not None:
                    execution.execute_slice(self.services, claim)
            except BaseException:
                log.exception("job for slice %s of run %s failed", index, run_id)
            finally:
                with suppress(RuntimeError):  # the loop is gone: the process is ending
                    loop.call_soon_threadsafe(settle)

        threading.Thread(target=work, name=f"slice-{run_id[:8]}-{index}", daemon=True).start()
        await done
