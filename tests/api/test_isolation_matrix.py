"""Tenant isolation, route by route and filter by filter: org B, and sandbox `dev` of org A, see and
change nothing of org A's `prod`.

The owner (org A, `prod`) and both outsiders hold resources of every kind, made through the API
with real runs (`world.py`), so every list has something in it and every id is real. Then, for each
outsider:

- every operation of the OpenAPI document under `/data/` is called with the owner's ids in its path
  (404), the owner's etag in If-Match, and bodies that name the owner's resources (refused);
- the outsider's own resources cannot be re-pointed at the owner's (a target at their dataset, a
  flow at their mapping set, an alert rule at their flow);
- every list is asked with every filter that names the owner (`imsOrgId`, `sandboxName`,
  `sandboxId`, `createdClient`, ids, references, negations, OR-ed values, counts): the outsider's
  own items at most, never one of the owner's;
- continuation tokens are signed and bound to tenant, collection and query: the owner's tokens,
  edited, re-signed with another key, spliced, sent to another collection, with another query, or
  minted for the pages, are refused;
- the pages (`/ui/...`) of the owner's flows, runs, alert rules and deliveries are 404s, its lists
  show nothing of the owner, and the pages' actions change nothing.

After each test, everything the owner reads in `prod` is byte-identical to before.
"""

from __future__ import annotations

import base64
import collections
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from fastapi.testclient import TestClient

from flowservice import catalog
from flowservice.api.app import create_app
from flowservice.domain.tenancy import Tenant as DomainTenant
from flowservice.services import identity
from flowservice.services.context import Services
from flowservice.services.paging import ContinuationTokens, Position
from flowservice.settings import Settings
from tests import factories
from tests.api import world as worlds
from tests.api.world import ALERTS, CATALOG, EXPORT, GLOBAL_KINDS, INSIGHTS, MAPPING_SETS, SCHEMAS, World
from tests.factories import BASE, XED, Tenant
from tests.ui.test_pages import csrf_of, sign_in

OUTSIDERS = ("other org", "other sandbox")
# How many checks each part made, per backend and outsider: the numbers in RELIABILITY.md.
CHECKED: collections.Counter[str] = collections.Counter()


@dataclass
class Cast:
    """The owner and one outsider, with what the owner read in `prod` before the test."""

    owner: World
    outsider: World
    before: dict[str, bytes]
    services: Services
    settings: Settings


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    """The totals of the module's checks (shown with `-s`): the numbers RELIABILITY.md quotes."""
    yield
    print(f"\nisolation matrix: {dict(sorted(CHECKED.items()))}, total {sum(CHECKED.values())}")


@pytest.fixture(scope="module")
def worlds_by_backend(
    engine_client: TestClient, engine_services: Services, engine_settings: Settings, s3_server: str
) -> dict[str, World]:
    """Org A with `prod` and `dev` both seeded, and org B seeded: once per backend."""
    owner = factories.new_tenant(engine_services, engine_client, sandboxes=("dev",))
    stranger = factories.new_tenant(engine_services, engine_client, sandboxes=("dev",))
    found = {}
    for name, tenant in (
        ("owner", owner),
        ("other org", stranger),
        ("other sandbox", owner.in_sandbox("dev")),
    ):
        found[name] = worlds.seed(
            engine_client, engine_settings, tenant, s3_server=s3_server, bucket=new_bucket(s3_server)
        )
    return found


@pytest.fixture(params=OUTSIDERS)
def cast(
    request: pytest.FixtureRequest,
    worlds_by_backend: dict[str, World],
    engine_client: TestClient,
    engine_services: Services,
    engine_settings: Settings,
) -> Iterator[Cast]:
    owner = worlds_by_backend["owner"]
    before = worlds.snapshot(engine_client, owner, sandboxes=("prod",))
    yield Cast(owner, worlds_by_backend[request.param], before, engine_services, engine_settings)
    after = worlds.snapshot(engine_client, owner, sandboxes=("prod",))
    assert worlds.changed(before, after) == [], "the outsider changed what the owner reads"


