"""The README's two promises: `serve --dev` bootstraps a usable org, and the curl walk-through works as pasted."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

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

    with serve(tmp_path, "--dev") as again:
        assert credentials["client_secret"] not in again.output()  # reused, not printed again
        assert "development credentials" in again.output()
    assert json.loads((tmp_path / ".flowservice" / "dev-credentials.json").read_text()) == credentials
