"""flowservice: a self-hosted implementation of Adobe Experience Platform's Flow Service API."""

__version__ = "0.1.0"
