"""`GET /runs` and `GET /runs/{id}`: the tutorial's run object, its metrics, and the list grammar on runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from flowservice.domain.runs import RunError
from flowservice.errors import InvalidRequest
from flowservice.services import runs
from flowservice.services.context import Services
from tests import factories
from tests.factories import BASE, Tenant

TUTORIAL = json.loads((Path(__file__).parents[1] / "fixtures" / "tutorial_runs_response.json").read_text())


def shape(value: Any) -> Any:
    """The structure of a JSON value: keys and types, not contents (lists by their first item)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


def assert_covers(ours: Any, theirs: Any, where: str = "run") -> None:
    """Every field of the tutorial is in our answer, with the same JSON type."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict), where
        for key, value in theirs.items():
            assert key in ours, f"{where}.{key} is missing"
            assert_covers(ours[key], value, f"{where}.{key}")
    elif isinstance(theirs, list) and theirs:
        assert isinstance(ours, list) and len(ours) >= len(theirs), where
        for index, (mine, example) in enumerate(zip(ours, theirs, strict=False)):
            assert_covers(mine, example, f"{where}[{index}]")
    else:
        assert ours == theirs, f"{where}: {ours} is not a {theirs}"


def runs_of(client: TestClient, tenant: Tenant, *properties: str, **params: str) -> dict[str, Any]:
    query = [("property", p) for p in properties] + list(params.items())
    response = client.get(f"{BASE}/runs", params=query, headers=tenant.headers())
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_finished_run_has_every_field_of_the_tutorial(
    services: Services, client: TestClient, tenant: Tenant
) -> None:
    dataflow = factories.dataflow(client, tenant)
    factories.run_through(services, tenant, dataflow.flow_id, records=(26758, 26758, 0), files=11)
    body = runs_of(client, tenant, f"flowId=={dataflow.flow_id}")
    assert set(body) == {"items", "_links"} and body["_links"] == {}
    [run] = body["items"]
    assert_covers(shape(run), shape(TUTORIAL["items"][0]))
    assert run["flowId"] == dataflow.flow_id
    assert run["state"] == run["metrics"]["statusSummary"]["status"] == "success"
    assert [a["name"] for a in run["activities"]] == ["Copy Activity", "Promotion Activity"]
    assert run["imsOrgId"] == tenant.org_id and run["createdClient"] == tenant.client_id


def test_metrics_mean_what_design_section_4_says(
    services: Services, client: TestClient, tenant: Tenant
) -> None:
    dataflow = factories.dataflow(client, tenant)
    errors = (
        RunError("INGEST-1212-400", "Encountered 3 errors in the data."),
        RunError("MAPPER-3700-400", "Mapper Transform Error", 3),
    )
    factories.run_through(
        services,
        tenant,
        dataflow.flow_id,
        records=(120, 117, 3),
        files=4,
        input_bytes=9000,
        output_bytes=5000,
        errors=errors,
    )
    [run] = runs_of(client, tenant, f"flowId=={dataflow.flow_id}")["items"]
    copy, promotion = run["activities"]
    m = run["metrics"]
    assert m["recordSummary"] == {"inputRecordCount": 120, "outputRecordCount": 117, "failedRecordCount": 3}
    assert m["sizeSummary"] == {
        "inputBytes": copy["sizeSummary"]["inputBytes"],
        "outputBytes": promotion["sizeSummary"]["outputBytes"],
    }
    assert m["sizeSummary"] == {"inputBytes": 9000, "outputBytes": 5000}
    assert m["fileSummary"]["inputFileCount"] == copy["fileSummary"]["inputFileCount"] == 4
    assert m["fileSummary"]["outputFileCount"] == 4  # source files fully processed
    assert m["fileSummary"]["activityRefs"] == [promotion["id"]]
    assert m["durationSummary"]["startedAtUTC"] == copy["durationSummary"]["startedAtUTC"]
    assert m["durationSummary"]["completedAtUTC"] >= promotion["durationSummary"]["completedAtUTC"]
    assert promotion["recordSummary"]["inputRecordCount"] == 117 + 3
    assert promotion["statusSummary"]["extensions"]["errors"] == [
        {"code": "MAPPER-3700-400", "message": "Mapper Transform Error", "recordCount": 3}
    ]
    assert m["statusSummary"]["errors"] == [
        {"code": "INGEST-1212-400", "message": "Encountered 3 errors in the data."}
    ]
    assert set(copy["durationSummary"]["extensions"]) == {"windowStart", "windowEnd"}


def test_progress_is_visible_and_last_run_details_follow_the_newest_run(
    services: Services, client: TestClient, tenant: Tenant
) -> None:
    dataflow = factories.dataflow(client, tenant)
    flow_etag = factories.get(client, tenant, "flows", dataflow.flow_id)["etag"]
    who = factories.domain_tenant(services, tenant)
    created = runs.create_run(services, who, dataflow.flow_id, client_id=tenant.client_id)
    [run] = client.get(f"{BASE}/runs/{created['id']}", headers=tenant.headers()).json()["items"]
    assert run["state"] == "scheduled" and run["activities"] == []
    assert "startedAtUTC" not in run["metrics"]["durationSummary"]
    flow = factories.get(client, tenant, "flows", dataflow.flow_id)
    assert flow["lastRunDetails"] == {"id": created["id"], "state": "scheduled"}

    started = runs.start_run(services, who, created["id"])
    assert started["etag"] != created["etag"]
    assert (
        runs_of(client, tenant, "state==inProgress", f"flowId=={dataflow.flow_id}")["items"][0]["id"]
        == created["id"]
    )
    finished = runs.finish_run(
        services,
        who,
        created["id"],
        "failed",
        [RunError("CONNECTOR-1001-500", "Error in copying the data from Source.")],
    )
    details = factories.get(client, tenant, "flows", dataflow.flow_id)["lastRunDetails"]
    assert details == {
        "id": created["id"],
        "state": "failed",
        "startedAtUTC": finished["metrics"]["durationSummary"]["startedAtUTC"],
        "completedAtUTC": finished["metrics"]["durationSummary"]["completedAtUTC"],
    }
    newer = factories.run_through(services, tenant, dataflow.flow_id)
    flow = factories.get(client, tenant, "flows", dataflow.flow_id)
    assert flow["lastRunDetails"]["id"] == newer["id"] and flow["lastRunDetails"]["state"] == "success"
    assert (
        flow["etag"] == flow_etag
    )  # run progress is not a client write: PATCHes with the old etag still work
    with pytest.raises(InvalidRequest) as exc:
        runs.finish_run(services, who, created["id"], "success")
    assert exc.value.code == "1407"


def test_documented_run_filters(services: Services, client: TestClient, tenant: Tenant) -> None:
    dataflow = factories.dataflow(client, tenant)
    other = factories.dataflow(client, tenant)
    ok = factories.run_through(services, tenant, dataflow.flow_id)
    bad = factories.run_through(services, tenant, dataflow.flow_id, status="failed", records=(10, 0, 10))
    factories.run_through(services, tenant, other.flow_id, status="failed", records=(5, 0, 5))
    flow = f"flowId=={dataflow.flow_id}"

    def ids(*properties: str, **params: str) -> set[str]:
        return {r["id"] for r in runs_of(client, tenant, *properties, **params)["items"]}

    assert ids(flow) == {ok["id"], bad["id"]}
    assert ids(flow, "metrics.statusSummary.status==Failed") == {bad["id"]}
    assert ids(flow, "metrics.statusSummary.status==failed") == {bad["id"]}
    assert ids(flow, "state==SUCCESS") == {ok["id"]}
    start = ok["metrics"]["durationSummary"]["startedAtUTC"]
    assert ids(
        flow,
        f"metrics.durationSummary.startedAtUTC>{start - 1}",
        f"metrics.durationSummary.startedAtUTC<{start + 1}",
    ) == {ok["id"]}
    assert ids("metrics.recordSummary.failedRecordCount>0") == {bad["id"], *ids(f"flowId=={other.flow_id}")}
    assert ids(f"flowId=={dataflow.flow_id},{other.flow_id}", "state==failed") == ids("state==failed")
    assert ids(f"id=={ok['id']}") == {ok["id"]}
    assert ids("activities[].statusSummary.status==failed") == ids("state==failed")
    assert runs_of(client, tenant, flow, count="true") == {"count": 2}
    assert runs_of(client, tenant, "state==failed", count="true") == {"count": 2}
    # documented on flows: lastRunDetails is filterable
    flows = client.get(
        f"{BASE}/flows",
        params={"property": f"lastRunDetails.startedAtUTC>={start}"},
        headers=tenant.headers(),
    ).json()["items"]
    assert {f["id"] for f in flows} == {dataflow.flow_id, other.flow_id}


def test_pages_follow_continuation_tokens_alone_or_with_the_original_parameters(
    services: Services, client: TestClient, tenant: Tenant
) -> None:
    dataflow = factories.dataflow(client, tenant)
    made = [factories.run_through(services, tenant, dataflow.flow_id)["id"] for _ in range(7)]
    params = [("property", f"flowId=={dataflow.flow_id}"), ("limit", "3"), ("count", "false")]
    for resend in (False, True):
        seen: list[dict[str, Any]] = []
        response = client.get(f"{BASE}/runs", params=params, headers=tenant.headers())
        pages = 0
        while True:
            body = response.json()
            pages += 1
            seen += body["items"]
            if body["_links"] == {}:
                break
            token = body["_links"]["next"]["href"].split("=")[1]  # exactly as aepp does
            follow = [*params, ("continuationToken", token)] if resend else [("continuationToken", token)]
            response = client.get(f"{BASE}/runs", params=follow, headers=tenant.headers())
            assert response.status_code == 200, response.text
        assert pages == 3 and sorted(r["id"] for r in seen) == sorted(made)
        keys = [(r["createdAt"], r["id"]) for r in seen]
        assert keys == sorted(keys, reverse=True)  # newest first
    first = client.get(f"{BASE}/runs", params=params, headers=tenant.headers()).json()
    token = first["_links"]["next"]["href"].split("=")[1]
    mixed = client.get(
        f"{BASE}/runs",
        params=[("property", "state==failed"), ("continuationToken", token)],
        headers=tenant.headers(),
    )
    assert mixed.status_code == 400 and mixed.json()["report"]["field"] == "continuationToken"


def test_orderby_on_runs(services: Services, client: TestClient, tenant: Tenant) -> None:
    dataflow = factories.dataflow(client, tenant)
    for total in (30, 10, 20):
        factories.run_through(services, tenant, dataflow.flow_id, records=(total, total, 0))
    flow = f"flowId=={dataflow.flow_id}"
    counts = [
        r["metrics"]["recordSummary"]["inputRecordCount"]
        for r in runs_of(client, tenant, flow, orderby="metrics.recordSummary.inputRecordCount")["items"]
    ]
    assert counts == [10, 20, 30]
    counts = [
        r["metrics"]["recordSummary"]["inputRecordCount"]
        for r in runs_of(client, tenant, flow, orderby="-metrics.recordSummary.inputRecordCount", limit="2")[
            "items"
        ]
    ]
    assert counts == [30, 20]
    oldest = runs_of(client, tenant, flow, orderby=" createdAt")["items"]  # an unencoded '+'
    assert [r["createdAt"] for r in oldest] == sorted(r["createdAt"] for r in oldest)
    bad = client.get(f"{BASE}/runs", params={"orderby": "activities"}, headers=tenant.headers())
    assert bad.status_code == 400 and bad.json()["type"].endswith("FLOW-1433-400")


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"limit": "5", "count": "true"}, "FLOW-1401-400"),
        ({"testParam": "1"}, "FLOW-1451-400"),
        ({"property": "state~fail"}, "FLOW-1440-400"),
        ({"property": "createdAt<=1,2"}, "FLOW-1443-400"),
        ({"property": "flowId>=1"}, "FLOW-1448-400"),
        ({"property": "state!>1"}, "FLOW-1450-400"),
        ({"property": "createdAt>soon"}, "FLOW-1452-400"),
        ({"property": "createdAt=="}, "FLOW-1453-400"),
        ({"orderby": "--createdAt"}, "FLOW-1432-400"),
    ],
)
def test_list_errors_have_their_codes(
    client: TestClient, tenant: Tenant, params: dict[str, str], code: str
) -> None:
    response = client.get(f"{BASE}/runs", params=params, headers=tenant.headers())
    assert response.status_code == 400
    assert response.json()["type"].endswith(code)


def test_runs_of_other_tenants_are_invisible(services: Services, client: TestClient, tenant: Tenant) -> None:
    dataflow = factories.dataflow(client, tenant)
    run = factories.run_through(services, tenant, dataflow.flow_id)
    intruder = factories.new_tenant(services, client)
    for properties in (
        [f"flowId=={dataflow.flow_id}"],
        [f"imsOrgId=={tenant.org_id}"],
        [f"id=={run['id']}"],
        [],
    ):
        assert runs_of(client, intruder, *properties)["items"] == []
    assert runs_of(client, intruder, f"imsOrgId=={tenant.org_id}", count="true") == {"count": 0}
    missing = client.get(f"{BASE}/runs/{run['id']}", headers=intruder.headers())
    assert missing.status_code == 404 and missing.json()["report"]["type"] == "runs"
