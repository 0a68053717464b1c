"""`flowservice`: serve the API, migrate the database, manage credentials and sandboxes."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.panel import Panel

from flowservice.cli import remote

# The server's modules are imported by the commands that use them, not here: `flowservice runs …`
# talks HTTP only, and should not pay half a second loading SQLAlchemy, Alembic and the services.
if TYPE_CHECKING:
    from collections.abc import Callable

    from flowservice.services.context import Services
    from flowservice.services.identity import NewCredential
    from flowservice.workers.inprocess import InProcessQueue
    from flowservice.workers.procrastinate_queue import ProcrastinateQueue

    Executors = InProcessQueue | ProcrastinateQueue

app = typer.Typer(help="flowservice: a self-hosted Flow Service API.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
credentials_app = typer.Typer(help="Client credentials (client id + secret) of an org.", no_args_is_help=True)
sandboxes_app = typer.Typer(help="Sandboxes of an org.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(credentials_app, name="credentials")
app.add_typer(sandboxes_app, name="sandboxes")
landing_zone_app = typer.Typer(help="The Data Landing Zone of an org.", no_args_is_help=True)
app.add_typer(landing_zone_app, name="landing-zone")
secrets_app = typer.Typer(help="The secret key that seals connection secrets.", no_args_is_help=True)
app.add_typer(secrets_app, name="secrets")

console = Console()
errors = Console(stderr=True)


def _services() -> Services:
    from flowservice.services.context import Services
    from flowservice.settings import Settings

    return Services.from_settings(Settings.load())


def ensure_dev_credentials(services: Services) -> tuple[NewCredential, bool]:
    """`_print_dev_banner`'s helper, loaded on first use like the other server modules."""
    from flowservice.services.devsetup import ensure_dev_credentials as ensure

    return ensure(services)


def _fail(message: str) -> typer.Exit:
    errors.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=1)


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="target revision")) -> None:
    """Create or migrate the database schema."""
    from flowservice.settings import Settings
    from flowservice.store import migrate
    from flowservice.store.db import printable_url

    settings = Settings.load()
    migrate.upgrade(settings.database_url, revision)
    console.print(f"database at revision {revision}: {printable_url(settings.database_url)}")


@credentials_app.command("create")
def credentials_create(
    org: str = typer.Option(..., "--org", help="IMS org id, e.g. 0123ABCD@AdobeOrg (created if new)"),
    name: str = typer.Option("", "--name", help="a label to recognise the credentials by"),
    as_json: bool = typer.Option(False, "--json", help="print JSON for scripts"),
) -> None:
    """Create client credentials; the secret is shown once and stored only as a hash."""
    from flowservice.errors import FlowServiceError
    from flowservice.services import identity

    services = _services()
    try:
        created = identity.create_credentials(services.db, org, name=name)
    except FlowServiceError as exc:
        raise _fail(exc.message) from None
    finally:
        services.close()
    payload = {
        "client_id": created.client_id,
        "client_secret": created.client_secret,
        "org_id": created.org_id,
    }
    if as_json:
        sys.stdout.write(json.dumps(payload) + "\n")
        return
    console.print(f"client_id:     {created.client_id}")
    console.print(f"client_secret: {created.client_secret}")
    console.print(f"org_id:        {created.org_id}")
    console.print("[dim]The secret is not stored; keep it now.[/dim]")


@credentials_app.command("revoke")
def credentials_revoke(client_id: str = typer.Argument(..., help="the client id to revoke")) -> None:
    """Revoke credentials; their tokens stop working on the next request."""
    from flowservice.services import identity

    services = _services()
    try:
        if not identity.revoke_credentials(services.db, client_id):
            raise _fail(f"no live credentials with client id {client_id}")
    finally:
        services.close()
    console.print(f"revoked {client_id}")


@sandboxes_app.command("create")
def sandboxes_create(
    name: str = typer.Argument(..., help="sandbox name: lower-case letters, digits, hyphens"),
    org: str = typer.Option(..., "--org", help="IMS org id"),
) -> None:
    """Add a sandbox to an org (every org has `prod`)."""
    from flowservice.errors import FlowServiceError
    from flowservice.services import identity

    services = _services()
    try:
        sandbox = identity.create_sandbox(services.db, org, name)
    except FlowServiceError as exc:
        raise _fail(exc.message) from None
    finally:
        services.close()
    console.print(f"sandbox {sandbox.name} ({sandbox.id}) in {sandbox.org_id}")


@sandboxes_app.command("list")
def sandboxes_list(org: str = typer.Option(..., "--org", help="IMS org id")) -> None:
    """List an org's sandboxes."""
    from flowservice.services import identity

    services = _services()
    try:
        for sandbox in identity.list_sandboxes(services.db, org):
            typer.echo(f"{sandbox.name}\t{sandbox.id}")
    finally:
        services.close()


