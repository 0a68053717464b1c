"""arrow_io refuses files that are hostile or mislabelled as a whole, clearly and before reading them.

These are the engine fixes the bad-file corpus (tests/corpus, tests/e2e/test_bad_files.py) asked for:
zip entries named to climb out of their folder, a zip entry declaring more than the decompression
limit, UTF-16/UTF-32 text, and a Parquet file with two columns of one name. Each is an
`UnreadableFile` with a message a user can act on, raised before any record is counted.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flowservice.engine import arrow_io
from flowservice.engine.arrow_io import FormatSpec, SourceBatch, UnreadableFile, read
from flowservice.settings import Settings

CSV = b"id,name\n1,Ada\n2,Grace\n"
ZIP = FormatSpec("delimited", compression="zip")
JSON = FormatSpec("json")


def records(data: bytes, spec: FormatSpec, **options: Any) -> list[SourceBatch]:
    return list(read(io.BytesIO(data), spec, **options))


def rows(batches: list[SourceBatch]) -> int:
    return sum(b.batch.num_rows for b in batches)


def zip_with(names: list[str], content: bytes = CSV) -> bytes:
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            archive.writestr(zipfile.ZipInfo(name), content)
    return sink.getvalue()


@pytest.mark.parametrize(
    "entry",
    ["../evil.csv", "a/../../evil.csv", "/etc/evil.csv", "\\evil.csv", "a\\..\\..\\evil.csv", "C:/evil.csv"],
)
def test_a_zip_entry_named_outside_its_folder_is_refused(entry: str) -> None:
    with pytest.raises(UnreadableFile, match="outside its own folder"):
        records(zip_with([entry]), ZIP)


def test_an_escaping_entry_is_refused_even_beside_the_data() -> None:
    """Finder's noise entries are skipped when choosing the one file, but not when checking names."""
    with pytest.raises(UnreadableFile, match=r"'__MACOSX/\.\./x'"):
        records(zip_with(["data.csv", "__MACOSX/../x"]), ZIP)


@pytest.mark.parametrize("entry", ["data.csv", "folder/data.csv", "data..v2.csv", "..data.csv"])
def test_ordinary_entry_names_are_read(entry: str) -> None:
    assert rows(records(zip_with([entry]), ZIP)) == 2


def test_a_zip_entry_declaring_more_than_the_limit_is_refused_before_inflating() -> None:
    archive = zip_with(["big.csv"], CSV + b"3,x\n" * 100_000)  # declares ~400 KB

    with pytest.raises(UnreadableFile, match=r"declares 400022\); it is refused as a possible zip bomb"):
        records(archive, ZIP, max_uncompressed=100_000)
    assert rows(records(archive, ZIP, max_uncompressed=1_000_000)) == 100_002


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"\xff\xfe" + CSV.decode().encode("utf-16-le"), "UTF-16"),
        (b"\xfe\xff" + CSV.decode().encode("utf-16-be"), "UTF-16"),
        (b"\xff\xfe\x00\x00" + CSV.decode().encode("utf-32-le"), "UTF-32"),
        (CSV.decode().encode("utf-16-le") * 4, "UTF-16"),  # no byte order mark
    ],
)
@pytest.mark.parametrize("declared", ["UTF-8", "ISO-8859-1"])
def test_utf16_and_utf32_text_is_refused_by_name(data: bytes, name: str, declared: Any) -> None:
    for spec in (FormatSpec("delimited", encoding=declared), FormatSpec("json", encoding=declared)):
        with pytest.raises(UnreadableFile, match=f"the file is {name} text; save it as UTF-8"):
            records(data, spec)


def test_utf16_is_recognised_inside_compression() -> None:
    data = gzip.compress(b"\xff\xfe" + CSV.decode().encode("utf-16-le"))
    with pytest.raises(UnreadableFile, match="UTF-16"):
        records(data, FormatSpec("delimited", compression="gzip"))