def new_bucket(s3_server: str) -> tuple[Any, str]:
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_server,
        aws_access_key_id="k",
        aws_secret_access_key="s",
        region_name="us-east-1",
    )
    name = f"iso-{factories.new_org_id()[:12].lower()}"
    s3.create_bucket(Bucket=name)
    return s3, name


def backend(settings: Settings) -> str:
    return "sqlite" if settings.database_url.startswith("sqlite") else "postgres"


# -- every route ----------------------------------------------------------------------------------


def bodies(owner: World) -> dict[tuple[str, str], Any]:
    """A body for each operation that takes one, naming the owner's resources wherever it can."""
    first = owner.first
    window = {"startTime": "1700000000", "windowStartTime": "0", "windowEndTime": "4000000000"}
    patch = [{"op": "replace", "path": "/name", "value": "hijacked"}]
    metrics = [
        {
            "name": name,
            "filters": [{"name": "dataSetId", "value": "|".join(owner.ids["dataSets"]), "groupBy": True}],
            "aggregator": "sum",
            "downsample": "sum",
        }
        for name in (
            "timeseries.ingestion.dataset.recordsuccess.count",
            "timeseries.ingestion.dataset.batchsuccess.count",
            "timeseries.ingestion.dataset.size",
        )
    ]
    return {
        # nothing of the owner's can be named: made in the outsider's own space
        ("post", f"{BASE}/connections"): factories.s3_connection(),
        ("post", SCHEMAS): factories.CUSTOMERS_SCHEMA,
        # references to the owner's resources
        ("post", f"{BASE}/sourceConnections"): factories.s3_source(first("connections")),
        ("post", f"{BASE}/targetConnections"): factories.target(first("dataSets")),
        ("post", f"{BASE}/flows"): factories.flow(
            owner.ids["sourceConnections"][1], first("targetConnections")
        ),
        ("post", f"{BASE}/runs"): {"flowId": first("flows"), "params": window},
        ("post", f"{CATALOG}/dataSets"): {
            "name": "x",
            "schemaRef": {"id": first("schemas"), "contentType": XED},
        },
        ("post", MAPPING_SETS): {
            "version": 0,
            "xdmSchema": first("schemas"),
            "xdmVersion": "1.0",
            "mappings": factories.IDENTITY_MAPPINGS,
        },
        ("post", f"{ALERTS}/rules"): {
            "name": "x",
            "kind": "runSuccess",
            "flowId": first("flows"),
            "webhook": {"url": worlds.WEBHOOK},
        },
        ("post", INSIGHTS): {
            "start": "2000-01-01T00:00:00Z",
            "end": "2100-01-01T00:00:00Z",
            "granularity": "month",
            "metrics": metrics,
        },
        # changes of the owner's resources
        **{("patch", f"{BASE}/{c}/{{resource_id}}"): patch for c in worlds.FLOW_SERVICE_COLLECTIONS},
        ("patch", f"{ALERTS}/rules/{{rule_id}}"): patch,
    }


QUERIES = {
    f"{BASE}/flows/{{flow_id}}/action": "op=disable",
    f"{BASE}/runs/{{run_id}}/action": "op=re-trigger",
    f"{ALERTS}/rules/{{rule_id}}/action": "op=disable",
    f"{EXPORT}/batches/{{batch_id}}/meta": "path=input_files",
    f"{EXPORT}/files/{{batch_id}}": "path=part-00000.parquet",
    f"{BASE}/connectionSpecs/{{spec_id}}/explore": "objectType=root",
}


