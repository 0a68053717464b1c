"""The monitoring commands (`login`, `flows …`, `runs …`) run as processes against a live server.

The server has a database of its own, no workers and the scheduler off, so the runs here are the
ones this module starts with `POST /runs` (on flows scheduled once, reading the dummy connector's
generated files), and they move only while a `flowservice worker` process runs: every number the
commands print can be checked against the API's answer, and `watch` really sees a run go from
scheduled to success.
"""

from __future__ import annotations

import ast
import json
import os
import re
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from fastapi.testclient import TestClient

from flowservice import catalog
from flowservice.cli import views
from flowservice.cli.client import ApiError, error_of
from tests import factories
from tests.factories import BASE, Tenant, new_org_id
from tests.live import LiveServer, serve, worker

MAPPINGS = [
    {"sourceType": "ATTRIBUTE", "source": "id", "destination": "id"},
    {"sourceType": "EXPRESSION", "source": "concat('u', id, '@example.com')", "destination": "email"},
    {"sourceType": "ATTRIBUTE", "source": "amount", "destination": "amount"},
]
ONCE = {"startTime": "1700000000", "frequency": "once"}
# Rich looks at these; a CI that sets them would turn the pipe into a "terminal" of 80 columns
TERMINAL_VARIABLES = ("COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")


@dataclass
class World:
    server: LiveServer
    http: httpx.Client
    tenant: Tenant
    home: Path
    server_env: dict[str, str]
    good: str  # flow ids
    broken: str
    every_15_min: str
    slow: str
    first: dict[str, Any]  # runs: the good flow's, the broken flow's, the good flow's again
    failed: dict[str, Any]
    second: dict[str, Any]

    def env(self, **extra: str) -> dict[str, str]:
        """Credentials from the environment, and a profile path that does not exist."""
        return {
            "FLOWSERVICE_URL": self.server.url,
            "FLOWSERVICE_CLIENT_ID": self.tenant.client_id,
            "FLOWSERVICE_CLIENT_SECRET": self.tenant.client_secret,
            "FLOWSERVICE_ORG_ID": self.tenant.org_id,
            "FLOWSERVICE_CONFIG": str(self.home / "no-profile.json"),
            **extra,
        }

    def api(self, path: str, **params: Any) -> Any:
        response = self.http.get(f"{BASE}{path}", params=params, headers=self.tenant.headers())
        assert response.status_code == 200, response.text
        return response.json()

    def runs(self, *properties: str) -> list[dict[str, Any]]:
        query: list[tuple[str, str | int | float | bool | None]] = [("property", p) for p in properties]
        query.append(("limit", 1000))
        response = self.http.get(f"{BASE}/runs", params=query, headers=self.tenant.headers())
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items


def flowservice(
    *args: str, env: dict[str, str], input: str | None = None, new_session: bool = False
) -> subprocess.CompletedProcess[str]:
    """`python -m flowservice …` with only the FLOWSERVICE_* variables given (none inherited)."""
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("FLOWSERVICE_") and k not in TERMINAL_VARIABLES
    }
    return subprocess.run(
        [sys.executable, "-m", "flowservice", *args],
        env={**environment, **env},
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=new_session,
    )


