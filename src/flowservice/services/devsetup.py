"""The development org that `make run` creates on first start and reuses afterwards."""

from __future__ import annotations

import json
import os
import secrets

from flowservice.services import identity
from flowservice.services.context import Services
from flowservice.services.identity import NewCredential

DEV_FILE = "dev-credentials.json"


def ensure_dev_credentials(services: Services) -> tuple[NewCredential, bool]:
    """Return the dev credentials kept in the home, creating them if absent or no longer valid."""
    path = services.settings.home / DEV_FILE
    if path.exists():
        saved = json.loads(path.read_text())
        credential = NewCredential(saved["client_id"], saved["client_secret"], saved["org_id"])
        if identity.authenticate_client(services.db, credential.client_id, credential.client_secret):
            return credential, False
    org_id = secrets.token_hex(12).upper() + "@AdobeOrg"
    credential = identity.create_credentials(services.db, org_id, name="development")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(
            {"client_id": credential.client_id, "client_secret": credential.client_secret, "org_id": org_id},
            handle,
            indent=2,
        )
    return credential, True