@secrets_app.command("rotate")
def secrets_rotate(
    batch_size: int = typer.Option(500, "--batch-size", min=1, help="values re-sealed per transaction"),
    dry_run: bool = typer.Option(False, "--dry-run", help="count what would be re-sealed; change nothing"),
    as_json: bool = typer.Option(False, "--json", help="print JSON for scripts"),
) -> None:
    """Re-seal every stored secret with FLOWSERVICE_SECRET_KEY (old keys in FLOWSERVICE_PREVIOUS_SECRET_KEYS).

    Safe beside running servers and safe to repeat; exits 1 if some value no key can open.
    """
    from flowservice.services.rotation import rotate

    services = _services()
    try:
        report = rotate(services, batch=batch_size, dry_run=dry_run)
    finally:
        services.close()
    if as_json:
        sys.stdout.write(json.dumps(report.wire()) + "\n")
    else:
        verb = "would re-seal" if dry_run else "re-sealed"
        for kind, counts in report.kinds.items():
            typer.echo(  # plain: one line per kind, never wrapped, for people and grep alike
                f"{kind}: {counts.examined} sealed, {verb} {counts.resealed}, "
                f"{counts.current + counts.changed} already under the current key, {counts.unreadable} unreadable"
            )
    if report.unreadable:
        ids = ", ".join(i for c in report.kinds.values() for i in c.unreadable_ids)
        raise _fail(
            f"{report.unreadable} sealed values open with no configured key (ids: {ids}); "
            "add the key that sealed them to FLOWSERVICE_PREVIOUS_SECRET_KEYS, or enter those secrets again"
        )


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="interface to listen on"),
    port: int = typer.Option(8080, "--port", help="TCP port"),
    dev: bool = typer.Option(
        False, "--dev", help="create (once) and print a development org with credentials"
    ),
    demo: bool = typer.Option(True, "--demo/--no-demo", help="with --dev: run a sample dataflow once"),
    workers: int | None = typer.Option(None, "--workers", help="run executors (default FLOWSERVICE_WORKERS)"),
    no_workers: bool = typer.Option(
        False, "--no-workers", help="API, pages and scheduler only: `flowservice worker` executes the runs"
    ),
) -> None:
    """Serve the API with its run workers (with FLOWSERVICE_QUEUE=postgres: only when asked for)."""
    import uvicorn

    from flowservice.api.app import create_app
    from flowservice.scheduler.loop import Scheduler
    from flowservice.services.context import Services
    from flowservice.settings import Settings
    from flowservice.store import migrate
    from flowservice.workers.notifier import Notifier

    settings = Settings.load()
    if "public_url" not in settings.model_fields_set:  # links in answers point at where we really listen
        shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        settings = settings.model_copy(update={"public_url": f"http://{shown_host}:{port}"})
    migrate.upgrade(settings.database_url)
    services = Services.from_settings(settings)
    count = settings.workers if workers is None else workers
    if no_workers or (
        # distributed: runs are for `flowservice worker` processes unless this one is asked to execute too
        settings.queue == "postgres" and workers is None and "workers" not in settings.model_fields_set
    ):
        count = 0
    queue = _queue(services, count) if count > 0 else None
    # the scheduler process also notifies: both are the background work one such process does
    scheduler = Scheduler(services) if settings.scheduler else None
    notifier = Notifier(services) if settings.scheduler else None
    if dev:
        credential = _print_dev_banner(services, host, port)
        if demo:
            from flowservice.services.demo import ensure_demo

            if ensure_demo(services, credential.org_id, credential.client_id):
                console.print(
                    "a sample dataflow runs in a moment: see GET /runs, and its files in the landing zone"
                )
    asgi = create_app(services, own_services=True, queue=queue, scheduler=scheduler, notifier=notifier)
    uvicorn.run(asgi, host=host, port=port, log_level="info")


@app.command("scheduler")
def scheduler_command() -> None:
    """Create the runs that schedules call for (no API, no workers); any number may run at once."""
    import signal
    import threading

    from flowservice.scheduler.loop import Scheduler
    from flowservice.services.context import Services
    from flowservice.settings import Settings
    from flowservice.store.db import printable_url
    from flowservice.workers.notifier import Notifier

    settings = Settings.load()
    services = Services.from_settings(settings)
    scheduler = Scheduler(services)
    notifier = Notifier(services)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    scheduler.start()
    notifier.start()
    console.print(f"scheduler and notifier on {printable_url(settings.database_url)}")
    stop.wait()
    notifier.stop()
    scheduler.stop()
    services.close()


@app.command()
def worker(
    concurrency: int = typer.Option(2, "--concurrency", help="runs executed at once by this process"),
) -> None:
    """Execute runs (no API): start as many as you like against the same database and lake.

    SIGTERM (or Ctrl-C) stops claiming runs, waits up to FLOWSERVICE_SHUTDOWN_TIMEOUT_SECONDS for
    the runs in flight, gives back those still going (another worker resumes them) and exits 0."""
    import logging
    import signal
    import threading

    from flowservice.services.context import Services
    from flowservice.settings import Settings
    from flowservice.store.db import printable_url

    settings = Settings.load()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    services = Services.from_settings(settings)
    stop = threading.Event()
    queue = _queue(services, concurrency, on_exit=stop.set)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    queue.start()
    mode = "procrastinate jobs" if settings.queue == "postgres" else "runs"
    console.print(
        f"worker {queue.identity}: {concurrency} executors taking {mode} "
        f"on {printable_url(settings.database_url)}"
    )
    stop.wait()
    failure = getattr(queue, "error", None)
    if failure is None:
        timeout = settings.shutdown_timeout_seconds
        console.print(
            f"stopping: no new runs; waiting up to {timeout:g} s for {len(queue.in_flight)} in flight"
        )
    queue.stop(timeout=settings.shutdown_timeout_seconds)
    services.close()
    if failure is not None:
        raise _fail(f"the worker stopped: {failure}")
    console.print("stopped")


