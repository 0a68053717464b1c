"""Schemathesis against our own `/openapi.json`: every operation, with good and with broken credentials.

Real clients generate code from the document, so it is a contract: each response must have a
documented status, content type and body schema (schemathesis' conformance checks), and none may
be a 5xx. The app runs in-process (schemathesis' ASGI transport) on the suite's engine database
(workers claim the runs the fuzzer starts), once per backend.

Two tenants are seeded with resources of every kind through the API and real runs (`world.py`):
the attacker, whose valid token the fuzzer uses, and the victim. Generated path parameters are
swapped, some of the time, for real ids of the attacker (so PATCH, DELETE, actions and exports
reach real rows) and of the victim (so every route is tried with an id of another org); likewise
`If-Match`, `property` filters, continuation tokens, `path` and `dataSet`. Afterwards everything the
victim can read is byte-identical to before, and no answer to the attacker ever held a victim id.

The bounded run (a fixed seed, `EXAMPLES` per operation and mode) is part of `make test`;
`make fuzz` runs the same test with `FLOWSERVICE_FUZZ_EXAMPLES=500`.
"""

from __future__ import annotations

import collections
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from flowservice.api.app import create_app
from flowservice.services.context import Services
from flowservice.settings import Settings
from tests import factories
from tests.api import world as worlds
from tests.api.world import GLOBAL_KINDS, World

