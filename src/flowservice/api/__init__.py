"""The HTTP API: Flow Service under /data/foundation/flowservice and the adjacent Platform APIs."""
