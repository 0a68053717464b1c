"""The layering of docs/architecture.md holds by itself: api|ui|cli → services → store|engine → domain."""

from __future__ import annotations

import ast
from pathlib import Path

import flowservice

ROOT = Path(flowservice.__file__).parent

# package -> imports it must never make (prefix match on module names)
FORBIDDEN = {
    "flowservice.domain": (
        "fastapi",
        "starlette",
        "sqlalchemy",
        "pyarrow",
        "flowservice.store",
        "flowservice.services",
        "flowservice.api",
        "flowservice.engine",
        "flowservice.connectors",
    ),
    "flowservice.store": (
        "fastapi",
        "starlette",
        "flowservice.services",
        "flowservice.api",
        "flowservice.cli",
    ),
    "flowservice.services": ("fastapi", "starlette", "flowservice.api", "flowservice.cli", "flowservice.ui"),
    "flowservice.schemas": (
        "fastapi",
        "sqlalchemy",
        "flowservice.store",
        "flowservice.services",
        "flowservice.api",
    ),
    "flowservice.catalog": (
        "fastapi",
        "sqlalchemy",
        "flowservice.store",
        "flowservice.services",
        "flowservice.api",
    ),
    "flowservice.connectors": ("fastapi", "flowservice.api", "flowservice.services", "flowservice.store"),
    # the pages use the services, as the API does, and never the API's own modules or the store
    "flowservice.ui": ("flowservice.api", "flowservice.cli", "flowservice.store"),
    # the scheduler and the workers drive services; they never reach past them or into the API
    "flowservice.scheduler": (
        "fastapi",
        "starlette",
        "flowservice.api",
        "flowservice.cli",
        "flowservice.store",
    ),
    "flowservice.workers": (
        "fastapi",
        "starlette",
        "flowservice.api",
        "flowservice.cli",
        "flowservice.store",
    ),
}
# Only the store talks SQL; services may name the Session type they hand to repositories.
SQLALCHEMY_ALLOWED = ("flowservice.store",)
SESSION_TYPE = "sqlalchemy.orm.Session"


def modules() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        name = "flowservice." + ".".join(path.relative_to(ROOT).with_suffix("").parts)
        name = name.removesuffix(".__init__")
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module)
                imported |= {f"{node.module}.{alias.name}" for alias in node.names}
        found[name] = imported
    return found


def test_import_directions() -> None:
    violations = [
        f"{module} imports {target}"
        for module, imported in modules().items()
        for package, forbidden in FORBIDDEN.items()
        if module == package or module.startswith(package + ".")
        for target in imported
        if any(target == f or target.startswith(f + ".") for f in forbidden)
    ]
    assert violations == []


def test_only_the_store_imports_sqlalchemy() -> None:
    offenders = [
        f"{module} imports {target}"
        for module, imported in modules().items()
        if not module.startswith(SQLALCHEMY_ALLOWED)
        for target in imported
        if (target == "sqlalchemy" or target.startswith("sqlalchemy."))
        and not (module.startswith("flowservice.services") and target in (SESSION_TYPE, "sqlalchemy.orm"))
    ]
    assert offenders == []
