"""Routers of the adjacent Platform APIs an end-to-end dataflow needs (IMS, catalog, …)."""
