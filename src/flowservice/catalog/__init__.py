"""The built-in connector catalog: connectionSpecs and flowSpecs with Adobe's ids, served from JSON files.

Specs are global (not tenant-owned) and read-only, so they are loaded once and shared.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"

DATA_LANDING_ZONE = "26f526f2-58f4-4712-961d-e41bf1ccc0e8"
AMAZON_S3 = "ecadc60c-7455-4d87-84dc-2a0e293d997b"
SFTP = "b7bf2577-4520-42c9-bae9-cad01560f7bc"
POSTGRESQL = "74a1c565-4e59-48d7-9d67-7c03b8a13137"
MYSQL = "26d738e0-8963-47ea-aadf-c60de735468a"
MARIADB = "3000eb99-cd47-43f3-827c-43caf170f015"
HTTP_API = "bc7b00d6-623a-4dfc-9fdb-f1240aeadaeb"
DATA_LAKE = "c604ff05-7f1a-43c0-8e18-33bf874cb11c"
CLOUD_STORAGE_TO_AEP = "9753525b-82c7-4dce-8a9b-5ccfce2b9876"
CRM_TO_AEP = "14518937-270c-4525-bdec-c2ba7cce3860"


@dataclass(frozen=True)
class Catalog:
    connection_specs: dict[str, dict[str, Any]] = field(default_factory=dict)
    flow_specs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def connection_spec(self, spec_id: str) -> dict[str, Any] | None:
        return self.connection_specs.get(spec_id)

    def flow_spec(self, spec_id: str) -> dict[str, Any] | None:
        return self.flow_specs.get(spec_id)

    def documents(self, kind: str) -> list[dict[str, Any]]:
        """Wire copies, in a stable order (by name, then id); callers may mutate them."""
        specs = self.connection_specs if kind == "connectionSpecs" else self.flow_specs
        return [copy.deepcopy(s) for s in sorted(specs.values(), key=lambda s: (s["name"], s["id"]))]


def auth_spec(connection_spec: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((a for a in connection_spec.get("authSpec") or [] if a.get("name") == name), None)


def secret_params(spec: dict[str, Any]) -> set[str]:
    """Parameters the schema marks `"format": "password"`: encrypted at rest, never returned."""
    properties = (spec.get("spec") or {}).get("properties") or {}
    return {
        name
        for name, prop in properties.items()
        if isinstance(prop, dict) and prop.get("format") == "password"
    }


def is_file_source(connection_spec: dict[str, Any]) -> bool:
    return (connection_spec.get("exploreSpec") or {}).get("name") == "FileSystem"


DUMMY = "d0000000-0000-4000-8000-00000000d0d0"


def with_test_connectors(base: Catalog) -> Catalog:
    """The catalog plus the dummy connector (engine tests; FLOWSERVICE_TEST_CONNECTORS=1)."""
    dummy = {
        "id": DUMMY,
        "name": "Dummy (tests)",
        "providerId": "0ed90a81-07f4-4586-8190-b40eccef1c5a",
        "version": "1.0",
        "authSpec": [{"name": "Dummy", "type": "Dummy", "spec": {"type": "object", "properties": {}}}],
        "sourceSpec": {
            "name": "Dummy",
            "type": "Dummy",
            "spec": {"type": "object", "properties": {"path": {"type": "string"}}},
        },
        "exploreSpec": {"name": "FileSystem", "type": "FileSystem"},
        "attributes": {"category": "Tests", "isSource": True},
    }
    flows = copy.deepcopy(base.flow_specs)
    flows[CLOUD_STORAGE_TO_AEP]["sourceConnectionSpecIds"].append(DUMMY)
    return Catalog({**base.connection_specs, DUMMY: dummy}, flows)


@cache
def load() -> Catalog:
    def read(folder: str) -> dict[str, dict[str, Any]]:
        specs = [json.loads(p.read_text()) for p in sorted((DATA / folder).glob("*.json"))]
        return {s["id"]: s for s in specs}

    return Catalog(read("connection_specs"), read("flow_specs"))
