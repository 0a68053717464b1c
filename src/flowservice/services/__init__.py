"""Use cases shared by the API, the UI, the CLI and the scheduler; each owns its transaction."""
