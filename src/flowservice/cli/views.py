"""How flows and runs read in a terminal: numbers for people, one table per list, a run in detail.

The input is always the API's JSON, so these functions show what any client would see. Times are
UTC, as in the web pages and the server's logs, so the same run reads the same everywhere. The
API's `-1` (not known) and absent numbers both read as an em dash.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from flowservice.domain.humanize import count_text, duration_text, size_text, when_text
from flowservice.domain.runs import STATUSES, TERMINAL
from flowservice.domain.schedule import describe as describe_schedule

FINISHED = TERMINAL
IN_FLIGHT = frozenset(STATUSES) - TERMINAL
STYLES = {
    "success": "green",
    "failed": "bold red",
    "cancelled": "dim",
    "inProgress": "yellow",
    "scheduled": "cyan",
    "enabled": "green",
    "disabled": "dim",
}
NONE = "—"
WIDE = 220  # columns when the output is not a terminal: tables stay one line per row for grep
_SIZES = ("B", "KB", "MB", "GB", "TB", "PB")


def stdout_console() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=max(console.width, WIDE))
    return console


def fit_width(console: Console) -> int | None:
    """The width tables must fit in: a terminal's; None for a pipe (every column, one line per row)."""
    return console.width if console.is_terminal else None


def stderr_console() -> Console:
    """Never wraps: an error is one line however narrow the terminal."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _known(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return int(value)


def count(value: Any) -> str:
    known = _known(value)
    return NONE if known is None else count_text(known)


def size(value: Any) -> str:
    known = _known(value)
    return NONE if known is None else size_text(known)


def duration(ms: Any) -> str:
    known = _known(ms)
    return NONE if known is None else duration_text(known)


def moment(ms: Any) -> str:
    known = _known(ms)
    return NONE if known is None else when_text(known, zone=False)


def status(text: Any) -> Text:
    shown = str(text or NONE)
    return Text(shown, style=STYLES.get(shown, ""))


def metric(run: dict[str, Any], summary: str, field: str) -> Any:
    return ((run.get("metrics") or {}).get(summary) or {}).get(field)


def elapsed(run: dict[str, Any], now_ms: int) -> int | None:
    """How long the run took, or has taken so far when it is still going."""
    times = (run.get("metrics") or {}).get("durationSummary") or {}
    started, completed = _known(times.get("startedAtUTC")), _known(times.get("completedAtUTC"))
    if started is None:
        return None
    if completed is not None:
        return completed - started
    return max(now_ms - started, 0) if run.get("state") in IN_FLIGHT else None


# The runs table's columns, and the order in which a narrow terminal gives them up: the ids stay
# whole (they are what `runs show` and `--flow` take), the numbers go first, the flow id last.
RUN_COLUMNS = (
    "run",
    "flow",
    "status",
    "started (UTC)",
    "duration",
    "records in",
    "out",
    "failed",
    "files",
    "bytes in",
    "bytes out",
)
DROPPED_FIRST = ("bytes out", "files", "bytes in", "started (UTC)", "flow")
_LEFT = ("run", "flow", "status", "started (UTC)")


def _run_cells(run: dict[str, Any], now_ms: int) -> dict[str, RenderableType]:
    failed = metric(run, "recordSummary", "failedRecordCount")
    return {
        "run": str(run.get("id", "")),
        "flow": str(run.get("flowId", "")),
        "status": status(run.get("state")),
        "started (UTC)": moment(metric(run, "durationSummary", "startedAtUTC")),
        "duration": duration(elapsed(run, now_ms)),
        "records in": count(metric(run, "recordSummary", "inputRecordCount")),
        "out": count(metric(run, "recordSummary", "outputRecordCount")),
        "failed": Text(count(failed), style="red" if (_known(failed) or 0) > 0 else ""),
        "files": count(metric(run, "fileSummary", "inputFileCount")),
        "bytes in": size(metric(run, "sizeSummary", "inputBytes")),
        "bytes out": size(metric(run, "sizeSummary", "outputBytes")),
    }


def runs_table(
    runs: Sequence[dict[str, Any]],
    *,
    now_ms: int,
    show_flow: bool = True,
    title: str | None = None,
    width: int | None = None,
) -> Table:
    """One line per run; with `width` (a terminal's), columns are given up until the table fits."""
    rows = [_run_cells(run, now_ms) for run in runs]
    columns = [c for c in RUN_COLUMNS if show_flow or c != "flow"]

    def build() -> Table:
        table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
        for column in columns:
            table.add_column(column, no_wrap=True, justify="left" if column in _LEFT else "right")
        for row in rows:
            table.add_row(*(row[c] for c in columns))
        return table

    table = build()
    hidden = []
    for column in DROPPED_FIRST:
        if width is None or _natural_width(table) <= width:
            break
        if column in columns:
            columns.remove(column)
            hidden.append(column)
            table = build()
    if hidden:
        table.caption = f"too narrow for {', '.join(hidden)}: widen the terminal, or use --json"
    return table


def _natural_width(table: Table) -> int:
    return Console(width=10_000).measure(table).maximum


def flows_table(flows: Sequence[dict[str, Any]], spec_names: dict[str, str]) -> Table:
    table = Table(box=box.SIMPLE_HEAD)
    for header in ("flow", "name", "state", "schedule", "source", "last run", "last run at (UTC)"):
        table.add_column(header, no_wrap=header in ("flow", "state", "last run", "last run at (UTC)"))
    for flow in flows:
        last = flow.get("lastRunDetails") or {}
        when = last.get("completedAtUTC") or last.get("startedAtUTC")
        table.add_row(
            str(flow.get("id", "")),
            Text(str(flow.get("name", ""))),
            status(flow.get("state")),
            describe_schedule(flow.get("scheduleParams")),
            Text(source_name(flow, spec_names)),
            status(last.get("state")) if last else Text(NONE),
            moment(when),
        )
    return table


def source_name(flow: dict[str, Any], spec_names: dict[str, str]) -> str:
    sources = (flow.get("inheritedAttributes") or {}).get("sourceConnections") or []
    spec_id = ((sources[0] if sources else {}).get("connectionSpec") or {}).get("id")
    if not spec_id:
        return NONE
    return spec_names.get(str(spec_id), str(spec_id))


def _pair(first: Any, second: Any, formatter: Callable[[Any], str]) -> str:
    return f"{formatter(first)} in · {formatter(second)} out"


def _records(summary: dict[str, Any]) -> str:
    text = _pair(summary.get("inputRecordCount"), summary.get("outputRecordCount"), count)
    if "failedRecordCount" in summary:
        text += f" · {count(summary['failedRecordCount'])} failed"
    return text


def window_of(run: dict[str, Any]) -> tuple[int, int] | None:
    """The run's input window: the Copy Activity's, the one the scheduler and `POST /runs` set."""
    for activity in run.get("activities") or []:
        extensions = (activity.get("durationSummary") or {}).get("extensions") or {}
        if "windowStart" in extensions and "windowEnd" in extensions:
            return int(extensions["windowStart"]), int(extensions["windowEnd"])
    return None


def run_errors(run: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every error with where it was reported: the run, or an activity (those carry record counts)."""
    found = [("run", e) for e in metric(run, "statusSummary", "errors") or [] if isinstance(e, dict)]
    for activity in run.get("activities") or []:
        summary = activity.get("statusSummary") or {}
        reported = [*(summary.get("errors") or []), *((summary.get("extensions") or {}).get("errors") or [])]
        found += [(str(activity.get("name", "activity")), e) for e in reported if isinstance(e, dict)]
    return found


def run_detail(run: dict[str, Any], *, now_ms: int) -> Group:
    metrics = run.get("metrics") or {}
    times = metrics.get("durationSummary") or {}
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column()
    facts.add_row("run", str(run.get("id", "")))
    facts.add_row("flow", str(run.get("flowId", "")))
    facts.add_row("status", status(run.get("state")))
    if run.get("parentFlowRunId"):
        facts.add_row("retry of", str(run["parentFlowRunId"]))
    window = window_of(run)
    facts.add_row("window (UTC)", f"{moment(window[0])} → {moment(window[1])}" if window else NONE)
    facts.add_row("created (UTC)", moment(run.get("createdAt")))
    facts.add_row("started (UTC)", moment(times.get("startedAtUTC")))
    facts.add_row("completed (UTC)", moment(times.get("completedAtUTC")))
    facts.add_row("duration", duration(elapsed(run, now_ms)))
    facts.add_row("records", _records(metrics.get("recordSummary") or {}))
    files = metrics.get("fileSummary") or {}
    facts.add_row("files", _pair(files.get("inputFileCount"), files.get("outputFileCount"), count))
    sizes = metrics.get("sizeSummary") or {}
    facts.add_row("size", _pair(sizes.get("inputBytes"), sizes.get("outputBytes"), size))
    parts: list[RenderableType] = [facts]

    activities = Table(title="activities", title_justify="left", box=box.SIMPLE_HEAD)
    for header in ("activity", "status", "started (UTC)", "completed (UTC)", "duration"):
        activities.add_column(header, no_wrap=True)
    for header in ("records", "files", "size"):
        activities.add_column(header)
    for activity in run.get("activities") or []:
        span = activity.get("durationSummary") or {}
        started, completed = _known(span.get("startedAtUTC")), _known(span.get("completedAtUTC"))
        act_files = activity.get("fileSummary") or {}
        act_sizes = activity.get("sizeSummary") or {}
        activities.add_row(
            str(activity.get("name", "")),
            status((activity.get("statusSummary") or {}).get("status")),
            moment(started),
            moment(completed),
            duration(completed - started if started is not None and completed is not None else None),
            _records(activity.get("recordSummary") or {}),
            _pair(act_files.get("inputFileCount"), act_files.get("outputFileCount"), count),
            _pair(act_sizes.get("inputBytes"), act_sizes.get("outputBytes"), size),
        )
    parts.append(activities if run.get("activities") else Text("no activities yet", style="dim"))

    errors = run_errors(run)
    if errors:
        table = Table(title="errors", title_justify="left", box=box.SIMPLE_HEAD)
        table.add_column("reported by", no_wrap=True)
        table.add_column("code", no_wrap=True, style="red")
        table.add_column("records", justify="right", no_wrap=True)
        table.add_column("message")
        for where, error in errors:
            records = count(error["recordCount"]) if "recordCount" in error else ""
            table.add_row(where, str(error.get("code", "")), records, Text(str(error.get("message", ""))))
        parts.append(table)
    for label, url in _diagnostics(run):
        parts.append(Text.from_markup(f"[bold]{label}:[/bold] {escape(url)}"))
    return Group(*parts)


def _diagnostics(run: dict[str, Any]) -> Iterable[tuple[str, str]]:
    """Where the failed records and sample errors can be downloaded, when the flow keeps them."""
    for activity in run.get("activities") or []:
        manifest = ((activity.get("statusSummary") or {}).get("extensions") or {}).get("manifest") or {}
        for key, label in (("failedRecords", "failed records"), ("sampleErrors", "sample errors")):
            if isinstance(manifest.get(key), str):
                yield label, manifest[key]


def watch_view(
    runs: Sequence[dict[str, Any]],
    *,
    flow_id: str | None,
    now_ms: int,
    note: str = "",
    width: int | None = None,
) -> Group:
    in_flight = [r for r in runs if r.get("state") in IN_FLIGHT]
    scope = f"flow {flow_id}" if flow_id else "all flows"
    heading = Text.from_markup(
        f"[bold]runs of {escape(scope)}[/bold] · {len(in_flight)} in flight · "
        f"updated {moment(now_ms)} UTC · Ctrl-C to stop"
    )
    parts: list[RenderableType] = [heading]
    show_flow = flow_id is None
    if in_flight:
        parts.append(
            runs_table(in_flight, now_ms=now_ms, show_flow=show_flow, title="in flight", width=width)
        )
    finished = [r for r in runs if r.get("state") not in IN_FLIGHT]
    parts.append(runs_table(finished, now_ms=now_ms, show_flow=show_flow, title="recent", width=width))
    if note:
        parts.append(Text(note, style="yellow"))
    return Group(*parts)