EXAMPLES = int(os.environ.get("FLOWSERVICE_FUZZ_EXAMPLES", "6"))
SEED = int(os.environ.get("FLOWSERVICE_FUZZ_SEED", "20250611"))
BROKEN_EXAMPLES = max(2, EXAMPLES // 10)  # the gateway answers these before any route code runs
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
PAGED = {
    "connections": f"{factories.BASE}/connections",
    "sourceConnections": f"{factories.BASE}/sourceConnections",
    "targetConnections": f"{factories.BASE}/targetConnections",
    "flows": f"{factories.BASE}/flows",
    "runs": f"{factories.BASE}/runs",
    "alertRules": f"{worlds.ALERTS}/rules",
    "alertDeliveries": f"{worlds.ALERTS}/deliveries",
    "connectionSpecs": f"{factories.BASE}/connectionSpecs",
}


@dataclass(frozen=True)
class Credentials:
    """How a mode authenticates: headers set over the generated ones, and the one status expected."""

    name: str
    generation: GenerationMode
    headers: dict[str, str]
    drop: tuple[str, ...] = ()
    expect: int | None = None  # every /data/ answer must be this; None: anything documented
    examples: int = EXAMPLES


@dataclass
class Tally:
    """What the run did, for the assertions and for RELIABILITY.md."""

    requests: collections.Counter[str] = field(default_factory=collections.Counter)
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    per_operation: collections.Counter[str] = field(default_factory=collections.Counter)
    no_negative: set[str] = field(default_factory=set)  # operations no input of can break the schema
    failures: dict[tuple[str, str, str], str] = field(default_factory=dict)

    def fail(self, mode: str, label: str, what: str, detail: str) -> None:
        self.failures.setdefault((mode, label, what), detail)


@pytest.fixture
def attacker(engine_services: Services, engine_client: TestClient) -> factories.Tenant:
    return factories.new_tenant(engine_services, engine_client, sandboxes=("dev",))


@pytest.fixture
def victim(engine_services: Services, engine_client: TestClient) -> factories.Tenant:
    return factories.new_tenant(engine_services, engine_client, sandboxes=("dev",))


@pytest.fixture
def fuzz_app(engine_services: Services) -> Iterator[FastAPI]:
    """The app under fuzz: the suite's engine services (its workers run in `engine_client`'s app)."""
    app = create_app(engine_services)
    yield app
    asgi.shutdown_lifespans()


@pytest.mark.timeout(max(300, EXAMPLES * 30))  # `make fuzz` runs for many minutes per backend
def test_fuzz_every_operation(
    engine_client: TestClient,
    engine_settings: Settings,
    fuzz_app: FastAPI,
    attacker: factories.Tenant,
    victim: factories.Tenant,
    s3_server: str,
    bucket: tuple[Any, str],
    database_url: str,
) -> None:
    started = time.monotonic()
    seed = worlds.seed
    own = seed(engine_client, engine_settings, attacker, s3_server=s3_server, bucket=bucket)
    theirs = seed(engine_client, engine_settings, victim, s3_server=s3_server, bucket=bucket)
    before = worlds.snapshot(engine_client, theirs)
    seeded = time.monotonic()

    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    document = fuzz_app.openapi()
    good = attacker.headers()
    bad_token = good["Authorization"][:-6] + (
        "AAAAAA" if not good["Authorization"].endswith("AAAAAA") else "BBBBBB"
    )
    modes = [
        Credentials("valid", GenerationMode.POSITIVE, good),
        Credentials("valid, invalid input", GenerationMode.NEGATIVE, good),
        Credentials(
            "no token",
            GenerationMode.POSITIVE,
            good,
            drop=("authorization",),
            expect=403,
            examples=BROKEN_EXAMPLES,
        ),
        Credentials(
            "forged token",
            GenerationMode.POSITIVE,
            {**good, "Authorization": bad_token},
            expect=401,
            examples=BROKEN_EXAMPLES,
        ),
        Credentials(
            "other org",
            GenerationMode.POSITIVE,
            {**good, "x-gw-ims-org-id": victim.org_id},
            expect=401,
            examples=BROKEN_EXAMPLES,
        ),
        Credentials(
            "other api key",
            GenerationMode.POSITIVE,
            {**good, "x-api-key": victim.client_id},
            expect=403,
            examples=BROKEN_EXAMPLES,
        ),
    ]
    pools = Pools.of(engine_client, own, theirs)
    tally = Tally()
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"our document has an operation schemathesis cannot read: {result}"
        operation = result.ok()
        parameters = document["paths"][operation.path][operation.method.lower()].get("parameters", [])
        for mode in modes:
            if mode.expect is not None and not operation.path.startswith("/data/"):
                continue  # /healthz and the token endpoint take no credentials
            fuzz(operation, parameters, mode, pools, tally)

    after = worlds.snapshot(engine_client, theirs)
    elapsed = time.monotonic() - started
    operations = [(p, m) for p, ops in document["paths"].items() for m in ops]
    report = {
        "backend": "postgres" if database_url.startswith("postgresql") else "sqlite",
        "requests": sum(tally.requests.values()),
        "by_mode": dict(tally.requests),
        "operations": len(operations),
        "statuses": dict(sorted(tally.statuses.items())),
        "server_errors": sum(n for s, n in tally.statuses.items() if s >= 500),
        "cross_tenant_changes": len(worlds.changed(before, after)),
        "victim_urls_compared": len(before),
        "no_invalid_input": len(tally.no_negative),
        "seconds": {"seeding": round(seeded - started, 1), "total": round(elapsed, 1)},
    }
    print("\nfuzz report:", json.dumps(report))
    assert not tally.failures, "\n\n".join(
        f"[{mode}] {label}: {what}\n{detail}"
        for (mode, label, what), detail in sorted(tally.failures.items())
    )
    assert {f"{m.upper()} {p}" for p, m in operations} <= set(tally.per_operation), (
        "an operation was not fuzzed"
    )
    assert worlds.changed(before, after) == []
    assert report["server_errors"] == 0


@dataclass
class Pools:
    """Real values to put where the fuzzer would guess: the attacker's own and the victim's."""

    own: World
    theirs: World
    tokens: dict[str, list[str]]  # "own"/"theirs" → continuation tokens of every paged list
    filters: list[str]  # `property` filters naming the victim

    @classmethod
    def of(cls, client: TestClient, own: World, theirs: World) -> Pools:
        tokens: dict[str, list[str]] = {"own": [], "theirs": []}
        for name, who in (("own", own), ("theirs", theirs)):
            for url in PAGED.values():
                page = client.get(f"{url}?limit=1", headers=who.tenant.headers())
                href = page.json()["_links"].get("next", {}).get("href", "")
                assert href, (url, page.text)
                tokens[name].append(href.split("=", 1)[1])
        victim = theirs.tenant
        filters = [
            f"imsOrgId=={victim.org_id}",
            "sandboxName==prod",
            f"createdClient=={victim.client_id}",
            f"flowId=={theirs.first('flows')}",
            f"ruleId=={theirs.first('alertRules')}",
            f"baseConnectionId=={theirs.first('connections')}",
            f"imsOrgId!={own.tenant.org_id}",
            *(f"id=={ids[0]}" for kind, ids in theirs.ids.items() if kind not in GLOBAL_KINDS),
        ]
        return cls(own, theirs, tokens, filters)


def fuzz(
    operation: Any, parameters: list[dict[str, Any]], mode: Credentials, pools: Pools, tally: Tally
) -> None:
    """One operation in one mode: `mode.examples` generated requests, every answer checked."""
    label = f"{operation.method.upper()} {operation.path}"
    path_names = [p["name"] for p in parameters if p["in"] == "path"]
    query_names = {p["name"] for p in parameters if p["in"] == "query"}
    has_if_match = any(p["in"] == "header" and p["name"].lower() == "if-match" for p in parameters)
    victim_ids = pools.theirs.private_ids()

    @hypothesis.seed(SEED)
    @hypothesis.settings(
        max_examples=mode.examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        derandomize=False,
    )
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode.generation), data=st.data())
    def run(case: Any, data: st.DataObject) -> None:
        trespass = swap_in_real_values(
            case, data, operation.path, path_names, query_names, has_if_match, pools
        )
        case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() not in mode.drop}
        headers = {k: v for k, v in mode.headers.items() if k.lower() not in mode.drop}
        if mode.generation is GenerationMode.POSITIVE or "x-sandbox-name" not in case.headers:
            headers["x-sandbox-name"] = data.draw(st.sampled_from(["prod", "prod", "prod", "dev"]))
        response = case.call(headers=headers)
        status = response.status_code
        tally.requests[mode.name] += 1
        tally.statuses[status] += 1
        tally.per_operation[label] += 1
        curl = case.as_curl_command(headers=headers)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as group:
            for failure in group.exceptions:
                tally.fail(mode.name, label, failure.title, f"{status} {shown(response)}\n{curl}")
        if mode.expect is not None and status != mode.expect:
            tally.fail(
                mode.name, label, f"answered {status}, not {mode.expect}", f"{shown(response)}\n{curl}"
            )
        if trespass and 200 <= status < 300:
            tally.fail(
                mode.name,
                label,
                f"a victim's {trespass} was accepted ({status})",
                f"{shown(response)}\n{curl}",
            )
        if 200 <= status < 300 and mode.expect is None:
            leaked = leaked_ids(response, victim_ids)
            if leaked:
                tally.fail(mode.name, label, "an answer held victim ids", f"{sorted(leaked)[:3]}\n{curl}")

    try:
        run()
    except Unsatisfiable:
        tally.no_negative.add(label)  # e.g. a lone string path parameter: any text is valid


