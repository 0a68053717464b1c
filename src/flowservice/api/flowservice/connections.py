"""Base connections: `/connections`."""

from flowservice.api.flowservice.crud import resource_router
from flowservice.schemas.resources import ConnectionCreate
from flowservice.services.connections import KIND

router = resource_router(KIND, ConnectionCreate, "Connections")
