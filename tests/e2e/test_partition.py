"""A worker partitioned from the database mid-run cannot commit after another worker took its run over.

The lease fence is there for a worker that is cut off but keeps running, and a killed worker is not
that. So worker A runs in a network namespace of its own, and reaches PostgreSQL through a forwarder
on the veth link (tests/netns.py). A is told (FLOWSERVICE_HANG_AT) to stop just before its fenced
commit, with a whole batch staged. Then the test:

1. cuts the link. A's heartbeat can no longer renew the lease, and the lease expires.
2. starts worker B on the host. B claims the run (a new lease epoch), runs it and commits its batch.
3. restores the link and lets A go on (a release file beside A's marker).
4. checks that A's commit is refused: A logs LeaseLost and changes nothing. The run is still B's
   success, and the dataset holds B's batch (the same folder, not one renamed over it), with each
   record once.

Every step waits on a condition with a deadline (marker files, the run's lease row, the run's
state, A's log); no sleep is used to synchronise.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from flowservice.api.app import create_app
from flowservice.domain import ids
from flowservice.engine.lake import BatchPlace, LocalLake
from flowservice.services.context import Services
from flowservice.settings import Settings
from flowservice.store import migrate
from flowservice.store.tables import Run
from tests import factories, netns
from tests.conftest import create_pg_database, drop_pg_database
from tests.e2e.test_ingestion import customers, dataset_rows, dlz_flow, write_csv, zone
from tests.services import unavailable

LEASE_SECONDS = 3.0  # short, so the partitioned worker's lease runs out soon; the heartbeat beats at 1 s
CHECKPOINT = "promotion.before_commit"  # promoted and staged, not committed: the worst moment to lose it
FILES, ROWS = 3, 400


@pytest.fixture
def network() -> Iterator[netns.Namespace]:
    """A namespace with a veth link to ours. It is removed after the test, also when the test fails."""
    reason = netns.unsupported()
    if reason is not None:
        unavailable("network namespaces", reason, absent="are unavailable")
    with ExitStack() as stack:
        try:
            made = stack.enter_context(netns.namespace())
        except netns.NetnsError as exc:  # e.g. a container without CAP_SYS_ADMIN
            unavailable("network namespaces", str(exc), absent="are unavailable")
        yield made


@pytest.fixture
def partition_settings(tmp_path: Path) -> Iterator[Settings]:
    """A PostgreSQL database of its own: workers claim any runnable run, so no other test's may be here."""
    url = create_pg_database()
    settings = Settings.load(
        home=tmp_path, database_url=url, public_url="http://testserver", lease_seconds=LEASE_SECONDS
    )
    try:
        migrate.upgrade(settings.database_url)
        yield settings
    finally:
        drop_pg_database(url)


class Worker:
    """A `flowservice worker` process (in a namespace when `prefix` says so), its output in a file."""

    def __init__(
        self, settings: Settings, name: str, database_url: str, prefix: list[str], hang_at: str = ""
    ) -> None:
        self.name = name
        self.log = settings.home / f"worker-{name}.log"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("FLOWSERVICE_")},
            "FLOWSERVICE_HOME": str(settings.home),  # one filesystem across namespaces: a shared lake
            "FLOWSERVICE_DATABASE_URL": database_url,
            "FLOWSERVICE_LEASE_SECONDS": str(LEASE_SECONDS),
            "FLOWSERVICE_POLL_SECONDS": "0.1",
            "FLOWSERVICE_SCHEDULER": "false",
            "FLOWSERVICE_HANG_AT": hang_at,
            "PYTHONUNBUFFERED": "1",
        }
        command = [*prefix, sys.executable, "-m", "flowservice", "worker", "--concurrency", "1"]
        with self.log.open("wb") as log:
            # a session of its own: the process group is killed whole, whatever `ip netns exec` does
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


def kill_all(workers: list[Worker]) -> None:
    for worker in workers:
        worker.kill()


def outputs(workers: list[Worker]) -> str:
    return "\n".join(f"--- worker {w.name}:\n{w.output()[-4000:]}" for w in workers)


