"""Where the monitoring commands find a server and credentials: the environment, then the profile.

This is the client's counterpart of `settings.py` (which configures a server, not a client): the one
place the remote commands read `FLOWSERVICE_URL`, `_CLIENT_ID`, `_CLIENT_SECRET`, `_ORG_ID`,
`_SANDBOX` and `FLOWSERVICE_CONFIG`. A variable that is set overrides the profile's value, so CI jobs
need no file and a developer can point one command at another sandbox without logging in again.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_SANDBOX = "prod"
CONFIG_ENV = "FLOWSERVICE_CONFIG"
# profile field -> the variable that overrides it, in the order a message lists them
ENV: dict[str, str] = {
    "url": "FLOWSERVICE_URL",
    "client_id": "FLOWSERVICE_CLIENT_ID",
    "client_secret": "FLOWSERVICE_CLIENT_SECRET",
    "org_id": "FLOWSERVICE_ORG_ID",
    "sandbox": "FLOWSERVICE_SANDBOX",
}


class ConfigError(Exception):
    """Something the user must set or fix before any request can be made (exit code 2)."""


@dataclass(frozen=True)
class Profile:
    url: str
    client_id: str
    client_secret: str
    org_id: str
    sandbox: str = DEFAULT_SANDBOX


def profile_path(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV]).expanduser()
    config_home = Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config").expanduser()
    return config_home / "flowservice" / "profile.json"


def read_profile(path: Path) -> dict[str, str]:
    """The saved values (all strings); an absent file is an empty profile, a broken one an error."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the profile {path}: {exc}; run `flowservice login` again") from None
    if not isinstance(data, dict):
        raise ConfigError(f"the profile {path} is not a JSON object; run `flowservice login` again")
    return {k: v for k, v in data.items() if k in ENV and isinstance(v, str) and v}


def from_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The values the environment sets (an empty variable counts as unset)."""
    env = os.environ if environ is None else environ
    return {field: env[name] for field, name in ENV.items() if env.get(name)}


def resolve(environ: Mapping[str, str] | None = None) -> Profile:
    """The profile with the environment laid over it; what is still missing is named in the error."""
    path = profile_path(environ)
    values = {**read_profile(path), **from_environment(environ)}
    values.setdefault("sandbox", DEFAULT_SANDBOX)
    missing = [ENV[field] for field in ENV if not values.get(field)]
    if missing:
        raise ConfigError(
            f"no {', '.join(missing)}: set {'it' if len(missing) == 1 else 'them'} in the environment "
            f"or run `flowservice login` (profile: {path})"
        )
    check_url(values["url"])
    return Profile(**{field: values[field] for field in ENV})


def check_url(url: str) -> None:
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"the server URL must start with http:// or https://, not {url!r}")


def write_profile(path: Path, profile: Profile) -> None:
    """Write 0600 from the first byte and rename into place, so the secret is never readable by
    others and a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temporary = tempfile.mkstemp(prefix=".profile-", suffix=".tmp", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(asdict(profile), handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