def test_every_route_with_the_owners_ids_and_references(engine_client: TestClient, cast: Cast) -> None:
    client, owner, outsider = engine_client, cast.owner, cast.outsider
    document = client.get("/openapi.json").json()
    body_of = bodies(owner)
    headers = outsider.tenant.headers()
    owners = owner.private_ids()
    checked = 0
    for template, operations in document["paths"].items():
        if not template.startswith("/data/"):
            continue
        for method, operation in operations.items():
            names = re.findall(r"\{(\w+)\}", template)
            kinds = {name: worlds.kind_of(template, name) for name in names}
            for resource_id in _combinations(owner, kinds):
                url = template
                for name, value in resource_id.items():
                    url = url.replace("{" + name + "}", worlds.id_path(value))
                if template in QUERIES:
                    url += "?" + QUERIES[template]
                sent = dict(headers)
                if any(
                    p["in"] == "header" and p["name"] == "If-Match" for p in operation.get("parameters", [])
                ):
                    target = next(iter(resource_id.values()), "")
                    sent["If-Match"] = owner.etags.get(target, "*")
                if method in ("post", "patch", "put") and "requestBody" in operation:
                    assert (method, template) in body_of, (
                        f"add a body naming the owner's ids for {method} {template}"
                    )
                    answer = client.request(method, url, json=body_of[(method, template)], headers=sent)
                else:
                    answer = client.request(method, url, headers=sent)
                where = (method.upper(), url, answer.status_code, answer.text[:300])
                foreign = [k for k in kinds.values() if k not in GLOBAL_KINDS]
                if foreign:
                    assert answer.status_code == 404, where
                    assert answer.json()["type"].endswith("-404"), where
                elif (method, template) in body_of and template not in (
                    f"{BASE}/connections",
                    SCHEMAS,
                    INSIGHTS,
                ):
                    assert answer.status_code in (400, 404), where
                else:  # lists, specs (global: the same for everyone), creates in the outsider's own space
                    assert answer.status_code in (200, 201) or kinds, where
                    assert answer.status_code < 500, where
                if 200 <= answer.status_code < 300:
                    _assert_nothing_of(answer, owners, where)
                checked += 1
    CHECKED[f"{backend(cast.settings)} routes"] += checked
    print(f"\nroutes: {checked} requests with the owner's ids and references")


def _combinations(owner: World, kinds: dict[str, str]) -> list[dict[str, str]]:
    """Each of the owner's ids of the path's kind (a route without ids once)."""
    if not kinds:
        return [{}]
    [(name, kind)] = kinds.items()
    return [{name: resource_id} for resource_id in owner.ids[kind]]


def _assert_nothing_of(answer: Any, owners: set[str], where: Any) -> None:
    """No id of the owner in a success; for Insights (which echoes the ids asked) no data of theirs."""
    content: bytes = answer.content
    if b'"metricResponses"' in content:
        for metric in answer.json()["metricResponses"]:
            for point in metric["datapoints"]:
                assert not any(point["dps"].values()), (where, point)
        return
    leaked = [i for i in owners if i.encode() in content]
    assert not leaked, (where, leaked)


def test_own_resources_cannot_be_pointed_at_the_owners(engine_client: TestClient, cast: Cast) -> None:
    client, owner, mine = engine_client, cast.owner, cast.outsider
    headers = mine.tenant.headers()
    attempts = [
        (
            f"{BASE}/targetConnections/{mine.first('targetConnections')}",
            "/params/dataSetId",
            owner.first("dataSets"),
        ),
        (
            f"{BASE}/flows/{mine.first('flows')}",
            "/transformations/0/params/mappingId",
            owner.first("mappingSets"),
        ),
        (f"{ALERTS}/rules/{mine.first('alertRules')}", "/flowId", owner.first("flows")),
    ]
    for url, path, foreign in attempts:
        current = client.get(url, headers=headers).json()["items"][0]
        patch = [{"op": "replace" if path != "/flowId" else "add", "path": path, "value": foreign}]
        answer = client.patch(url, json=patch, headers={**headers, "If-Match": current["etag"]})
        assert answer.status_code == 400, (url, answer.text)
        assert client.get(url, headers=headers).json()["items"][0]["etag"] == current["etag"]
    CHECKED[f"{backend(cast.settings)} re-pointing"] += len(attempts)


