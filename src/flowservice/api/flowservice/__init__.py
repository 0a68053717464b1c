"""Routers of the Flow Service API, one module per resource."""

BASE_PATH = "/data/foundation/flowservice"
