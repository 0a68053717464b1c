"""The list grammar at the HTTP edge: the same parameters, tokens and envelope on every list endpoint."""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated, Any

from fastapi import Depends, Query, Request, Response

from flowservice.domain.query import ListQuery, parse_list_query
from flowservice.domain.tenancy import Tenant
from flowservice.errors import InvalidRequest
from flowservice.services.paging import ContinuationTokens, Position


def _list_params(
    request: Request,
    property: Annotated[
        list[str] | None,
        Query(description="Filter, e.g. `flowId==ID`, `metrics.statusSummary.status==failed`; repeat to AND"),
    ] = None,
    orderby: Annotated[str | None, Query(description="`+field`, `-field` or `field`")] = None,
    limit: Annotated[str | None, Query(description="Page size, 1-1000 (default 100)")] = None,
    continuationToken: Annotated[str | None, Query(description="From `_links.next.href`")] = None,
    count: Annotated[str | None, Query(description='`true` answers `{"count": N}` only')] = None,
) -> list[tuple[str, str]]:
    """Declared for the OpenAPI document; parsed by `domain.query` from the raw, ordered parameters."""
    del property, orderby, limit, continuationToken, count
    return request.query_params.multi_items()


ListParams = Annotated[list[tuple[str, str]], Depends(_list_params)]


def read(
    params: list[tuple[str, str]], tokens: ContinuationTokens, tenant: Tenant, collection: str
) -> tuple[ListQuery, list[Any] | None]:
    """The query to run and, for a continuation, the sort key to start after.

    A token alone carries its whole query; clients such as aepp send it together with the
    original parameters, which must then be the same ones.
    """
    query = parse_list_query(params)
    if query.continuation is None:
        return query, None
    position = tokens.read(query.continuation, tenant, collection)
    if query.shapes_results and (list(query.raw_properties), list(query.raw_orderby)) != (
        position.properties,
        position.orderby,
    ):
        raise InvalidRequest(
            "1000",
            "The continuationToken was issued for other property or orderby parameters; "
            "send it alone or with the parameters of the first page.",
            field="continuationToken",
        )
    original = parse_list_query(
        [("property", p) for p in position.properties] + [("orderby", o) for o in position.orderby]
    )
    limit = query.limit if any(name == "limit" for name, _ in params) else position.limit
    return dataclasses.replace(original, limit=limit, count=query.count), position.after


def json_envelope(
    documents: list[str],
    following: list[Any] | None,
    query: ListQuery,
    tokens: ContinuationTokens,
    tenant: Tenant,
    collection: str,
) -> Response:
    """`envelope()` for documents that are already JSON text: spliced, never decoded and re-encoded."""
    links = envelope([], following, query, tokens, tenant, collection)["_links"]
    body = '{"items":[' + ",".join(documents) + '],"_links":' + json.dumps(links) + "}"
    return Response(content=body.encode(), media_type="application/json")


def envelope(
    items: list[dict[str, Any]],
    following: list[Any] | None,
    query: ListQuery,
    tokens: ContinuationTokens,
    tenant: Tenant,
    collection: str,
) -> dict[str, Any]:
    token = None
    if following is not None:
        position = Position(list(query.raw_properties), list(query.raw_orderby), query.limit, following)
        token = tokens.issue(tenant, collection, position)
    return {"items": items, "_links": next_link(collection, token)}


def next_link(collection: str, token: str | None) -> dict[str, Any]:
    """`_links` as aepp parses it: `href.split("=")[1]` must be the token."""
    return {"next": {"href": f"/{collection}?continuationToken={token}"}} if token else {}
