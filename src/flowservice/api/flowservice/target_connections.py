"""Target connections: `/targetConnections`."""

from flowservice.api.flowservice.crud import resource_router
from flowservice.schemas.resources import TargetConnectionCreate
from flowservice.services.target_connections import KIND

router = resource_router(KIND, TargetConnectionCreate, "Target connections")