def start_watch(world: World, flow_id: str, *options: str) -> subprocess.Popen[str]:
    """`runs watch --json` as a process whose lines the test reads as they come."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FLOWSERVICE_")}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flowservice",
            "runs",
            "watch",
            "--flow",
            flow_id,
            "--json",
            "--interval",
            "0.2",
        ]
        + list(options),
        env={**environment, **world.env()},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def first_line(watcher: subprocess.Popen[str]) -> dict[str, Any]:
    assert watcher.stdout is not None
    ready, _, _ = select.select([watcher.stdout], [], [], 30)  # its first look at the runs
    assert ready, "watch printed nothing"
    line: dict[str, Any] = json.loads(watcher.stdout.readline())
    return line


def dummy_flow(client: TestClient, tenant: Tenant, name: str, params: dict[str, Any], **flow: Any) -> str:
    connection = factories.create(
        client,
        tenant,
        "connections",
        {
            "name": f"{name} files",
            "auth": {"specName": "Dummy", "params": params},
            "connectionSpec": {"id": catalog.DUMMY, "version": "1.0"},
        },
    )
    source = {
        "name": f"{name} source",
        "baseConnectionId": connection["id"],
        "data": {"format": "delimited"},
        "params": {"path": "dummy"},
        "connectionSpec": {"id": catalog.DUMMY, "version": "1.0"},
    }
    return factories.dataflow(client, tenant, source=source, mappings=MAPPINGS, name=name, **flow).flow_id


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("remote")
    env = {
        "FLOWSERVICE_HOME": str(home),
        "FLOWSERVICE_DATABASE_URL": f"sqlite:///{home / 'remote.db'}",  # no other test's runs or flows
        "FLOWSERVICE_TEST_CONNECTORS": "1",
        "FLOWSERVICE_SCHEDULER": "false",
        "FLOWSERVICE_WORKERS": "0",
        "FLOWSERVICE_POLL_SECONDS": "0.2",
    }
    with serve(home, env=env) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        made = flowservice("credentials", "create", "--org", new_org_id(), "--json", env=env)
        assert made.returncode == 0, made.stderr
        credential = json.loads(made.stdout)
        # the factories only call .get and .post, which an httpx.Client has as a TestClient does
        client = cast(TestClient, http)
        token = factories.token_for(client, credential["client_id"], credential["client_secret"])
        tenant = Tenant(credential["org_id"], credential["client_id"], credential["client_secret"], token)
        good = dummy_flow(
            client,
            tenant,
            "good",
            {"files": 3, "rows": 400, "badRows": 5},
            scheduleParams=ONCE,
            options={"partialIngestionPercent": 50, "errorDiagnosticsEnabled": True},
        )
        broken = dummy_flow(
            client,
            tenant,
            "broken",
            {"files": 1, "failOn": "open", "failKind": "terminal"},
            scheduleParams=ONCE,
        )
        every_15_min = dummy_flow(
            client,
            tenant,
            "quarterly",
            {"files": 1},
            scheduleParams={"startTime": "1700000000", "frequency": "minute", "interval": "15"},
        )
        slow = dummy_flow(client, tenant, "slow", {"files": 8, "rows": 20_000}, scheduleParams=ONCE)
        seeded = []
        with worker(env, home):
            for flow_id in (good, broken, good):  # one after the other: distinct creation times for --since
                run_id = factories.start_run(client, tenant, flow_id)
                seeded.append(factories.wait_for_run(client, tenant, run_id, timeout=30))
        first, failed, second = seeded
        assert (first["state"], failed["state"], second["state"]) == ("success", "failed", "success")
        yield World(server, http, tenant, home, env, good, broken, every_15_min, slow, first, failed, second)


def line_of(output: str, *texts: str) -> str:
    """The one line that holds all the texts."""
    [line] = [line for line in output.splitlines() if all(text in line for text in texts)]
    return line


def fact(output: str, label: str) -> str:
    """A line of `runs show`'s summary (or of one of its tables) by the word it starts with."""
    [line] = [line for line in output.splitlines() if line.strip().startswith(label + " ")]
    return line


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, *expected: str) -> None:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    for text in expected:
        assert text in result.stderr, result.stderr


# --- credentials -------------------------------------------------------------------------------------


def test_missing_credentials_exit_2_naming_what_to_set(tmp_path: Path) -> None:
    nothing = {"FLOWSERVICE_CONFIG": str(tmp_path / "absent.json")}
    for args in (("runs", "list"), ("flows", "run", "some-flow"), ("runs", "watch", "--until-finished")):
        result = flowservice(*args, env=nothing)
        assert_one_line_error(
            result,
            2,
            "FLOWSERVICE_URL",
            "FLOWSERVICE_CLIENT_ID",
            "FLOWSERVICE_CLIENT_SECRET",
            "FLOWSERVICE_ORG_ID",
            "flowservice login",
        )
    partial = flowservice(
        "flows", "list", env={**nothing, "FLOWSERVICE_URL": "http://127.0.0.1:9", "FLOWSERVICE_ORG_ID": "O"}
    )
    assert_one_line_error(partial, 2, "FLOWSERVICE_CLIENT_ID, FLOWSERVICE_CLIENT_SECRET")
    assert "FLOWSERVICE_URL" not in partial.stderr and "FLOWSERVICE_ORG_ID" not in partial.stderr


