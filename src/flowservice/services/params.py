"""Checking `params` objects against the JSON Schemas of the catalog (authSpec, sourceSpec, …).

jsonschema's own messages quote the offending value; for auth params that value may be a
password, so messages here are built from the schema and the path only, never the instance.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError

from flowservice.errors import InvalidRequest


@cache
def _validator(schema_json: str) -> Draft7Validator:
    return Draft7Validator(json.loads(schema_json))


def check(schema: dict[str, Any], value: Any, where: str, *, code: str = "1000") -> None:
    """Raise an InvalidRequest naming the first parameter of `value` (at `where`) that breaks `schema`."""
    validator = _validator(json.dumps(schema, sort_keys=True))
    errors = sorted(validator.iter_errors(value), key=lambda e: (len(e.absolute_path), list(e.absolute_path)))
    if errors:
        raise InvalidRequest(code, _message(errors[0], where), field=_field(errors[0], where))


def _field(error: ValidationError, where: str) -> str:
    return ".".join([where, *(str(p) for p in error.absolute_path)])


def _message(error: ValidationError, where: str) -> str:
    field = _field(error, where)
    rule, expected = error.validator, error.validator_value
    if rule == "required":
        present = set(error.instance) if isinstance(error.instance, dict) else set()
        missing = [name for name in expected if name not in present]
        return f"Missing required parameter '{missing[0] if missing else expected}' in {field}."
    if rule == "additionalProperties":
        allowed = set((error.schema.get("properties") or {}).keys())
        extra = sorted(set(error.instance) - allowed) if isinstance(error.instance, dict) else []
        known = ", ".join(sorted(allowed)) or "none"
        return f"Unknown parameter '{extra[0] if extra else '?'}' in {field}; known parameters: {known}."
    if rule == "type":
        return f"{field} must be of type {_plain(expected)}."
    if rule == "enum":
        return f"{field} must be one of {', '.join(map(str, expected))}."
    if rule in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        symbol = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}[
            str(rule)
        ]
        return f"{field} must be {symbol} {expected}."
    if rule in ("minLength", "maxLength"):
        return (
            f"{field} must be {'at least' if rule == 'minLength' else 'at most'} {expected} characters long."
        )
    if rule == "pattern":
        return f"{field} must match the pattern {expected}."
    return f"{field} does not satisfy '{rule}' of its schema."


def _plain(expected: Any) -> str:
    return " or ".join(expected) if isinstance(expected, list) else str(expected)