def test_latin1_text_is_not_mistaken_for_utf16() -> None:
    data = "id,name\n1,Zoë\n2,ÿþ Ørsted\n".encode("latin-1")
    assert rows(records(data, FormatSpec("delimited", encoding="ISO-8859-1"))) == 2


def test_a_parquet_file_with_two_columns_of_one_name_is_refused(tmp_path: Path) -> None:
    table = pa.Table.from_arrays(
        [pa.array([1, 2]), pa.array(["a", "b"]), pa.array(["c", "d"])], ["id", "e", "e"]
    )
    pq.write_table(table, tmp_path / "dup.parquet")

    with (
        open(tmp_path / "dup.parquet", "rb") as stream,
        pytest.raises(UnreadableFile, match="names the column 'e' more than once"),
    ):
        list(read(stream, FormatSpec("parquet")))


def test_the_decompression_limit_is_a_setting_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Settings.load(home=tmp_path).max_decompressed_bytes == 50 * 2**30
    monkeypatch.setenv("FLOWSERVICE_MAX_DECOMPRESSED_BYTES", "1024")
    assert Settings.load(home=tmp_path).max_decompressed_bytes == 1024


# ------------------------------------------------------------------------------------ nesting and width


def deep(levels: int, opener: str = "[") -> str:
    """A value nested `levels` deep in arrays, or in objects."""
    if opener == "[":
        return "[" * levels + "1" + "]" * levels
    return '{"a": ' * levels + "1" + "}" * levels


def json_lines(*records: str) -> bytes:
    return "".join(record + "\n" for record in records).encode()


def bad_messages(batches: list[SourceBatch]) -> list[tuple[int, str]]:
    return [(bad.record, bad.message) for batch in batches for bad in batch.bad]


@pytest.mark.parametrize("opener", ["[", "{"])
@pytest.mark.parametrize("levels", [65, 1_000, 100_000])
def test_a_json_line_nested_too_deep_is_one_bad_record(opener: str, levels: int) -> None:
    """100,000 levels crashed the process inside pyarrow (SIGSEGV); 1,000 raised RecursionError."""
    data = json_lines('{"id": 1}', '{"id": 2, "x": ' + deep(levels, opener) + "}", '{"id": 3}')

    batches = records(data, JSON)

    assert rows(batches) == 2
    assert bad_messages(batches) == [(2, "the record is nested deeper than 64 levels of objects and arrays")]


def test_sixty_four_levels_are_read() -> None:
    data = json_lines('{"id": 1, "x": ' + deep(63) + "}", '{"id": 2, "x": ' + deep(63) + "}")
    assert rows(records(data, JSON)) == 2


def test_a_json_document_nested_too_deep_keeps_what_came_before() -> None:
    data = ('[{"id": 1}, {"id": 2, "x": ' + deep(100_000) + "}]").encode()

    batches = records(data, JSON)

    assert rows(batches) == 1
    assert bad_messages(batches) == [
        (
            2,
            "the rest of the file could not be read after record 1: " + "the record is nested deeper than 64 "
            "levels of objects and arrays",
        )
    ]


def test_records_each_naming_their_own_field_stop_at_the_field_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before, 700 KB of such lines took 10 GB: every field became a column of every row."""
    monkeypatch.setattr(arrow_io, "FIELD_LIMIT", 100)
    data = json_lines(*(f'{{"id": {i}, "f{i}": 1}}' for i in range(1, 1001)))

    batches = records(data, JSON)

    read_rows = rows(batches)
    assert 50 <= read_rows <= 200  # the limit, passed by at most one piece of lines (each within the limit)
    assert bad_messages(batches) == [
        (
            read_rows + 1,
            f"the rest of the file could not be read after record {read_rows}: the records name more than 100 fields",
        )
    ]
    assert all(batch.batch.num_columns <= 101 for batch in batches)


def test_the_pieces_bound_the_values_pyarrow_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sparse records are parsed in pieces whose rows × fields stay within the budget."""
    monkeypatch.setattr(arrow_io, "_JSON_CELLS", 2_000)
    data = json_lines(*(f'{{"id": {i}, "f{i % 300}": 1}}' for i in range(1, 601)))

    batches = records(data, JSON)

    assert rows(batches) == 600 and not bad_messages(batches)
    assert all(b.batch.num_rows * b.batch.num_columns <= 2_000 + b.batch.num_rows for b in batches)
    numbers = [n for b in batches for n in range(b.first_record, b.first_record + b.batch.num_rows)]
    assert numbers == list(range(1, 601))