def test_login_writes_a_private_profile_that_later_commands_use(world: World, tmp_path: Path) -> None:
    path = tmp_path / "config" / "profile.json"
    env = {"FLOWSERVICE_CONFIG": str(path)}
    t = world.tenant
    logged_in = flowservice(
        "login",
        "--url",
        world.server.url,
        "--client-id",
        t.client_id,
        "--client-secret",
        t.client_secret,
        "--org",
        t.org_id,
        env=env,
    )
    assert logged_in.returncode == 0, logged_in.stderr
    assert path.stat().st_mode & 0o777 == 0o600
    assert json.loads(path.read_text()) == {
        "url": world.server.url,
        "client_id": t.client_id,
        "client_secret": t.client_secret,
        "org_id": t.org_id,
        "sandbox": "prod",
    }
    assert [p.name for p in path.parent.iterdir()] == ["profile.json"]  # no temporary file left behind

    listed = flowservice("flows", "list", "--json", env=env)  # the profile alone
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == world.api("/flows")["items"]

    # a variable overrides the profile's value
    elsewhere = flowservice("flows", "list", env={**env, "FLOWSERVICE_SANDBOX": "nowhere"})
    assert_one_line_error(elsewhere, 1, "FLOW-2100-404", "nowhere")

    # wrong credentials: refused by IMS, and the saved profile is left as it was
    saved = path.read_text()
    refused = flowservice(
        "login",
        "--url",
        world.server.url,
        "--client-id",
        t.client_id,
        "--client-secret",
        "not-the-secret",
        "--org",
        t.org_id,
        env=env,
    )
    assert refused.returncode == 1 and "invalid_client" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr and path.read_text() == saved

    # what is not given is asked for; the secret's prompt does not echo. Without a controlling
    # terminal (a session of its own) the hidden prompt reads stdin instead of the tester's keyboard.
    prompted_path = tmp_path / "prompted.json"
    prompted = flowservice(
        "login",
        env={"FLOWSERVICE_CONFIG": str(prompted_path)},
        input=f"{world.server.url}\n{t.client_id}\n{t.client_secret}\n{t.org_id}\n",
        new_session=True,
    )
    assert prompted.returncode == 0, prompted.stderr
    assert t.client_secret not in prompted.stdout + prompted.stderr
    assert json.loads(prompted_path.read_text()) == json.loads(saved)


def test_api_errors_are_one_line_with_their_code(world: World) -> None:
    scheduled = flowservice("flows", "run", world.every_15_min, env=world.env())
    assert_one_line_error(scheduled, 1, "FLOW-1386-400", world.every_15_min)
    assert world.runs(f"flowId=={world.every_15_min}") == []

    missing = flowservice("runs", "show", "no-such-run", env=world.env())
    assert_one_line_error(missing, 1, "FLOW-1439-404", "no-such-run")

    other_org = flowservice("runs", "list", env=world.env(FLOWSERVICE_ORG_ID=new_org_id()))
    assert_one_line_error(other_org, 1, "FLOW-2000-401")

    bad_secret = flowservice("flows", "list", env=world.env(FLOWSERVICE_CLIENT_SECRET="wrong"))
    assert_one_line_error(bad_secret, 1, "invalid_client")

    unreachable = flowservice("runs", "list", env=world.env(FLOWSERVICE_URL="http://127.0.0.1:9"))
    assert_one_line_error(unreachable, 1, "cannot reach http://127.0.0.1:9")


