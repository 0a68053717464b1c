"""Connection spec id → the connector that reads it, imported only when a source of that kind is made.

Lazy imports keep the cost of a client library (boto3 takes a noticeable part of a second to import)
on the servers and workers that read that kind of source, and keep a missing optional library from
breaking the others.

The dummy source has a spec id of its own that the public catalog lists only when the server runs
with FLOWSERVICE_TEST_CONNECTORS=1, so no API caller of a normal server can create one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowservice import catalog
from flowservice.connectors.base import ConnectorError, FileSource, TableSource

if TYPE_CHECKING:
    from flowservice.egress import Egress

DUMMY = catalog.DUMMY

# Database sources: read with table_source(); file_source() names them so the refusal is clear.
TABLE_SOURCES = {
    catalog.POSTGRESQL: "PostgreSQL",
    catalog.MYSQL: "MySQL",
    catalog.MARIADB: "MariaDB",
}


def file_source(
    spec_id: str,
    auth_params: dict[str, Any],
    *,
    landing_zone_root: Path | None,
    egress: Egress | None = None,
) -> FileSource:
    """The file source for a connection of spec `spec_id` with these (decrypted) auth params.

    `landing_zone_root` is the tenant's landing-zone folder; only the Data Landing Zone uses it.
    `egress` is the outbound address policy network sources connect under (the default one if None).
    """
    if spec_id == catalog.DATA_LANDING_ZONE:
        if landing_zone_root is None:
            raise ConnectorError("a Data Landing Zone source needs the tenant's landing-zone folder")
        from flowservice.connectors.landing_zone import LandingZone

        return LandingZone(landing_zone_root)
    if spec_id == catalog.AMAZON_S3:
        from flowservice.connectors.s3 import S3Source

        return S3Source(auth_params, egress=egress)
    if spec_id == catalog.SFTP:
        from flowservice.connectors.sftp import SftpSource

        return SftpSource(auth_params, egress=egress)
    if spec_id == DUMMY:
        from flowservice.connectors.dummy import DummySource

        return DummySource(auth_params)
    if spec_id in TABLE_SOURCES:
        raise ConnectorError(
            f"{TABLE_SOURCES[spec_id]} sources (connection spec {spec_id}) are table sources, not file sources"
        )
    raise ConnectorError(f"connection spec {spec_id!r} is not a file source this server can read")


def table_source(spec_id: str, auth_params: dict[str, Any]) -> TableSource:
    """The table source for a connection of spec `spec_id` with these (decrypted) auth params.

    One class serves MySQL and MariaDB: the same driver and SQL work for both.
    """
    if spec_id == catalog.POSTGRESQL:
        from flowservice.connectors.postgres import PostgresSource

        return PostgresSource(auth_params)
    if spec_id in (catalog.MYSQL, catalog.MARIADB):
        from flowservice.connectors.mysql import MySQLSource

        return MySQLSource(auth_params)
    raise ConnectorError(f"connection spec {spec_id!r} is not a table source this server can read")
