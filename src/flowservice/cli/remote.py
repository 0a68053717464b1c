"""`login`, `flows …` and `runs …`: watch and start dataflows on a server, over its HTTP API only.

These commands import nothing of the server (no store, no services), so they work against any
deployment the user can reach, with the same credentials any other client would use. Failures are
one line on stderr: exit code 2 for what the user must configure, 1 for what the API refused.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import typer
from rich.live import Live
from rich.markup import escape

from flowservice.cli import config, views
from flowservice.cli.client import ApiError, Client
from flowservice.cli.config import ConfigError, Profile
from flowservice.cli.watch import Change, Watch
from flowservice.domain.runs import STATUSES, canonical_status

flows_app = typer.Typer(
    help="Dataflows on a server, over its API (see `flowservice login`).", no_args_is_help=True
)
runs_app = typer.Typer(help="Runs of dataflows on a server, over its API.", no_args_is_help=True)

SINCE = re.compile(r"(\d+)\s*([smhdw])")
SINCE_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
JSON_HELP = "print the API's JSON instead of a table"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _fail(message: str, code: int = 1) -> typer.Exit:
    views.stderr_console().print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(code=code)


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2) + "\n")


@contextmanager
def _api() -> Iterator[Client]:
    """A client for the configured server; every failure below becomes a one-line error."""
    try:
        profile = config.resolve()
    except ConfigError as exc:
        raise _fail(str(exc), code=2) from None
    try:
        with Client(profile) as client:
            yield client
    except ApiError as exc:
        raise _fail(f"{exc.code}: {exc.message}") from None


def login(
    url: str | None = typer.Option(None, "--url", help="the server, e.g. http://127.0.0.1:8080"),
    client_id: str | None = typer.Option(None, "--client-id", help="client id (x-api-key)"),
    client_secret: str | None = typer.Option(
        None, "--client-secret", help="client secret (prompted, hidden)"
    ),
    org: str | None = typer.Option(None, "--org", help="IMS org id, e.g. 0123ABCD@AdobeOrg"),
    sandbox: str | None = typer.Option(None, "--sandbox", help="sandbox name [default: prod]"),
) -> None:
    """Check credentials against a server and save them (0600) for the other commands."""
    path = config.profile_path()
    try:
        saved = config.read_profile(path)
    except ConfigError:
        saved = {}  # a broken profile is what login repairs
    env = config.from_environment()

    def value(given: str | None, field: str, label: str, *, hide: bool = False) -> str:
        found = given or env.get(field)
        if found:
            return found
        default = None if hide else saved.get(field)
        answer: str = typer.prompt(label, default=default, hide_input=hide)
        return answer.strip()

    profile = Profile(
        url=value(url, "url", "Server URL").rstrip("/"),
        client_id=value(client_id, "client_id", "Client id"),
        client_secret=value(client_secret, "client_secret", "Client secret", hide=True),
        org_id=value(org, "org_id", "IMS org id"),
        sandbox=sandbox or env.get("sandbox") or saved.get("sandbox") or config.DEFAULT_SANDBOX,
    )
    try:
        config.check_url(profile.url)
        with Client(profile) as client:
            client.token()  # the client id and secret
            client.get("/flows", [("limit", 1)])  # the org and the sandbox, through the gateway
    except ConfigError as exc:
        raise _fail(str(exc), code=2) from None
    except ApiError as exc:
        raise _fail(f"{exc.code}: {exc.message}") from None
    config.write_profile(path, profile)
    views.stdout_console().print(
        f"logged in to {escape(profile.url)} as {escape(profile.client_id)} "
        f"(org {escape(profile.org_id)}, sandbox {escape(profile.sandbox)}); profile saved in {escape(str(path))}"
    )


@flows_app.command("list")
def flows_list(
    limit: int = typer.Option(100, "--limit", min=1, help="at most this many flows, newest first"),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Dataflows with their schedule, source and last run."""
    with _api() as client:
        flows = client.collect("flows", limit=limit)
        if as_json:
            _print_json(flows)
            return
        try:
            specs = client.collect("connectionSpecs", limit=1000)
        except ApiError:
            specs = []  # names are a nicety: show the spec ids rather than fail
    names = {str(s.get("id")): str(s.get("name")) for s in specs}
    views.stdout_console().print(views.flows_table(flows, names))