def test_the_three_error_shapes_read_as_code_and_message() -> None:
    def error(body: dict[str, Any], status: int) -> ApiError:
        return error_of(httpx.Response(status, json=body))

    problem = error(
        {
            "type": "https://ns.adobe.com/aep/errors/FLOW-1386-400",
            "title": "Invalid request",
            "status": 400,
            "report": {"detailed-message": "On-demand runs are for flows scheduled once."},
            "errorMessage": "On-demand runs are for flows scheduled once.",
        },
        400,
    )
    assert (problem.code, problem.message, problem.status) == (
        "FLOW-1386-400",
        "On-demand runs are for flows scheduled once.",
        400,
    )
    gateway = error({"error_code": "401013", "message": "Oauth token is not valid"}, 401)
    assert (gateway.code, gateway.message) == ("401013", "Oauth token is not valid")
    oauth = error({"error": "invalid_client", "error_description": "invalid client_id\nor secret."}, 401)
    assert (oauth.code, oauth.message) == ("invalid_client", "invalid client_id or secret.")
    html = error_of(httpx.Response(502, text="<html>Bad gateway</html>"))
    assert (html.code, html.message) == ("HTTP 502", "<html>Bad gateway</html>")


# --- flows ---------------------------------------------------------------------------------------------


def test_flows_list_shows_schedule_source_and_last_run(world: World) -> None:
    table = flowservice("flows", "list", env=world.env())
    assert table.returncode == 0, table.stderr
    good = line_of(table.stdout, world.good)
    last = world.second["metrics"]["durationSummary"]["completedAtUTC"]
    for text in ("good", "enabled", "once", "Dummy (tests)", "success", views.moment(last)):
        assert text in good, good
    broken = line_of(table.stdout, world.broken)
    assert "once" in broken and "failed" in broken
    quarterly = line_of(table.stdout, world.every_15_min)
    assert "every 15 minutes" in quarterly and "success" not in quarterly

    as_json = flowservice("flows", "list", "--json", "--limit", "2", env=world.env())
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == world.api("/flows")["items"][:2]


def test_flows_run_starts_a_run_that_watch_follows_until_it_succeeds(world: World) -> None:
    started = flowservice(
        "flows", "run", world.slow, "--window-start", "1000", "--window-end", "4000000000", env=world.env()
    )
    assert started.returncode == 0, started.stderr
    run_id = started.stdout.strip()
    assert re.fullmatch(r"[0-9a-f-]{36}", run_id), started.stdout

    assert world.api(f"/runs/{run_id}")["items"][0]["state"] == "scheduled"  # no worker yet
    watcher = start_watch(world, world.slow, "--until-finished")
    try:
        events = [first_line(watcher)]
        assert (events[0]["id"], events[0]["state"], events[0]["previousState"]) == (
            run_id,
            "scheduled",
            None,
        )
        with worker(world.server_env, world.home):  # now the run moves, and watch follows it to its end
            rest, stderr = watcher.communicate(timeout=60)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    assert watcher.returncode == 0, stderr
    events += [json.loads(line) for line in rest.splitlines()]
    mine = [e for e in events if e["id"] == run_id]
    states = [e["state"] for e in mine]
    assert states[0] == "scheduled" and states[-1] == "success", states
    assert set(states) <= {"scheduled", "inProgress", "success"} and len(set(states)) == len(states), states
    assert [e["previousState"] for e in mine] == [None, *states[:-1]]

    # watch exited once the run had finished: the API agrees, numbers and all
    [run] = world.api(f"/runs/{run_id}")["items"]
    assert run["state"] == "success" and run["metrics"] == mine[-1]["metrics"]
    assert run["metrics"]["recordSummary"]["outputRecordCount"] == 8 * 20_000
    copy = run["activities"][0]["durationSummary"]["extensions"]
    assert (copy["windowStart"], copy["windowEnd"]) == (1_000_000, 4_000_000_000_000)


# --- runs ----------------------------------------------------------------------------------------------