def test_paths_cannot_climb_into_the_owners_files(engine_client: TestClient, cast: Cast) -> None:
    """The lake and the landing zone are folders per org and sandbox: no path may leave one's own."""
    client, owner, mine = engine_client, cast.owner, cast.outsider
    headers = mine.tenant.headers()
    up = "../" * 5  # from a batch folder to the lake's root
    owner_batch = (
        f"{owner.tenant.org_id}/prod/datasets/{owner.first('dataSets')}/batches/{owner.first('batches')}"
    )
    own_batch = mine.first("batches")
    climbs = [
        f"{up}{owner_batch}/part-00000.parquet",
        f"{up}{owner_batch}/input_files",
        f"/{owner_batch}/part-00000.parquet",
        f"..\\..\\..\\..\\..\\{owner_batch}\\input_files",
        f"%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/{owner_batch}/input_files",
    ]
    checked = 0
    for path in climbs:
        for url in (f"{EXPORT}/files/{own_batch}", f"{EXPORT}/batches/{own_batch}/meta"):
            answer = client.get(url, params={"path": path}, headers=headers)
            assert answer.status_code in (400, 404), (url, path, answer.status_code)
            checked += 1
    dlz = catalog.DATA_LANDING_ZONE
    for target in (
        f"../../{owner.tenant.org_id}/prod/{owner.zone_folder}",
        f"../{owner.tenant.org_id}/prod",
        f"/../../{owner.tenant.org_id}/prod/{owner.zone_folder}/a.csv",
    ):
        for object_type in ("folder", "file"):
            answer = client.get(
                f"{BASE}/connectionSpecs/{dlz}/explore",
                params={"objectType": object_type, "object": target},
                headers=headers,
            )
            assert answer.status_code in (400, 404), (target, answer.status_code, answer.text[:200])
            checked += 1
        source = factories.dlz_source(params={"path": target, "type": "folder"})
        answer = client.post(f"{BASE}/sourceConnections", json=source, headers=headers)
        assert answer.status_code == 400, (target, answer.text[:200])
        checked += 1
    CHECKED[f"{backend(cast.settings)} paths"] += checked
    print(f"\npaths: {checked} climbs refused")


# -- every list filter ----------------------------------------------------------------------------


def lists() -> dict[str, str]:
    """Each list of the API, by the kind of what it lists."""
    return {
        **{c: f"{BASE}/{c}" for c in worlds.FLOW_SERVICE_COLLECTIONS},
        "runs": f"{BASE}/runs",
        "connectionSpecs": f"{BASE}/connectionSpecs",
        "flowSpecs": f"{BASE}/flowSpecs",
        "alertRules": f"{ALERTS}/rules",
        "alertDeliveries": f"{ALERTS}/deliveries",
    }


def filters(owner: World, kind: str, sandbox_id: str) -> list[str]:
    """Every `property` that names the owner: tenancy fields, its ids, references, negations, ORs."""
    tenant = owner.tenant
    found = [
        f"imsOrgId=={tenant.org_id}",
        f'imsOrgId=="{tenant.org_id}"',
        f"imsOrgId={tenant.org_id}",
        f"imsOrgId!={factories.new_org_id()}",
        f"imsOrgId=={tenant.org_id},{factories.new_org_id()}",
        "imsOrgId",
        "!imsOrgId",
        "sandboxName==prod",
        "sandboxName!=dev",
        f"sandboxId=={sandbox_id}",
        f"createdClient=={tenant.client_id}",
        f"updatedClient=={tenant.client_id}",
        f"createdBy=={tenant.client_id}",
        f"flowId=={owner.first('flows')}",
        f"flowId=={','.join(owner.ids['flows'])}",
        f"baseConnectionId=={owner.first('connections')}",
        f"sourceConnectionIds[]=={owner.first('sourceConnections')}",
        f"targetConnectionIds[]=={owner.first('targetConnections')}",
        f"params.dataSetId=={owner.first('dataSets')}",
        f"ruleId=={owner.first('alertRules')}",
        f"runId=={owner.first('runs')}",
        "createdAt>0",
        "id",
    ]
    if kind not in GLOBAL_KINDS:
        found += [f"id=={i}" for i in owner.ids[kind]] + [f"id=={','.join(owner.ids[kind])}"]
    return found