@flows_app.command("run")
def flows_run(
    flow_id: str = typer.Argument(..., help="a flow scheduled `once`"),
    window_start: int = typer.Option(0, "--window-start", min=0, help="window start, epoch seconds"),
    window_end: int | None = typer.Option(None, "--window-end", min=0, help="window end [default: now]"),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Start a run now (flows scheduled `once` only); prints the new run's id."""
    now = int(time.time())
    params = {
        "startTime": str(now),
        "windowStartTime": str(window_start),
        "windowEndTime": str(now if window_end is None else window_end),
    }
    with _api() as client:
        answer = client.post("/runs", {"flowId": flow_id, "params": params})
    if as_json:
        _print_json(answer)
        return
    sys.stdout.write(f"{answer.get('id')}\n")
    views.stderr_console().print(
        f"[dim]follow it: flowservice runs watch --flow {escape(flow_id)} --until-finished[/dim]"
    )


def _status(text: str | None) -> str | None:
    """The canonical spelling; a typo is a usage error rather than a silently empty list."""
    if text is None:
        return None
    found = canonical_status(text.strip())
    if found is None:
        raise typer.BadParameter(f"{text!r} is not a run status; one of {', '.join(STATUSES)} (any case)")
    return found


def _since(text: str | None) -> int | None:
    """`30m`, `6h`, `1d`, `2w` (or `45s`) ago, or an ISO 8601 time (UTC unless it says otherwise)."""
    if text is None:
        return None
    match = SINCE.fullmatch(text.strip().lower())
    if match:
        return _now_ms() - int(match[1]) * SINCE_MS[match[2]]
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither a span like 30m, 6h, 1d, 2w nor a time like 2024-06-01T12:00:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


@runs_app.command("list")
def runs_list(
    flow: str | None = typer.Option(None, "--flow", help="only this flow's runs"),
    status: str | None = typer.Option(
        None, "--status", help="scheduled, inProgress, success, failed or cancelled (any case)"
    ),
    since: str | None = typer.Option(
        None, "--since", help="created in the last 30m, 6h, 1d, 2w, or after an ISO 8601 time"
    ),
    limit: int = typer.Option(50, "--limit", min=1, help="at most this many runs, newest first"),
    page_size: int | None = typer.Option(None, "--page-size", min=1, max=1000, hidden=True),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Runs, newest first, with their records, files and bytes."""
    created_after, wanted = _since(since), _status(status)
    query: list[tuple[str, str | int]] = []
    if flow:
        query.append(("property", f"flowId=={flow}"))
    if wanted:
        query.append(("property", f"metrics.statusSummary.status=={wanted}"))
    if created_after is not None:
        query.append(("property", f"createdAt>{created_after}"))
    with _api() as client:
        runs = client.collect("runs", query, limit=limit, page_size=page_size)
    if as_json:
        _print_json(runs)
        return
    console = views.stdout_console()
    table = views.runs_table(runs, now_ms=_now_ms(), show_flow=flow is None, width=views.fit_width(console))
    console.print(table)
    if not runs:
        console.print("[dim]no runs match[/dim]")


@runs_app.command("show")
def runs_show(
    run_id: str = typer.Argument(..., help="the run's id"),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """A run in full: window, numbers, each activity, errors with their codes and record counts."""
    with _api() as client:
        run = client.item("runs", run_id)
    if as_json:
        _print_json(run)
        return
    views.stdout_console().print(views.run_detail(run, now_ms=_now_ms()))


@runs_app.command("watch")
def runs_watch(
    flow: str | None = typer.Option(None, "--flow", help="only this flow's runs"),
    until_finished: bool = typer.Option(
        False, "--until-finished", help="exit once every run in flight (now or later) has finished"
    ),
    interval: float = typer.Option(1.0, "--interval", min=0.1, help="seconds between polls"),
    recent: int = typer.Option(10, "--recent", min=0, max=1000, help="finished runs to show"),
    as_json: bool = typer.Option(False, "--json", help="print a JSON line per state change, no live view"),
) -> None:
    """A live view of runs in flight and recent runs; Ctrl-C stops it."""
    try:
        with _api() as client:
            if flow:
                client.item("flows", flow)  # a mistyped id is a 404 now, not an empty watch forever
            watch = Watch(client, flow, recent)
            if as_json:
                _watch_lines(watch, until_finished, interval)
            else:
                _watch_live(watch, until_finished, interval)
    except KeyboardInterrupt:
        return  # Ctrl-C is how a watch without --until-finished ends: not an error


def _poll(watch: Watch) -> tuple[list[dict[str, Any]], list[Change], str]:
    """One poll; a server that is restarting or overloaded is reported and tried again."""
    now = _now_ms()
    try:
        runs, changes = watch.poll(now)
    except ApiError as exc:
        if exc.status is not None and exc.status < 500:
            raise
        return [], [], f"{exc.code}: {exc.message} (trying again)"
    return runs, changes, ""


def _watch_lines(watch: Watch, until_finished: bool, interval: float) -> None:
    while True:
        _, changes, note = _poll(watch)
        for change in changes:
            sys.stdout.write(json.dumps(change.event()) + "\n")
        sys.stdout.flush()
        if note:
            views.stderr_console().print(f"[yellow]{escape(note)}[/yellow]")
        elif until_finished and watch.finished():
            return
        time.sleep(interval)


def _watch_live(watch: Watch, until_finished: bool, interval: float) -> None:
    console = views.stdout_console()
    shown: list[dict[str, Any]] = []
    with Live(console=console, auto_refresh=False, redirect_stderr=False) as live:
        while True:
            runs, _, note = _poll(watch)
            shown = runs if not note else shown
            live.update(
                views.watch_view(
                    shown, flow_id=watch.flow_id, now_ms=_now_ms(), note=note, width=views.fit_width(console)
                ),
                refresh=True,
            )
            if not note and until_finished and watch.finished():
                return
            time.sleep(interval)