def test_runs_list_shows_the_api_numbers_for_people(world: World) -> None:
    as_json = flowservice("runs", "list", "--flow", world.good, "--json", env=world.env())
    assert as_json.returncode == 0, as_json.stderr
    api = world.runs(f"flowId=={world.good}")
    assert json.loads(as_json.stdout) == api and [r["id"] for r in api] == [
        world.second["id"],
        world.first["id"],
    ]

    table = flowservice("runs", "list", env=world.env())
    assert table.returncode == 0, table.stderr
    run = world.first
    m = run["metrics"]
    line = line_of(table.stdout, run["id"])
    cells = line.split()
    assert cells[:2] == [run["id"], world.good] and "success" in cells
    records = m["recordSummary"]
    assert (records["inputRecordCount"], records["outputRecordCount"], records["failedRecordCount"]) == (
        1200,
        1185,
        15,
    )
    assert re.search(r"\s1,200\s+1,185\s+15\s+3\s", line), line  # records in, out, failed; files
    assert m["fileSummary"]["inputFileCount"] == 3
    started, completed = m["durationSummary"]["startedAtUTC"], m["durationSummary"]["completedAtUTC"]
    for text in (
        views.moment(started),
        views.duration(completed - started),
        views.size(m["sizeSummary"]["inputBytes"]),
        views.size(m["sizeSummary"]["outputBytes"]),
    ):
        assert text in line, (text, line)
    assert re.search(r"\d+\.\d KB", line), line  # 52.9 KB and the like, not a byte count
    failed = line_of(table.stdout, world.failed["id"])
    assert "failed" in failed and "—" in failed  # records not known: the source could not be read

    # pages followed with the continuation token: one run per page, all of them
    paged = flowservice("runs", "list", "--page-size", "1", "--json", env=world.env())
    assert paged.returncode == 0, paged.stderr
    assert [r["id"] for r in json.loads(paged.stdout)] == [r["id"] for r in world.runs()]
    assert len(json.loads(paged.stdout)) >= 3


def test_runs_list_status_filter_shows_only_failed_runs(world: World) -> None:
    failed = flowservice("runs", "list", "--status", "failed", "--json", env=world.env())
    assert failed.returncode == 0, failed.stderr
    runs = json.loads(failed.stdout)
    assert [r["id"] for r in runs] == [world.failed["id"]]
    assert {r["state"] for r in runs} == {"failed"}

    table = flowservice("runs", "list", "--status", "FAILED", env=world.env())
    assert table.returncode == 0, table.stderr
    assert world.failed["id"] in table.stdout
    assert world.first["id"] not in table.stdout and world.second["id"] not in table.stdout

    typo = flowservice("runs", "list", "--status", "faild", env=world.env())
    assert typo.returncode == 2 and "not a run status" in typo.stderr and "Traceback" not in typo.stderr


def test_runs_list_since_filters_on_creation_time(world: World) -> None:
    everything = flowservice("runs", "list", "--since", "1d", "--json", env=world.env())
    assert everything.returncode == 0, everything.stderr
    assert [r["id"] for r in json.loads(everything.stdout)] == [r["id"] for r in world.runs()]

    # an absolute time: just before the second run of the good flow was created
    cut = world.second["createdAt"] - 1
    iso = datetime.fromtimestamp(cut / 1000, UTC).isoformat(timespec="milliseconds")
    recent = flowservice("runs", "list", "--since", iso, "--flow", world.good, "--json", env=world.env())
    assert recent.returncode == 0, recent.stderr
    assert [r["id"] for r in json.loads(recent.stdout)] == [world.second["id"]]
    assert world.first["createdAt"] <= cut

    nonsense = flowservice("runs", "list", "--since", "a while", env=world.env())
    assert nonsense.returncode == 2 and "30m, 6h, 1d, 2w" in nonsense.stderr


