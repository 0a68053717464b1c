"""Base connections: auth checked against the connection spec's authSpec, secrets sealed at rest."""

from __future__ import annotations

import uuid
from typing import Any

from flowservice import catalog, egress
from flowservice.errors import InvalidRequest
from flowservice.schemas.resources import ConnectionCreate
from flowservice.services import params
from flowservice.services.resources import Prepared, Work
from flowservice.store.repos import resources as repos
from flowservice.store.tables import Connection


class ConnectionKind:
    collection = "connections"
    model = Connection
    create_model = ConnectionCreate
    patchable = frozenset({"name", "description", "auth"})
    record_ops = False  # ops may carry secret values, and lastOperation is returned to clients

    def prepare(self, work: Work, body: ConnectionCreate, previous: Connection | None) -> Prepared:
        spec = work.services.catalog.connection_spec(body.connectionSpec.id)
        if spec is None:
            raise InvalidRequest(
                "1413",
                f"The spec ID provided is invalid: '{body.connectionSpec.id}'.",
                field="connectionSpec.id",
            )
        if previous is not None and previous.spec_id != spec["id"]:
            raise InvalidRequest(
                "1414", "The connection spec of a connection cannot be changed.", field="connectionSpec"
            )
        if not spec.get("authSpec"):
            raise InvalidRequest(
                "1415",
                f"{spec['name']} takes no base connection; create a source connection without baseConnectionId.",
                field="connectionSpec.id",
            )
        if body.auth is None:
            raise InvalidRequest("1000", "The field 'auth' is required.", field="auth")
        auth = catalog.auth_spec(spec, body.auth.specName)
        if auth is None:
            names = ", ".join(f"'{a['name']}'" for a in spec["authSpec"])
            raise InvalidRequest(
                "1415",
                f"The auth spec '{body.auth.specName}' could not be found for {spec['name']}; use one of {names}.",
                field="auth.specName",
            )
        if previous is not None and previous.doc["auth"]["specName"] != auth["name"]:
            raise InvalidRequest(
                "1000", "auth.specName cannot be changed after creation.", field="auth.specName"
            )
        values = dict(body.auth.params)
        if spec["id"] == catalog.HTTP_API:
            _streaming_inlet(work, values, previous)
        params.check(auth["spec"], values, "auth.params")
        _check_addresses(work, spec["id"], values)
        secret_names = catalog.secret_params(auth)
        public = {k: v for k, v in values.items() if k not in secret_names}
        secrets = {k: v for k, v in values.items() if k in secret_names}
        fields: dict[str, Any] = {"name": body.name}
        if body.description is not None:
            fields["description"] = body.description
        fields["auth"] = {"specName": auth["name"], "params": public}
        fields["connectionSpec"] = body.connectionSpec.wire(spec["version"])
        return Prepared(fields, extra={"secrets": work.services.box.seal(secrets) if secrets else None})

    def editable(self, work: Work, row: Connection) -> dict[str, Any]:
        """The document with its secret params opened, so a PATCH of /auth/params sees the whole object."""
        doc = dict(row.doc)
        if row.secrets:
            auth = dict(doc.get("auth") or {})
            auth["params"] = {**(auth.get("params") or {}), **work.services.box.open(row.secrets)}
            doc["auth"] = auth
        return doc

    def check_delete(self, work: Work, row: Connection) -> None:
        tenant = work.caller.tenant
        sources = repos.source_connections_of(work.session, tenant, row.id)
        flows = repos.flows_using(work.session, tenant, sources)
        if sources:
            used_by = f"flows {', '.join(flows)}" if flows else f"source connections {', '.join(sources)}"
            raise InvalidRequest(
                "1418",
                f"The base connection {row.id} cannot be deleted: it is used by {used_by}. Delete those first.",
                field="id",
            )

    def after_write(self, work: Work, row_id: str, prepared: Prepared) -> None:
        return None


def _check_addresses(work: Work, spec_id: str, values: dict[str, Any]) -> None:
    """Refuse, when it is saved, a host that resolves to a link-local or cloud metadata address
    (egress.py); the sources check again each time they connect, as DNS answers change."""
    policy = egress.policy_of(work.services.settings)
    try:
        if spec_id == catalog.AMAZON_S3 and isinstance(values.get("serviceUrl"), str):
            where = "auth.params.serviceUrl"
            policy.check_url_now(values["serviceUrl"])
        elif spec_id == catalog.SFTP and isinstance(values.get("host"), str):
            where = "auth.params.host"
            policy.check_host_now(values["host"].strip(), 22)
    except egress.AddressNotAllowed as exc:
        raise InvalidRequest("1000", f"The host {exc}.", field=where) from None


def _streaming_inlet(work: Work, values: dict[str, Any], previous: Connection | None) -> None:
    """HTTP API connections get an inlet id and URL from the server; clients cannot choose them."""
    old = ((previous.doc.get("auth") or {}).get("params") or {}) if previous is not None else {}
    inlet_id = old.get("inletId") or uuid.uuid4().hex
    values["inletId"] = inlet_id
    values["inletUrl"] = f"{work.services.settings.public_url}/collection/{inlet_id}"


KIND = ConnectionKind()
