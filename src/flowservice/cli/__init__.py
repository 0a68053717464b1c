"""The `flowservice` command line."""