def test_every_list_filter_shows_nothing_of_the_owner(engine_client: TestClient, cast: Cast) -> None:
    client, owner, outsider = engine_client, cast.owner, cast.outsider
    headers = outsider.tenant.headers()
    owners = owner.private_ids()
    sandbox_id = _sandbox_id(cast.services, owner.tenant)
    checked = 0
    for kind, url in lists().items():
        visible = _ids(client.get(f"{url}?limit=1000", headers=headers).json()["items"])
        assert visible and not visible & owners, (url, "the outsider's own list")
        for expression in filters(owner, kind, sandbox_id):
            for extra in ("limit=1000", "count=true", "limit=1000&orderby=-createdAt"):
                answer = client.get(f"{url}?property={quote(expression)}&{extra}", headers=headers)
                where = (url, expression, extra, answer.text[:300])
                assert answer.status_code == 200, where
                body = answer.json()
                if "count" in body:
                    assert body["count"] <= len(visible), where
                else:
                    found = _ids(body["items"])
                    assert found <= visible and not found & owners, where
                checked += 1
    # Catalog's own filters and the Insights metrics, asked about the owner's datasets
    for dataset_id in owner.ids["dataSets"]:
        answer = client.get(f"{CATALOG}/batches?dataSet={dataset_id}", headers=headers)
        assert answer.status_code == 200 and answer.json() == {}, answer.text
        checked += 1
    # `dataSet` is one id, not filter grammar: with a comma it names no dataset, not two
    own_batches = worlds.batches_of(client, outsider.tenant, outsider.first("dataSets"))
    assert own_batches, "the outsider's runs wrote batches"
    joined = f"{outsider.first('dataSets')},{owner.first('dataSets')}"
    for value in (joined, f"{outsider.first('dataSets')},imsOrgId!=x", f'"{outsider.first("dataSets")}"'):
        answer = client.get(f"{CATALOG}/batches", params={"dataSet": value}, headers=headers)
        assert answer.status_code == 200 and answer.json() == {}, (value, answer.text[:300])
        checked += 1
    for url in (SCHEMAS, f"{CATALOG}/dataSets?limit=100", f"{CATALOG}/batches?limit=100"):
        answer = client.get(url, headers=headers)
        assert answer.status_code == 200 and not [i for i in owners if i in answer.text], url
        checked += 1
    CHECKED[f"{backend(cast.settings)} filters"] += checked
    print(f"\nfilters: {checked} requests over {len(lists())} lists and Catalog")


def _ids(items: list[dict[str, Any]]) -> set[str]:
    return {str(item["id"]) for item in items}


def _sandbox_id(services: Services, tenant: Tenant) -> str:
    [sandbox] = [s for s in identity.list_sandboxes(services.db, tenant.org_id) if s.name == "prod"]
    return sandbox.id


# -- continuation tokens --------------------------------------------------------------------------