def wait_until(condition: Callable[[], bool], what: str, workers: list[Worker], timeout: float = 60) -> None:
    """Poll `condition` until it holds. A worker that dies meanwhile fails at once; so does the
    deadline. The message says what was awaited and shows the workers' output."""
    deadline = time.monotonic() + timeout
    while not condition():
        dead = [w.name for w in workers if not w.alive()]
        if dead or time.monotonic() > deadline:
            why = f"worker {', '.join(dead)} exited" if dead else f"not within {timeout}s"
            raise AssertionError(f"{what}: {why}\n{outputs(workers)}")
        time.sleep(0.05)


def marker(settings: Settings) -> Path | None:
    """The file A writes when it stops at the checkpoint, `hang-{checkpoint}-{pid}`. It names A's
    pid as A sees it, which the release file must repeat (whatever `ip netns exec` did in between)."""
    return next(settings.home.glob(f"hang-{CHECKPOINT}-*"), None)


def status(services: Services, run_id: str) -> str:
    with services.db.reader() as session:
        return session.scalars(select(Run.status).where(Run.id == run_id)).one()


def lease(services: Services, run_id: str) -> tuple[str | None, int, int | None]:
    """The run's lease row, read directly: the owner, the epoch and when it expires."""
    with services.db.reader() as session:
        row = session.scalars(select(Run).where(Run.id == run_id)).one()
        return row.lease_owner, row.lease_epoch, row.lease_expires_at


def busy_sessions(services: Services, ports: list[int]) -> int:
    """How many of the forwarder's PostgreSQL sessions are not idle (inside a transaction, say)."""
    if not ports:
        return 0
    with services.db.reader() as session:
        query = text(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND client_port = ANY(:ports) AND state <> 'idle'"
        )
        return int(session.execute(query, {"ports": ports}).scalar_one())


def cut_between_transactions(
    network: netns.Namespace,
    forwarder: netns.Forwarder,
    services: Services,
    run_id: str,
    workers: list[Worker],
) -> None:
    """Cut A's link and return once A's lease has expired with none of A's sessions in a transaction.

    A cut that lands between A's heartbeat UPDATE and its COMMIT leaves PostgreSQL holding A's row
    lock. The session is "idle in transaction", and its connection still looks alive to the server.
    Claims skip locked rows, so no one could take the run over until the server gives up on that
    connection. That hazard is not what this test is about, so such a cut is undone (A's COMMIT gets
    through) and made again. By the time the lease has expired, whatever reached the server before
    the cut has been handled, so the server's view of A's sessions is final.
    """
    deadline = time.monotonic() + 120
    while True:
        network.cut()
        wait_until(
            lambda: (lease(services, run_id)[2] or 0) < services.clock.now_ms(),
            "A's lease to expire after the cut",
            workers,
        )
        if busy_sessions(services, forwarder.upstream_ports()) == 0:
            return
        assert time.monotonic() < deadline, "every cut landed inside one of A's transactions"
        network.restore()
        wait_until(
            lambda: busy_sessions(services, forwarder.upstream_ports()) == 0,
            "A's open transaction to end once its link was back",
            workers,
        )