def swap_in_real_values(
    case: Any,
    data: st.DataObject,
    template: str,
    path_names: list[str],
    query_names: set[str],
    has_if_match: bool,
    pools: Pools,
) -> str:
    """Replace some generated values by real ones; what of the victim's was used, or ""."""
    trespass = ""
    whose = st.sampled_from(["generated", "own", "theirs"])
    for name in path_names:
        kind = worlds.kind_of(template, name)
        pick = data.draw(whose, label=name)
        if pick != "generated":
            world = pools.own if pick == "own" else pools.theirs
            case.path_parameters = {
                **(case.path_parameters or {}),
                name: data.draw(st.sampled_from(world.ids[kind])),
            }
            if pick == "theirs" and kind not in GLOBAL_KINDS:
                trespass = f"{kind} id in the path"
    query = dict(case.query or {})
    if "continuationToken" in query_names and data.draw(st.booleans(), label="token"):
        pick = data.draw(st.sampled_from(["own", "theirs"]))
        query["continuationToken"] = data.draw(st.sampled_from(pools.tokens[pick]))
        if pick == "theirs":
            trespass = trespass or "continuation token"
    if "property" in query_names and data.draw(st.booleans(), label="property"):
        query["property"] = [data.draw(st.sampled_from(pools.filters))]
    if "path" in query_names and data.draw(st.booleans(), label="path"):
        query["path"] = data.draw(st.sampled_from(pools.own.batch_paths))
    if "dataSet" in query_names and data.draw(st.booleans(), label="dataSet"):
        query["dataSet"] = data.draw(
            st.sampled_from(pools.own.ids["dataSets"] + pools.theirs.ids["dataSets"])
        )
    case.query = query
    if has_if_match and data.draw(st.booleans(), label="If-Match"):
        etags = ["*", *pools.own.etags.values(), *pools.theirs.etags.values()]
        case.headers = {**(case.headers or {}), "If-Match": data.draw(st.sampled_from(etags))}
    return trespass


