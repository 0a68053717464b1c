"""The sample dataflow `make run` creates once, so a newcomer sees a finished run with real metrics.

Three generated CSV files land in the development org's Data Landing Zone (a few rows are
deliberately bad); a schema, dataset, mapping set, source and target connections and a
`once` flow are made through the same services the API uses, and one run is triggered.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

from flowservice import catalog as specs
from flowservice.domain.tenancy import DEFAULT_SANDBOX, Caller, Tenant
from flowservice.schemas.resources import FlowCreate, SourceConnectionCreate, TargetConnectionCreate
from flowservice.services import catalog, dataprep, identity, resources
from flowservice.services.context import Services
from flowservice.services.flows import KIND as FLOWS
from flowservice.services.source_connections import KIND as SOURCES
from flowservice.services.target_connections import KIND as TARGETS

MARKER = "demo-created"
FILES = 3
ROWS = 400

SCHEMA = {
    "title": "Demo customers",
    "type": "object",
    "properties": {
        "customerId": {"type": "integer"},
        "name": {"type": "string", "maxLength": 100},
        "email": {"type": "string", "format": "email"},
        "signupDate": {"type": "string", "format": "date"},
        "lifetimeValue": {"type": "number", "minimum": 0},
        "active": {"type": "boolean"},
    },
    "required": ["customerId", "email"],
}

MAPPINGS = [
    {"sourceType": "ATTRIBUTE", "source": "id", "destination": "customerId"},
    {"sourceType": "EXPRESSION", "source": "trim(concat(first_name, ' ', last_name))", "destination": "name"},
    {"sourceType": "EXPRESSION", "source": "lower(email)", "destination": "email"},
    {"sourceType": "ATTRIBUTE", "source": "signup", "destination": "signupDate"},
    {"sourceType": "ATTRIBUTE", "source": "ltv", "destination": "lifetimeValue"},
    {"sourceType": "ATTRIBUTE", "source": "active", "destination": "active"},
]


def ensure_demo(services: Services, org_id: str, client_id: str) -> str | None:
    """Create the sample dataflow, once per home; its id when created now."""
    marker = services.settings.home / MARKER
    if marker.exists():
        return None
    [sandbox] = [s for s in identity.list_sandboxes(services.db, org_id) if s.name == DEFAULT_SANDBOX]
    tenant = Tenant(org_id, sandbox.name, sandbox.id)
    caller = Caller(tenant, client_id)
    zone = services.settings.landing_zone / org_id / sandbox.name / "demo"
    write_sample_files(zone)
    schema = catalog.create_schema(services, caller, SCHEMA)
    dataset_id = catalog.create_dataset(
        services,
        caller,
        {"name": "Demo customers", "schemaRef": {"id": schema["$id"], "contentType": catalog.XED_FULL}},
    )
    mapping = dataprep.create_mapping_set(
        services,
        caller,
        {"version": 0, "xdmSchema": schema["$id"], "xdmVersion": "1.0", "mappings": MAPPINGS},
    )
    source = resources.create(
        services,
        caller,
        SOURCES,
        SourceConnectionCreate.model_validate(
            {
                "name": "Demo files in the landing zone",
                "data": {"format": "delimited"},
                "params": {"path": "demo", "type": "folder"},
                "connectionSpec": {"id": specs.DATA_LANDING_ZONE, "version": "1.0"},
            }
        ),
    )
    target = resources.create(
        services,
        caller,
        TARGETS,
        TargetConnectionCreate.model_validate(
            {
                "name": "Demo customers dataset",
                "data": {
                    "format": "parquet_xdm",
                    "schema": {"id": schema["$id"], "version": catalog.XED_FULL},
                },
                "params": {"dataSetId": dataset_id},
                "connectionSpec": {"id": specs.DATA_LAKE, "version": "1.0"},
            }
        ),
    )
    # a flow scheduled once, a second from now: the scheduler starts its run (over every file so far)
    now_s = services.clock.now_ms() // 1000 + 1
    flow = resources.create(
        services,
        caller,
        FLOWS,
        FlowCreate.model_validate(
            {
                "name": "Demo: customers from the landing zone",
                "flowSpec": {"id": specs.CLOUD_STORAGE_TO_AEP, "version": "1.0"},
                "sourceConnectionIds": [source.id],
                "targetConnectionIds": [target.id],
                "transformations": [
                    {"name": "Mapping", "params": {"mappingId": mapping["id"], "mappingVersion": 0}}
                ],
                "scheduleParams": {"startTime": str(now_s), "frequency": "once"},
                "options": {"partialIngestionPercent": 10, "errorDiagnosticsEnabled": True},
            }
        ),
    )
    marker.write_text(flow.id)
    return flow.id


def write_sample_files(folder: Path, files: int = FILES, rows: int = ROWS, seed: int = 42) -> None:
    """Customers with a few broken rows: a missing email, a negative value, a date that does not exist."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    first = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Margaret", "Linus"]
    last = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Hamilton", "Torvalds"]
    for index in range(files):
        path = folder / f"customers-{index + 1}.csv"
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "first_name", "last_name", "email", "signup", "ltv", "active"])
            for row in range(rows):
                customer = index * rows + row + 1
                f, la = rng.choice(first), rng.choice(last)
                email = f"{f}.{la}{customer}@Example.com"
                signup = f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
                value = f"{rng.uniform(0, 5000):.2f}"
                if row % 97 == 13:
                    email = ""
                if row % 131 == 7:
                    value = "-12.50"
                if row % 151 == 3:
                    signup = "2026-02-30"
                writer.writerow([customer, f, la, email, signup, value, rng.choice(["true", "false"])])
        tmp.replace(path)
