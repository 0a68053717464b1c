"""Domain errors, raised below the API and turned into Adobe's error bodies in one place (api/errors.py).

Adobe's codes are part of the contract (`FLOW-{code}-{status}`), so the errors carry them; the
HTTP layer only formats. Every message names the field or value at fault.

Codes used (digest 4.2, 5.1-5.3, 6.3): 1000 bad request, 1307 target spec not Data Lake,
1317 schedule missing, 1325 dataSetId missing, 1332 base connection not allowed, 1360-1366 and
1397 schedule rules, 1365 bad patch path, 1367 delta column missing, 1401 limit with count,
1403 If-Match missing, 1404 version mismatch (412), 1405 empty body, 1410 state on create,
1413 bad spec id, 1414 spec not patchable, 1415 auth spec not found, 1418 connection in use,
1422 action not allowed in state, 1434 unsupported patch op, 1439 not found (404),
1447 referenced by flows, 1451 unknown query parameter, 1455 patch target missing,
2100 sandbox not found (404).
"""

from __future__ import annotations

from typing import Any


class FlowServiceError(Exception):
    """An error with an Adobe code; the HTTP status is the code's last segment."""

    service = "FLOW"

    def __init__(
        self,
        code: str,
        status: int,
        title: str,
        message: str,
        *,
        report: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.title = title
        self.message = message
        self.report = report or {}
        self.headers = headers or {}

    @property
    def error_type(self) -> str:
        return f"{self.service}-{self.code}-{self.status}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.error_type!r}, {self.message!r})"


class InvalidRequest(FlowServiceError):
    def __init__(self, code: str, message: str, *, field: str | None = None) -> None:
        report = {"field": field} if field else None
        super().__init__(code, 400, "Invalid request", message, report=report)
        self.field = field


class BadRequest(InvalidRequest):
    """Generic malformed input (wrong type, unknown field, malformed JSON)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__("1000", message, field=field)


class NotFound(FlowServiceError):
    """Unknown id, or an id of another tenant: both look the same, as on Adobe (404, not 403)."""

    def __init__(self, collection: str, resource_id: str) -> None:
        message = (
            f"The requested {collection} resource {resource_id} is not found. "
            "Verify the resource ID before trying again."
        )
        super().__init__(
            "1439", 404, "Resource not found", message, report={"id": resource_id, "type": collection}
        )
        self.collection = collection
        self.resource_id = resource_id


class SandboxNotFound(FlowServiceError):
    def __init__(self, name: str) -> None:
        super().__init__(
            "2100", 404, "Sandbox not found", f"The sandbox with the name '{name}' could not be found."
        )


class VersionMismatch(FlowServiceError):
    def __init__(self, supplied: str, entity_id: str) -> None:
        super().__init__(
            "1404",
            412,
            "Version not matching",
            f"The supplied version '{supplied}' does not match the current version on entity {entity_id}.",
        )


class PayloadTooLarge(FlowServiceError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            "1006", 413, "Payload too large", f"The request body exceeds the limit of {limit} bytes."
        )


class GatewayError(Exception):
    """Header and token failures answered by Adobe's gateway as `{"error_code", "message"}`."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message

    @property
    def status(self) -> int:
        # Adobe's convention: the HTTP status is the first three digits of the code.
        return int(self.error_code[:3])


class Transient(Exception):
    """Marks an error worth retrying (the source was unreachable, a lease was lost)."""


class Terminal(Exception):
    """Marks an error that a retry cannot fix (bad credentials, schema mismatch)."""


def shown(value: object, limit: int = 80) -> str:
    """A value as it may appear in an error message: repr, cut short so a huge input cannot flood a log."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
