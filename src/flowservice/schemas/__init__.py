"""Pydantic wire models of request bodies, shared by the API (parsing, OpenAPI) and the services.

They live outside `api/` because a PATCH is validated by re-reading the patched document with the
same model that validated the create: the services need them too, and must not import the API.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from flowservice.errors import BadRequest, InvalidRequest

M = TypeVar("M", bound=BaseModel)

# Fields whose presence on create has its own Adobe code rather than "unknown field".
CREATE_FIELD_CODES = {"state": ("1410", "`state` is not allowed in the create request.")}


class WireModel(BaseModel):
    """Request bodies: unknown fields are refused, so a typo is an error instead of a silent no-op."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def describe(errors: list[Any], prefix: str = "") -> InvalidRequest:
    """Turn pydantic's first error into an Adobe-coded error that names the field at fault."""
    for candidate in errors:  # a documented code beats a generic "missing field" listed before it
        where = [str(part) for part in candidate.get("loc", ()) if part != "body"]
        if candidate.get("type") == "extra_forbidden" and len(where) == 1 and where[0] in CREATE_FIELD_CODES:
            code, message = CREATE_FIELD_CODES[where[0]]
            return InvalidRequest(code, message, field=where[0])
    error = errors[0]
    loc = [str(part) for part in error.get("loc", ()) if part != "body"]
    field = prefix + ".".join(loc) if loc else prefix.rstrip(".")
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return BadRequest(f"Unknown field '{field}'.", field=field)
    if kind == "missing":
        return BadRequest(f"The field '{field}' is required.", field=field)
    if kind == "json_invalid":
        detail = (error.get("ctx") or {}).get("error", "")
        return BadRequest(f"The request body is not valid JSON: {detail}.".replace("..", "."))
    message = str(error.get("msg", "is invalid"))
    if field:
        return BadRequest(f"The field '{field}' is invalid: {message}.", field=field)
    return BadRequest(f"The request body is invalid: {message}.")


def validate(model: type[M], data: Any, prefix: str = "") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise describe(exc.errors(include_input=False), prefix) from None
