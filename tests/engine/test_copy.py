"""Copy Activity staging: what a later attempt of a run finds, and must not harm."""

from __future__ import annotations

from pathlib import Path

from flowservice.connectors.landing_zone import LandingZone
from flowservice.engine.copy import copy_files


def test_restaging_over_an_earlier_attempt_keeps_the_source_files(tmp_path: Path) -> None:
    """A run whose worker died after the Copy Activity is staged again into the same folder; the
    landing zone's files are staged by hard link, so writing over the old staged name would empty
    the customer's file."""
    zone = tmp_path / "zone"
    (zone / "incoming").mkdir(parents=True)
    source_file = zone / "incoming" / "a.csv"
    source_file.write_text("id\n1\n2\n")
    source = LandingZone(zone)
    objects = list(source.list("incoming", recursive=True))
    staging = tmp_path / "staging"

    first = copy_files(source, objects, staging, max_file_bytes=1 << 20)  # the attempt that died
    again = copy_files(source, objects, staging, max_file_bytes=1 << 20)  # the attempt after it

    assert [f.size for f in first] == [f.size for f in again] == [len("id\n1\n2\n")]
    assert source_file.read_text() == "id\n1\n2\n"
    assert again[0].staged.read_text() == "id\n1\n2\n"
