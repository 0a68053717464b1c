"""The README's two promises: `serve --dev` bootstraps a usable org, and the curl walk-through works as pasted."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live import serve

README = Path(__file__).parents[2] / "README.md"


def walkthrough() -> str:
    text = README.read_text()
    block = re.search(
        r"<!-- walkthrough:start -->\s*```bash\n(.*?)```\s*<!-- walkthrough:end -->", text, re.S
    )
    assert block, "README lost its walk-through block"
    return block.group(1)


def _demo_run(url: str, credentials: dict[str, str]) -> dict[str, Any]:
    """The sample dataflow's run, once it has finished (waiting on that condition, with a deadline)."""
    token = httpx.post(
        f"{url}/ims/token/v3",
        data={
            "grant_type": "client_credentials",
            "client_id": credentials["client_id"],
            "client_secret": credentials["client_secret"],
        },
    ).json()["access_token"]
    headers = {
        "Authorization": f"Bearer {token}",
        "x-api-key": credentials["client_id"],
        "x-gw-ims-org-id": credentials["org_id"],
    }
    deadline = time.monotonic() + 60
    while True:
        runs = httpx.get(f"{url}/data/foundation/flowservice/runs", headers=headers).json()["items"]
        if runs and runs[0]["state"] in ("success", "failed"):
            run: dict[str, Any] = runs[0]
            return run
        assert time.monotonic() < deadline, f"the demo run did not finish: {runs}"
        time.sleep(0.1)


@pytest.mark.slow
def test_first_start_creates_dev_org_and_the_walkthrough_runs(tmp_path: Path) -> None:
    with serve(tmp_path, "--dev") as server:
        credentials = json.loads((tmp_path / ".flowservice" / "dev-credentials.json").read_text())
        assert credentials["client_secret"] in server.output()  # printed once, with a curl line
        try_it = server.output().split("Try it:\n", 1)[1].splitlines()[:2]
        printed = subprocess.run(
            ["bash", "-c", "\n".join(try_it)], capture_output=True, text=True, timeout=30
        )
        assert json.loads(printed.stdout)["items"], printed.stderr
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", walkthrough()],
            cwd=tmp_path,
            env={"FS": server.url, "PATH": os.environ["PATH"], "HOME": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        created = re.search(r"created connection ([0-9a-f-]{36})", result.stdout)
        assert created, result.stdout
        assert (
            "Amazon S3" in result.stdout and "s3SecretKey" in result.stdout
        )  # the spec lists it as required
        item = json.loads(result.stdout[result.stdout.index("{") :])["items"][0]
        assert item["id"] == created.group(1)
        assert "wJalrXUtnFEMI" not in result.stdout  # the secret went in and never came back
        demo = _demo_run(server.url, credentials)
        assert demo["state"] == "success", demo
        records = demo["metrics"]["recordSummary"]
        assert records["inputRecordCount"] == 1200  # 3 generated files of 400 customers
        assert records["failedRecordCount"] > 0  # a few are broken on purpose
        assert records["inputRecordCount"] == records["outputRecordCount"] + records["failedRecordCount"]

        # the one-click link to the pages signs in as the development credential
        link = re.search(r"Monitoring pages: (\S+)", server.output())
        assert link and link.group(1).startswith(f"{server.url}/ui/signin/link?ticket=")
        with httpx.Client() as browser:
            signed = browser.get(link.group(1))
            assert signed.status_code == 303 and signed.headers["location"] == "/ui/flows"
            flows = browser.get(f"{server.url}/ui/flows")
            assert flows.status_code == 200 and "Demo: customers from the landing zone" in flows.text

    with serve(tmp_path, "--dev") as again:
        assert credentials["client_secret"] not in again.output()  # reused, not printed again
        assert "development credentials" in again.output()
    assert json.loads((tmp_path / ".flowservice" / "dev-credentials.json").read_text()) == credentials
