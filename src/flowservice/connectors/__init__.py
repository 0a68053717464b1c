"""Sources behind small Protocols, one module each; heavy clients are imported lazily by the registry."""