def test_continuation_tokens_are_bound_to_tenant_collection_and_query(
    engine_client: TestClient, cast: Cast
) -> None:
    client, owner, outsider = engine_client, cast.owner, cast.outsider
    mine, theirs = outsider.tenant.headers(), owner.tenant.headers()
    urls = {kind: url for kind, url in lists().items() if kind != "flowSpecs"}
    tokens = {kind: _token(client, url, theirs) for kind, url in urls.items()}
    filtered = f"property={quote('createdClient==' + owner.tenant.client_id)}"
    other_key = ContinuationTokens(b"another server's secret key, 32b")
    checked = 0

    def refused(url: str, headers: dict[str, str]) -> None:
        nonlocal checked
        answer = client.get(url, headers=headers)
        assert answer.status_code == 400, (url, answer.status_code, answer.text[:300])
        assert answer.json()["report"]["field"] == "continuationToken", answer.text
        checked += 1

    for kind, url in urls.items():
        token = tokens[kind]
        assert client.get(f"{url}?continuationToken={token}", headers=theirs).status_code == 200
        # the owner's own token, replayed by the outsider, alone or with the query it came from
        refused(f"{url}?continuationToken={token}", mine)
        refused(f"{url}?continuationToken={token}&limit=1", mine)
        # ... sent by the owner to every other list
        for other_kind, other_url in urls.items():
            if other_kind != kind:
                refused(f"{other_url}?continuationToken={token}", theirs)
        # a token of a filtered query, reused with another query (or the same query by the outsider)
        token_f = _token(client, f"{url}?{filtered}", theirs, required=False)
        if token_f:
            assert (
                client.get(f"{url}?continuationToken={token_f}&{filtered}", headers=theirs).status_code == 200
            )
            refused(f"{url}?continuationToken={token_f}&property=createdClient==x", theirs)
            refused(f"{url}?continuationToken={token_f}&orderby=-createdAt", theirs)
            refused(f"{url}?continuationToken={token_f}&{filtered}", mine)
        # edited, forged, spliced and truncated
        for forged in _forgeries(token, outsider.tenant, other_key, kind, tokens):
            refused(f"{url}?continuationToken={forged}", mine)
            refused(f"{url}?continuationToken={forged}", theirs)
        # the outsider's own token does not work for the owner either
        refused(f"{url}?continuationToken={_token(client, url, mine)}", theirs)
    # the pages' tokens (signed with the same key) are bound to their own lists
    server = ContinuationTokens(cast.settings.secret)
    ui_token = server.issue(
        _domain(cast, outsider.tenant), "ui/flows", Position(["status="], [], 50, [0, "x"])
    )
    refused(f"{BASE}/flows?continuationToken={ui_token}", mine)
    CHECKED[f"{backend(cast.settings)} tokens"] += checked
    print(f"\ntokens: {checked} refusals")


def _token(client: TestClient, url: str, headers: dict[str, str], *, required: bool = True) -> str:
    joiner = "&" if "?" in url else "?"
    answer = client.get(f"{url}{joiner}limit=1", headers=headers)
    assert answer.status_code == 200, answer.text
    href = answer.json()["_links"].get("next", {}).get("href", "")
    assert href or not required, (url, "needs a second page")
    return str(href.split("=", 1)[1]) if href else ""


def _forgeries(
    token: str, outsider: Tenant, other_key: ContinuationTokens, kind: str, tokens: dict[str, str]
) -> Iterator[str]:
    payload, _, mac = token.partition(".")
    raw = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    for change in (
        {"o": outsider.org_id, "t": outsider.sandbox},
        {"t": "dev" if raw["t"] == "prod" else "prod"},
        {"p": [*raw["p"], "id==x"]},
        {"l": 1000},
        {"k": [0, ""]},
    ):
        edited = json.dumps({**raw, **change}, separators=(",", ":"), sort_keys=True).encode()
        assert json.loads(edited) != raw, change
        yield base64.urlsafe_b64encode(edited).rstrip(b"=").decode() + "." + mac
    yield payload  # no signature
    yield payload + "."
    yield payload + "." + mac[:-4]
    other = next(t for k, t in tokens.items() if k != kind)
    yield payload + "." + other.partition(".")[2]  # another token's signature
    yield "." + mac
    yield "not-a-token"
    yield quote("é.é")
    forged = Position(raw["p"], raw["s"], raw["l"], raw["k"])
    yield other_key.issue(_tenant_of(outsider), raw["c"], forged)  # right shape, wrong key


def _tenant_of(tenant: Tenant) -> DomainTenant:
    """The outsider as a token names it (the sandbox id is not part of a token)."""
    return DomainTenant(tenant.org_id, tenant.sandbox, "unknown")


def _domain(cast: Cast, tenant: Tenant) -> DomainTenant:
    [sandbox] = [
        s for s in identity.list_sandboxes(cast.services.db, tenant.org_id) if s.name == tenant.sandbox
    ]
    return DomainTenant(tenant.org_id, sandbox.name, sandbox.id)


