"""The landing zone reads only inside its folder, hides what is hidden, and uploads atomically."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from flowservice.connectors.base import ConnectorError, ExploreItem, ObjectMissing, PathNotAllowed
from flowservice.connectors.landing_zone import LandingZone, upload


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.csv").write_text("password\nhunter2\n")
    return folder


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "landing-zone" / "org@AdobeOrg" / "prod"


def write(path: Path, text: str = "a,b\n1,2\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def paths(zone: LandingZone, path: str, *, recursive: bool = False) -> list[str]:
    return [o.path for o in zone.list(path, recursive=recursive)]


def test_creates_the_root_when_missing(root: Path) -> None:
    zone = LandingZone(root)
    assert root.is_dir()
    zone.test()
    assert paths(zone, "") == []
    assert zone.explore() == []


def test_a_file_lists_as_itself_with_size_and_mtime(root: Path) -> None:
    file = write(root / "data8.csv", "id\n1\n2\n")
    os.utime(file, ns=(1_700_000_000_123_000_000, 1_700_000_000_123_000_000))
    [obj] = LandingZone(root).list("data8.csv")
    assert (obj.path, obj.size, obj.modified_ms) == ("data8.csv", 7, 1_700_000_000_123)


@pytest.mark.parametrize(
    "path",
    [
        "data8.csv",
        "/data8.csv",
        "dlz-user-container/data8.csv",
        "/dlz-user-container/data8.csv",
        "./data8.csv",
    ],
)
def test_spellings_of_the_same_path(root: Path, path: str) -> None:
    write(root / "data8.csv")
    zone = LandingZone(root)
    assert paths(zone, path) == ["data8.csv"]
    with zone.open(path) as stream:
        assert stream.read() == b"a,b\n1,2\n"


def test_folder_listing_is_sorted_skips_hidden_and_recurses_on_request(root: Path) -> None:
    for name in ("b.csv", "a.csv", ".hidden.csv", "sub/c.csv", "sub/deeper/d.csv", ".cache/e.csv", "sub/.x"):
        write(root / name)
    zone = LandingZone(root)
    assert paths(zone, "") == ["a.csv", "b.csv"]
    assert paths(zone, "/", recursive=True) == ["a.csv", "b.csv", "sub/c.csv", "sub/deeper/d.csv"]
    assert paths(zone, "sub") == ["sub/c.csv"]
    assert paths(zone, "dlz-user-container/sub/", recursive=True) == ["sub/c.csv", "sub/deeper/d.csv"]
    # A hidden file named explicitly is still readable.
    assert paths(zone, ".hidden.csv") == [".hidden.csv"]


def test_missing_paths(root: Path) -> None:
    zone = LandingZone(root)
    for call in (lambda: zone.list("nope.csv"), lambda: zone.open("nope.csv"), lambda: zone.explore("nope")):
        with pytest.raises(ObjectMissing, match="nope"):
            call()


def test_open_and_explore_refuse_the_wrong_kind(root: Path) -> None:
    write(root / "sub" / "a.csv")
    zone = LandingZone(root)
    with pytest.raises(ObjectMissing, match="folder"):
        zone.open("sub")
    with pytest.raises(ObjectMissing, match="file"):
        zone.explore("sub/a.csv")


@pytest.mark.parametrize(
    "path",
    [
        "..",
        "../outside/secret.csv",
        "/../outside/secret.csv",
        "sub/../../outside/secret.csv",
        "sub/../a.csv",  # would stay inside, but ".." is never needed and never allowed
        "dlz-user-container/../outside/secret.csv",
        "//etc/passwd",
        "a.csv\x00.txt",
        "..\\outside\\secret.csv",
    ],
)
def test_textual_escapes_are_refused_everywhere(root: Path, outside: Path, path: str) -> None:
    zone = LandingZone(root)
    for call in (
        lambda: zone.list(path, recursive=True),
        lambda: zone.open(path),
        lambda: zone.explore(path),
    ):
        with pytest.raises(PathNotAllowed):
            call()
    with pytest.raises(PathNotAllowed):
        upload(root, outside / "secret.csv", path)


def test_a_leading_slash_means_the_zone_not_the_machine(root: Path) -> None:
    zone = LandingZone(root)
    with pytest.raises(ObjectMissing):
        zone.open("/etc/passwd")


def test_symlinks_out_of_the_zone_are_refused_and_hidden(root: Path, outside: Path) -> None:
    write(root / "inside.csv")
    (root / "out-file.csv").symlink_to(outside / "secret.csv")
    (root / "out-dir").symlink_to(outside, target_is_directory=True)
    (root / "in-file.csv").symlink_to(root / "inside.csv")
    (root / "in-dir").symlink_to(root / "sub", target_is_directory=True)
    write(root / "sub" / "s.csv")
    (root / "sub" / "up").symlink_to(root.parent, target_is_directory=True)
    zone = LandingZone(root)

    for path in ("out-file.csv", "out-dir", "out-dir/secret.csv", "sub/up", "sub/up/other.csv"):
        for call in (
            lambda p=path: zone.list(p),
            lambda p=path: zone.open(p),
            lambda p=path: zone.explore(p),
        ):
            with pytest.raises(PathNotAllowed):
                call()

    # Links that stay inside are followed; links out are left out of listings and explore.
    assert paths(zone, "") == ["in-file.csv", "inside.csv"]
    assert paths(zone, "", recursive=True) == ["in-file.csv", "inside.csv", "sub/s.csv"]
    assert paths(zone, "in-dir") == ["in-dir/s.csv"]
    assert zone.explore() == [
        ExploreItem("folder", "in-dir", "in-dir"),
        ExploreItem("folder", "sub", "sub"),
        ExploreItem("file", "in-file.csv", "in-file.csv"),
        ExploreItem("file", "inside.csv", "inside.csv"),
    ]
    assert [i.name for i in zone.explore("sub")] == ["s.csv"]


def test_a_symlink_loop_cannot_hang_a_listing(root: Path) -> None:
    write(root / "sub" / "a.csv")
    (root / "sub" / "loop").symlink_to(root / "sub", target_is_directory=True)
    (root / "self").symlink_to(root / "self")
    zone = LandingZone(root)
    assert paths(zone, "", recursive=True) == ["sub/a.csv"]
    with pytest.raises(ConnectorError):
        zone.open("self")


def test_explore_lists_folders_then_files_relative_to_the_zone(root: Path) -> None:
    write(root / "b" / "deep" / "x.csv")
    write(root / "a" / "y.json")
    write(root / "z.csv")
    write(root / ".hidden")
    zone = LandingZone(root)
    assert [(i.type, i.name, i.path) for i in zone.explore()] == [
        ("folder", "a", "a"),
        ("folder", "b", "b"),
        ("file", "z.csv", "z.csv"),
    ]
    assert zone.explore("/dlz-user-container/b") == [ExploreItem("folder", "deep", "b/deep")]
    assert zone.explore("b/deep/")[0].wire() == {
        "type": "file",
        "name": "x.csv",
        "path": "b/deep/x.csv",
        "canPreview": True,
        "canFetchSchema": True,
    }


def test_open_streams_in_chunks(root: Path) -> None:
    payload = bytes(range(256)) * 20_000
    (root).mkdir(parents=True)
    (root / "big.bin").write_bytes(payload)
    with LandingZone(root).open("big.bin") as stream:
        chunks = iter(lambda: stream.read(65_536), b"")
        assert b"".join(chunks) == payload


# -- upload ------------------------------------------------------------------------------------------


def test_upload_places_the_file_and_returns_its_path(root: Path, tmp_path: Path) -> None:
    source = write(tmp_path / "local" / "data8.csv", "id\n1\n")
    assert upload(root, source, None) == "data8.csv"
    assert upload(root, source, "dlz-user-container/in/renamed.csv") == "in/renamed.csv"
    assert upload(root, source, "in/") == "in/data8.csv"
    assert upload(root, source, "/in") == "in/data8.csv"  # an existing folder receives the file
    zone = LandingZone(root)
    assert paths(zone, "", recursive=True) == ["data8.csv", "in/data8.csv", "in/renamed.csv"]
    assert (root / "in" / "renamed.csv").read_text() == "id\n1\n"


def test_upload_replaces_a_file_whole(root: Path, tmp_path: Path) -> None:
    old = write(root / "data.csv", "old\n")
    reader = old.open("rb")  # a reader that opened the old file keeps reading the old file
    source = write(tmp_path / "data.csv", "new\n" * 1000)
    upload(root, source, "data.csv")
    assert (root / "data.csv").read_text() == "new\n" * 1000
    assert reader.read() == b"old\n"
    reader.close()
    assert sorted(p.name for p in root.iterdir()) == ["data.csv"]


def test_an_interrupted_upload_leaves_the_old_file_and_no_litter(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(root / "data.csv", "old\n")
    source = write(tmp_path / "data.csv", "new\n" * 1000)
    zone = LandingZone(root)
    seen_during_copy: list[list[str]] = []

    def copy_half_then_fail(src: Any, dst: Any, *_: Any) -> None:
        dst.write(src.read(100))
        dst.flush()
        seen_during_copy.append(paths(zone, "", recursive=True))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "copyfileobj", copy_half_then_fail)
    with pytest.raises(ConnectorError, match="No space left"):
        upload(root, source, "data.csv")
    assert seen_during_copy == [["data.csv"]]  # the partial copy was never visible
    assert (root / "data.csv").read_text() == "old\n"
    assert sorted(p.name for p in root.iterdir()) == ["data.csv"]


def test_upload_refuses_links_out_and_hidden_names(root: Path, tmp_path: Path, outside: Path) -> None:
    source = write(tmp_path / "data.csv")
    root.mkdir(parents=True)
    (root / "out").symlink_to(outside, target_is_directory=True)
    with pytest.raises(PathNotAllowed):
        upload(root, source, "out/data.csv")
    with pytest.raises(PathNotAllowed):
        upload(root, source, "out")
    with pytest.raises(ConnectorError, match="starts with"):
        upload(root, source, ".sneaky.csv")
    with pytest.raises(ObjectMissing):
        upload(root, tmp_path / "absent.csv", None)
    assert sorted(p.name for p in outside.iterdir()) == ["secret.csv"]


def test_upload_over_an_inside_link_replaces_the_link_not_its_target(root: Path, tmp_path: Path) -> None:
    write(root / "target.csv", "target\n")
    (root / "link.csv").symlink_to(root / "target.csv")
    upload(root, write(tmp_path / "x.csv", "new\n"), "link.csv")
    assert not (root / "link.csv").is_symlink()
    assert (root / "link.csv").read_text() == "new\n"
    assert (root / "target.csv").read_text() == "target\n"