def test_a_json_document_is_cut_into_batches_within_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(arrow_io, "_JSON_CELLS", 2_000)
    objects = ", ".join(f'{{"id": {i}, "f{i % 300}": 1}}' for i in range(1, 601))
    batches = records(f"[{objects}, 7]".encode(), JSON)

    assert rows(batches) == 600 and len(batches) > 1
    assert bad_messages(batches) == [(601, "expected a JSON object, found number")]
    assert all(b.batch.num_rows * b.batch.num_columns <= 2_000 for b in batches)


def test_one_record_with_more_fields_than_the_limit_is_a_bad_record(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(arrow_io, "FIELD_LIMIT", 100)
    wide = "{" + ", ".join(f'"f{i}": {i}' for i in range(200)) + "}"
    nested = '{"items": [' + ", ".join('{"a": 1}' for _ in range(500)) + "]}"  # 500 colons, 2 fields

    batches = records(json_lines('{"id": 1}', wide, nested), JSON)

    assert rows(batches) == 2
    assert bad_messages(batches) == [(2, "the records name more than 100 fields")]


def test_a_header_wider_than_the_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before, an 8 MB header of 600,000 names took 3 GB and 35 s to read."""
    monkeypatch.setattr(arrow_io, "FIELD_LIMIT", 100)
    header = ",".join(f"c{i}" for i in range(101)).encode() + b"\n"

    with pytest.raises(UnreadableFile, match="the first line has 101 columns; at most 100 are read"):
        records(header + b"1" * 101 + b"\n", FormatSpec("delimited"))
    with pytest.raises(UnreadableFile, match="the first line has 101 columns"):
        records(header, FormatSpec("delimited", header=False))
    narrow = header.replace(b",c100", b"") + b",".join(b"1" for _ in range(100)) + b"\n"
    assert rows(records(narrow, FormatSpec("delimited"))) == 1


def test_a_parquet_file_wider_than_the_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(arrow_io, "FIELD_LIMIT", 100)
    pq.write_table(pa.table({f"c{i}": [i] for i in range(101)}), tmp_path / "wide.parquet")

    with open(tmp_path / "wide.parquet", "rb") as stream, pytest.raises(UnreadableFile, match="101 columns"):
        list(read(stream, FormatSpec("parquet")))


def test_blocks_read_against_known_fields_keep_big_integers_exact() -> None:
    """Later blocks are parsed against the fields seen before (fast, and no field can be added); an
    integer a known double field could not hold exactly sends the block back to inference."""
    big = 2**53 + 1
    data = json_lines(
        *(['{"a": 1.5, "n": {"b": [2.5]}}'] * 50 + [f'{{"a": {big}, "n": {{"b": [{big}]}}}}'] * 30)
    )
    data += json_lines(*(['{"a": 2.5, "n": {"b": [1.5]}, "new": "x"}'] * 20))

    batches = records(data, JSON, block_size=256)

    values = [row for batch in batches for row in batch.batch.to_pylist()]
    assert len(values) == 100 and not bad_messages(batches)
    assert values[70] == {"a": big, "n": {"b": [big]}}  # in a block of big integers only: as written
    assert values[99] == {"a": 2.5, "n": {"b": [1.5]}, "new": "x"}  # a field first seen late