def shown(response: Any) -> str:
    """The start of a body for a failure report (exports answer Parquet bytes)."""
    content: bytes = response.content
    return content[:400].decode("utf-8", errors="replace")


def leaked_ids(response: Any, victim_ids: set[str]) -> set[str]:
    """Victim ids in a success body, and victim data behind them.

    The Insights answer echoes the dataset ids it was asked about (as Adobe's does), so there an id
    is no leak, but any non-zero datapoint for a victim's dataset is.
    """
    content: bytes = response.content
    if b'"metricResponses"' not in content:
        return {i for i in victim_ids if i.encode() in content}
    leaked: set[str] = set()
    for metric in response.json().get("metricResponses", []):
        asked = {str(v) for f in metric.pop("filters", []) for v in (f.get("value") or "").split("|")}
        for point in metric.get("datapoints", []):
            group = point.pop("groupBy", {}) or {}
            named = set(group.values()) or asked
            if named and named <= victim_ids and any(point.get("dps", {}).values()):
                leaked |= named
        leaked |= {i for i in victim_ids if i in json.dumps(metric)}
    return leaked


def test_the_document_lists_what_the_gateway_and_error_table_answer(client: TestClient) -> None:
    """Regression for what the first fuzzing found: the document promised 422s and hid every
    4xx the gateway and the error table give (schemathesis' status and schema conformance)."""
    document = client.get("/openapi.json").json()
    assert {"bearer", "apiKey", "imsOrg"} <= set(document["components"]["securitySchemes"])
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for template, operations in document["paths"].items():
        for method, operation in operations.items():
            assert "422" not in operation["responses"], (method, template)
            if template.startswith("/data/"):
                assert {"400", "401", "403", "404", "500"} <= set(operation["responses"]), (method, template)
                assert operation["security"], (method, template)
    runs = document["paths"][f"{factories.BASE}/runs"]
    assert runs["get"]["responses"]["200"]["content"]["application/json"]["schema"]["anyOf"]
    patch = document["paths"][f"{factories.BASE}/flows/{{resource_id}}"]["patch"]
    assert {"412", "413"} <= set(patch["responses"])
    page = document["components"]["schemas"]["ListPage"]
    assert set(page["required"]) == {"items", "_links"}  # `_links` was a private attribute, not a field


@pytest.mark.parametrize(
    "body",
    [b'{"start": "\xff"}', b"[" * 100_000, b"\xfe\xff"],
    ids=["not UTF-8", "nested too deeply", "a byte-order mark alone"],
)
def test_insights_refuses_unreadable_bodies_in_its_own_shape(
    client: TestClient, tenant: factories.Tenant, body: bytes
) -> None:
    """Regression (found by the fuzzer): bytes json.loads cannot finish made FastAPI raise its
    "error parsing the body" 400, which the app's table answered in the Flow Service shape."""
    answer = client.post(
        worlds.INSIGHTS, content=body, headers=tenant.headers(**{"content-type": "application/json"})
    )
    assert answer.status_code == 400
    error = answer.json()
    assert (
        error["type"].endswith("INSGHT-1000-400")
        and error["report"]["tenantInfo"]["imsOrgId"] == tenant.org_id
    )
    assert "error-chain" in error


def test_a_dataset_id_is_not_list_grammar(client: TestClient, tenant: factories.Tenant) -> None:
    """Regression: `GET /batches?dataSet=` was parsed as a `property` filter, so `A,B` meant A or B
    and a quote or an operator in it was a grammar error; it is one id, compared as given."""
    for value in ("a,b", 'x",imsOrgId!=y', "~x", "!", "x,"):
        answer = client.get(f"{worlds.CATALOG}/batches", params={"dataSet": value}, headers=tenant.headers())
        assert answer.status_code == 200 and answer.json() == {}, (value, answer.text)