def _queue(services: Services, count: int, *, on_exit: Callable[[], None] | None = None) -> Executors:
    """The run executors of this process, for the configured queue."""
    if services.settings.queue == "postgres":
        from flowservice.workers.procrastinate_queue import ProcrastinateQueue

        return ProcrastinateQueue(services, count, on_exit=on_exit)
    from flowservice.workers.inprocess import InProcessQueue

    return InProcessQueue(services, count)


@landing_zone_app.command("upload")
def landing_zone_upload(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="the local file to upload"),
    dest: str | None = typer.Argument(None, help="its path in the landing zone (default: its name)"),
    org: str = typer.Option(..., "--org", help="IMS org id"),
    sandbox: str = typer.Option("prod", "--sandbox", help="sandbox name"),
) -> None:
    """Put a file into an org's Data Landing Zone, atomically."""
    from flowservice.connectors.base import ConnectorError
    from flowservice.connectors.landing_zone import upload
    from flowservice.services import identity
    from flowservice.services.context import Services
    from flowservice.settings import Settings

    settings = Settings.load()
    services = Services.from_settings(settings)
    try:
        if not any(s.name == sandbox for s in identity.list_sandboxes(services.db, org)):
            raise _fail(f"no sandbox {sandbox!r} in org {org}")
        placed = upload(settings.landing_zone / org / sandbox, file, dest)
    except ConnectorError as exc:
        raise _fail(str(exc)) from None
    finally:
        services.close()
    console.print(f"uploaded {file.name} to the landing zone of {org}/{sandbox}: {placed}")


def _print_signin_link(services: Services, credential: NewCredential, base: str) -> None:
    """A one-click sign-in to the pages, valid for a day: a signed ticket for the dev credential."""
    from flowservice.services.tokens import SIGN_IN

    now_s = services.clock.now_ms() // 1000
    ticket = services.tokens.issue(credential.client_id, credential.org_id, now_s, 86_400, kind=SIGN_IN)
    # plain print: the link must survive copy and paste from any terminal width
    print(f"Monitoring pages: {base}/ui/signin/link?ticket={ticket}", flush=True)


def _print_dev_banner(services: Services, host: str, port: int) -> NewCredential:
    credential, created = ensure_dev_credentials(services)
    base = f"http://{host}:{port}"
    path = services.settings.home / "dev-credentials.json"
    _print_signin_link(services, credential, base)
    if not created:
        console.print(f"development credentials: {path} (org {credential.org_id})")
        return credential
    curl = (
        f"TOKEN=$(curl -s -X POST {base}/ims/token/v3 -d grant_type=client_credentials "
        f"-d client_id={credential.client_id} -d client_secret={credential.client_secret} "
        "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')\n"
        f'curl -s {base}/data/foundation/flowservice/connectionSpecs -H "Authorization: Bearer $TOKEN" '
        f"-H 'x-api-key: {credential.client_id}' -H 'x-gw-ims-org-id: {credential.org_id}' "
        "-H 'x-sandbox-name: prod'"
    )
    body = (
        f"org_id:        {credential.org_id}\nclient_id:     {credential.client_id}\n"
        f"client_secret: {credential.client_secret}\n\nsaved in {path}"
    )
    console.print(Panel(body, title="development org created", expand=False))
    # Plain print, not Rich: the commands must survive copy and paste from any terminal width.
    print("Try it:\n" + curl, flush=True)
    return credential


# monitoring over HTTP (cli/remote.py): no database access, any server the user can reach
app.command("login")(remote.login)
app.add_typer(remote.flows_app, name="flows")
app.add_typer(remote.runs_app, name="runs")


def main() -> None:
    try:
        app()
    except BrokenPipeError:  # `flowservice runs list --json | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        sys.exit(0)
    except Exception as exc:
        message = _settings_error(exc)
        if message is None:
            raise
        errors.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
        sys.exit(2)  # a usage error, like a missing client setting (cli/remote.py)


def _settings_error(exc: Exception) -> str | None:
    """The FLOWSERVICE_* settings the environment got wrong, one line each; None for other errors.
    (pydantic is imported here, on the error path, so the HTTP commands do not pay for it.)"""
    from pydantic import ValidationError

    if not isinstance(exc, ValidationError) or exc.title != "Settings":
        return None
    lines = []
    for error in exc.errors():
        text = str(error["msg"]).removeprefix("Value error, ")
        name = "FLOWSERVICE_" + "_".join(str(part) for part in error["loc"]).upper()
        lines.append(f"{name}: {text}" if error["loc"] and not text.startswith("FLOWSERVICE_") else text)
    return "\n".join(lines)
