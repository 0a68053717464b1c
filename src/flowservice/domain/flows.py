"""Flow states and the actions that move between them (`POST /flows/{id}/action?op=…`)."""

from __future__ import annotations

# action -> {current state: next state}; anything else is refused with 1422.
ACTIONS: dict[str, dict[str, str]] = {
    "enable": {"disabled": "enabled"},
    "disable": {"enabled": "disabled"},
    "publish": {"draft": "enabled"},
}


def runs_link(flow_id: str) -> str:
    return f"/runs?property=flowId=={flow_id}"