def test_a_partitioned_worker_cannot_commit_after_its_run_was_taken_over(
    network: netns.Namespace, partition_settings: Settings
) -> None:
    settings = partition_settings
    services = Services.from_settings(settings)
    workers: list[Worker] = []
    with ExitStack() as stack:
        stack.callback(services.close)
        database = make_url(settings.database_url)  # on loopback, which the namespace cannot reach
        target = (database.host or "127.0.0.1", database.port or 5432)
        forwarder = stack.enter_context(netns.Forwarder(network.host_ip, target))
        client = stack.enter_context(TestClient(create_app(services)))  # no workers in this process
        stack.callback(kill_all, workers)  # first thing on the way out; the namespace goes after the test

        # a landing-zone flow and one run of it, made over HTTP
        tenant = factories.new_tenant(services, client)
        sources = [zone(settings, tenant) / "incoming" / f"customers-{n}.csv" for n in range(FILES)]
        for n, path in enumerate(sources):
            write_csv(path, customers(n * ROWS + 1, ROWS, {}))
        originals = [path.read_bytes() for path in sources]
        dataflow = dlz_flow(client, tenant, "incoming", mappings=factories.IDENTITY_MAPPINGS)
        run_id = factories.start_run(client, tenant, dataflow.flow_id)

        # worker A, in the namespace, reaches PostgreSQL only through the forwarder on the veth link
        through_link = database.set(host=forwarder.host, port=forwarder.port)
        worker_a = Worker(
            settings,
            "A",
            through_link.render_as_string(hide_password=False),
            network.command(),
            hang_at=CHECKPOINT,
        )
        workers.append(worker_a)
        wait_until(
            lambda: (
                marker(settings) is not None or status(services, run_id) not in ("scheduled", "inProgress")
            ),
            f"A to stop at {CHECKPOINT}",
            workers,
        )
        stopped = marker(settings)
        assert stopped is not None, f"the run ended before A reached {CHECKPOINT}\n{outputs(workers)}"
        owner_a, epoch_a, _ = lease(services, run_id)
        assert owner_a is not None and epoch_a == 1, (owner_a, epoch_a)
        with services.db.reader() as session:
            created_at = session.scalars(select(Run.created_at).where(Run.id == run_id)).one()
        place = BatchPlace(
            tenant.org_id, tenant.sandbox, dataflow.dataset_id, ids.batch_id_for_run(run_id, created_at)
        )
        assert isinstance(services.lake, LocalLake)  # a folder, so a batch renamed over B's would show
        final = services.lake.batch_dir(place)
        assert not final.exists()
        lake = Path(settings.lake_url)
        assert list(lake.rglob("part-*.parquet")), "A stopped without a promoted batch staged"

        # the partition: A's lease runs out while A waits. Then worker B, on the host, takes the run over
        cut_between_transactions(network, forwarder, services, run_id, workers)
        assert worker_a.alive(), worker_a.output()
        workers.append(Worker(settings, "B", settings.database_url, []))
        run = factories.wait_for_run(client, tenant, run_id, timeout=90)
        assert run["state"] == "success", run
        owner_b, epoch_b, _ = lease(services, run_id)
        assert owner_b not in (None, owner_a) and epoch_b == epoch_a + 1, (owner_b, epoch_b)
        committed = final.stat().st_ino
        files = sorted((p.relative_to(final), p.stat().st_size) for p in final.rglob("*"))

        # the link comes back and A goes on to its commit, which the fence refuses
        network.restore()
        (settings.home / stopped.name.replace("hang-", "release-", 1)).touch()  # same checkpoint and pid
        refused = f"no longer held by {owner_a}"
        wait_until(lambda: refused in worker_a.output(), "A's commit to be refused (LeaseLost)", workers)
        assert worker_a.alive(), worker_a.output()  # a refused commit is routine: the worker lives on

        # nothing A did is visible: the run is B's, and the dataset holds B's batch, each record once
        assert factories.wait_for_run(client, tenant, run_id) == run
        assert lease(services, run_id)[:2] == (owner_b, epoch_b)
        assert final.stat().st_ino == committed, "a batch was renamed over the committed one"
        assert sorted((p.relative_to(final), p.stat().st_size) for p in final.rglob("*")) == files
        batches = client.get(
            "/data/foundation/catalog/batches",
            params={"dataSet": dataflow.dataset_id},
            headers=tenant.headers(),
        ).json()
        assert list(batches) == [place.batch_id]
        assert run["activities"][1]["targetInfo"][0]["reference"]["ids"] == [place.batch_id]
        # A's leftover run staging must not hurt the attempt that took over: the source is untouched
        damaged = [p.name for p, before in zip(sources, originals, strict=True) if p.read_bytes() != before]
        assert not damaged, f"the takeover changed landing-zone files {damaged}: {run['metrics']}"
        rows = dataset_rows(client, tenant, place.batch_id).column("id").to_pylist()
        assert sorted(rows) == list(range(1, FILES * ROWS + 1))  # each record exactly once
        assert run["metrics"]["recordSummary"] == {
            "inputRecordCount": FILES * ROWS,
            "outputRecordCount": FILES * ROWS,
            "failedRecordCount": 0,
        }