def test_runs_show_has_window_activities_and_errors_with_counts(world: World) -> None:
    run = world.first
    result = flowservice("runs", "show", run["id"], env=world.env())
    assert result.returncode == 0, result.stderr
    out = result.stdout
    copy, promotion = run["activities"]
    window = copy["durationSummary"]["extensions"]
    assert (window["windowStart"], window["windowEnd"]) == (0, 4_000_000_000_000)
    assert f"{views.moment(0)} → {views.moment(4_000_000_000_000)}" in fact(out, "window")
    assert "1,200 in · 1,185 out · 15 failed" in fact(out, "records")
    assert "3 in · 3 out" in fact(out, "files")
    size = run["metrics"]["sizeSummary"]
    assert f"{views.size(size['inputBytes'])} in · {views.size(size['outputBytes'])} out" in fact(out, "size")
    assert "1,200 in · 1,200 out" in fact(out, "Copy Activity")
    assert line_of(out, "Promotion Activity", "success", "1,200 in · 1,185 out · 15 failed")
    assert promotion["statusSummary"]["extensions"]["errors"][-1] == {
        "code": "MAPPER-3700-400",
        "message": "Mapper Transform Error",
        "recordCount": 15,
    }
    assert re.search(r"MAPPER-3700-400\s+15\s+Mapper Transform Error", line_of(out, "MAPPER-3700-400")), out
    assert "INGEST-1212-400" in line_of(out, "Promotion Activity", "INGEST-1212-400")
    reporters = [line.split()[0] for line in out.splitlines() if "CONNECTOR-2001-500" in line]
    assert reporters == ["run", "Promotion"]  # the run's own error, and the activity's
    assert "failed records: http" in out  # the diagnostics the flow keeps

    failed = flowservice("runs", "show", world.failed["id"], env=world.env())
    assert failed.returncode == 0, failed.stderr
    assert "failed" in fact(failed.stdout, "status")
    assert "CONNECTOR-1001-500" in failed.stdout and "injected terminal failure in open()" in failed.stdout

    as_json = flowservice("runs", "show", run["id"], "--json", env=world.env())
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == world.api(f"/runs/{run['id']}")["items"][0]


def test_watch_shows_the_live_view_and_stops_on_ctrl_c(world: World) -> None:
    # nothing in flight: --until-finished has nothing to wait for, after one look
    idle = flowservice("runs", "watch", "--flow", world.good, "--until-finished", env=world.env())
    assert idle.returncode == 0, idle.stderr
    assert "0 in flight" in idle.stdout
    assert world.first["id"] in idle.stdout and world.second["id"] in idle.stdout

    unknown = flowservice("runs", "watch", "--flow", "no-such-flow", env=world.env())
    assert_one_line_error(unknown, 1, "FLOW-1439-404")

    watcher = start_watch(world, world.good)
    try:
        first = first_line(watcher)
        assert first["flowId"] == world.good and first["previousState"] is None
        watcher.send_signal(signal.SIGINT)
        _, stderr = watcher.communicate(timeout=30)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    assert watcher.returncode == 0 and "Traceback" not in stderr, stderr


# --- pieces that need no server ------------------------------------------------------------------------


def test_numbers_read_as_people_write_them() -> None:
    assert views.count(26758) == "26,758" and views.count(-1) == "—" and views.count(None) == "—"
    assert (
        views.size(1_200_000_000) == "1.2 GB"
        and views.size(512) == "512 B"
        and views.size(52862) == "52.9 KB"
    )
    assert (
        views.duration(56_000) == "56 s"
        and views.duration(373) == "373 ms"
        and views.duration(252_000) == ("4 min 12 s")
    )


def test_the_monitoring_commands_import_nothing_of_the_server() -> None:
    """They must work against any deployment: HTTP only, no store, services or API code."""
    folder = Path(views.__file__).parent
    forbidden = ("flowservice.store", "flowservice.services", "flowservice.api", "sqlalchemy")
    for name in ("remote", "client", "config", "views", "watch"):
        tree = ast.parse((folder / f"{name}.py").read_text())
        imported = {
            alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        }
        imported |= {
            node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
        }
        assert not [m for m in imported if m.startswith(forbidden)], (name, imported)
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, flowservice.cli.app; print('sqlalchemy' in sys.modules)"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.stdout.strip() == "False", probe.stderr  # the server's stack is loaded only to serve
