"""Source connections: `/sourceConnections`."""

from flowservice.api.flowservice.crud import resource_router
from flowservice.schemas.resources import SourceConnectionCreate
from flowservice.services.source_connections import KIND

router = resource_router(KIND, SourceConnectionCreate, "Source connections")
