"""JSON Patch (RFC 6902) as Adobe's Flow Service accepts it.

Adobe takes one operation object or an array of them, spells ops in any case (`"Add"` from aepp,
`"REPLACE"` from the spec), supports only add/replace/remove, and lets a client change only
some fields of each resource. The library does the pointer arithmetic; this module owns the
rules and the error codes, and never echoes document content in a message (it may hold secrets).
"""

from __future__ import annotations

import copy
from collections.abc import Collection
from typing import Any

import jsonpatch
import jsonpointer

from flowservice.errors import InvalidRequest

SUPPORTED_OPS = ("add", "replace", "remove")


def normalize_ops(body: Any) -> list[dict[str, Any]]:
    """Validate the shape of a patch body and return its operations with lower-case `op`."""
    if body is None or body == [] or body == {}:
        raise InvalidRequest("1405", "The request body cannot be null or empty.")
    items = body if isinstance(body, list) else [body]
    ops: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        where = f"[{index}]"
        if not isinstance(item, dict):
            raise InvalidRequest("1000", f"Patch operation {where} must be an object.", field=where)
        unknown = set(item) - {"op", "path", "value", "from"}
        if unknown:
            name = sorted(unknown)[0]
            raise InvalidRequest("1000", f"Unknown field '{name}' in patch operation {where}.", field=name)
        op = item.get("op")
        if not isinstance(op, str):
            raise InvalidRequest("1000", f"Patch operation {where} needs a string 'op'.", field="op")
        if op.lower() not in SUPPORTED_OPS:
            raise InvalidRequest("1434", f"Unsupported operation '{op}'.", field="op")
        path = item.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            raise InvalidRequest(
                "1365",
                f"Patch operation {where} needs a 'path' that is a JSON pointer such as /name.",
                field="path",
            )
        if op.lower() in ("add", "replace") and "value" not in item:
            raise InvalidRequest(
                "1000", f"Patch operation {where} ({op} {path}) needs a 'value'.", field="value"
            )
        normalized = {"op": op.lower(), "path": path}
        if "value" in item and op.lower() != "remove":
            normalized["value"] = item["value"]
        ops.append(normalized)
    return ops


def apply(document: dict[str, Any], ops: list[dict[str, Any]], allowed: Collection[str]) -> dict[str, Any]:
    """Apply normalized `ops` to a copy of `document`; `allowed` lists the top-level fields a client may change."""
    for op in ops:
        top = _top_field(op["path"])
        if top not in allowed:
            raise InvalidRequest(
                "1365",
                f"The path '{op['path']}' cannot be changed; changeable fields are "
                + ", ".join(f"/{name}" for name in sorted(allowed))
                + ".",
                field=op["path"],
            )
    result: Any = copy.deepcopy(document)
    for op in ops:  # one at a time, so an error names the operation that failed
        try:
            result = jsonpatch.apply_patch(result, [op], in_place=True)
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException):
            missing = op["path"].rsplit("/", 1)[-1]
            raise InvalidRequest(
                "1455",
                f'The patch could not be applied at {op["path"]}: Missing field "{missing}".',
                field=op["path"],
            ) from None
    if not isinstance(result, dict):
        raise InvalidRequest("1365", "A patch cannot replace the whole resource.")
    return result


def _top_field(path: str) -> str:
    first = path.split("/")[1] if path.count("/") >= 1 else ""
    return first.replace("~1", "/").replace("~0", "~")