# -- the pages ------------------------------------------------------------------------------------


@pytest.fixture
def browser(engine_services: Services, engine_client: TestClient) -> Iterator[TestClient]:
    del engine_client  # its app runs the workers
    with TestClient(create_app(engine_services), follow_redirects=False) as found:
        yield found


def test_pages_of_the_owner_are_not_found(browser: TestClient, cast: Cast) -> None:
    owner, outsider = cast.owner, cast.outsider
    sign_in(browser, outsider.tenant, sandbox=outsider.tenant.sandbox)
    flow, run, rule, delivery = (owner.first(k) for k in ("flows", "runs", "alertRules", "alertDeliveries"))
    owners = owner.private_ids()
    checked = 0
    for url, asked in (
        (f"/ui/flows/{flow}", flow),
        (f"/ui/flows/{flow}?partial=1", flow),
        (f"/ui/flows/{flow}/confirm?action=run", flow),
        (f"/ui/flows/{flow}/confirm?action=disable", flow),
        (f"/ui/runs/{run}", run),
        (f"/ui/runs/{run}?partial=1", run),
        (f"/ui/runs/{run}/failed-records.jsonl", run),
        (f"/ui/runs/{run}/confirm-retry", run),
        (f"/ui/alerts/{rule}/confirm?action=disable", rule),
        (f"/ui/alerts/deliveries/{delivery}", delivery),
    ):
        answer = browser.get(url)
        assert answer.status_code == 404, (url, answer.status_code, answer.text[:300])
        assert "FLOW-1439-404" in answer.text, url
        assert not [i for i in owners - {asked} if i in answer.text], url  # the id asked may be echoed
        checked += 1
    for url in (
        "/ui/flows",
        "/ui/flows?partial=1",
        "/ui/alerts",
        "/ui/alerts/deliveries",
        f"/ui/alerts/deliveries?rule={rule}",
        f"/ui/alerts/deliveries?run={run}",
        f"/ui/alerts/deliveries?rule={rule}&run={run}&partial=1",
    ):
        answer = browser.get(url)
        assert answer.status_code == 200, (url, answer.text[:300])
        assert not [i for i in owners if i in answer.text.replace(rule, "").replace(run, "")], url
        checked += 1
    csrf = csrf_of(browser.get("/ui/flows").text)
    for url in (
        f"/ui/flows/{flow}/run",
        f"/ui/flows/{flow}/disable",
        f"/ui/flows/{flow}/enable",
        f"/ui/runs/{run}/retry",
        f"/ui/alerts/{rule}/disable",
        f"/ui/alerts/{rule}/delete",
    ):
        answer = browser.post(url, data={"csrf": csrf})
        assert answer.status_code in (303, 404), (url, answer.status_code)
        if answer.status_code == 303:  # the action's page answers with a notice, not a success
            assert "error=" in answer.headers["location"] and "FLOW-1439-404" in answer.headers["location"]
        checked += 1
    # the pages' tokens are bound to the tenant that got them
    server = ContinuationTokens(cast.settings.secret)
    bound = ["status=", "source=", "q=", "sort=-createdAt"]
    owners_page = server.issue(_domain(cast, owner.tenant), "ui/flows", Position(bound, [], 50, [0, "x"]))
    assert browser.get(f"/ui/flows?page={owners_page}").status_code == 400
    # and a session cannot switch to an org none of its credentials belongs to
    if owner.tenant.org_id != outsider.tenant.org_id:
        answer = browser.post(
            "/ui/switch", data={"csrf": csrf, "org": owner.tenant.org_id, "sandbox": "prod"}
        )
        assert answer.status_code == 303 and "error=" in answer.headers["location"]
        assert flow not in browser.get("/ui/flows").text
    checked += 2
    CHECKED[f"{backend(cast.settings)} pages"] += checked
    print(f"\npages: {checked} checks")
