"""arrow_io on real files built here: every format and compression, bad records and unreadable remainders.

Every read goes through `collect`, which checks the rule the run metrics rest on: each record written
gets exactly one number, as a row or as a bad record, so rows + bad records == records in the file.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO, Literal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flowservice.engine.arrow_io import (
    CORRUPT_RECORD,
    BadRecord,
    FormatSpec,
    SourceBatch,
    UnreadableFile,
    detect,
    preview,
    read,
    spec_from_connection,
)
from flowservice.errors import Terminal, Transient

DELIMITED = FormatSpec("delimited")
JSON = FormatSpec("json")
PARQUET = FormatSpec("parquet")


@dataclass
class Result:
    rows: list[dict[str, Any]] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)  # the record number of each row
    bad: list[BadRecord] = field(default_factory=list)
    batches: list[SourceBatch] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.rows) + len(self.bad)

    def column(self, name: str) -> list[Any]:
        return [row.get(name) for row in self.rows]


def collect(source: Path | BinaryIO, spec: FormatSpec, **options: Any) -> Result:
    """Read everything, checking that the records are numbered 1..N with no gap and no repeat."""
    result = Result()
    stream: BinaryIO = source.open("rb") if isinstance(source, Path) else source
    try:
        for item in read(stream, spec, **options):
            result.batches.append(item)
            count = item.batch.num_rows
            numbers = (
                item.records
                if item.records is not None
                else list(range(item.first_record, item.first_record + count))
            )
            assert len(numbers) == count
            if count:
                assert numbers[0] == item.first_record
            result.rows.extend(item.batch.to_pylist())
            result.numbers.extend(numbers)
            result.bad.extend(item.bad)
    finally:
        stream.close()
    everything = sorted(result.numbers + [bad.record for bad in result.bad])
    assert everything == list(range(1, result.total + 1))
    for bad in result.bad:
        assert bad.code == CORRUPT_RECORD
        assert 0 < len(bad.message) <= 300
        assert bad.raw is None or len(bad.raw) <= 1000
    return result


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def csv_lines(count: int, start: int = 0) -> bytes:
    return b"".join(b"%d,name %d,%d.5\n" % (i, i, i) for i in range(start, start + count))


def unseekable(data: bytes) -> BinaryIO:
    """A stream that only reads forward, as an HTTP or S3 body does."""

    class Forward(io.RawIOBase):
        def __init__(self) -> None:
            super().__init__()
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return False

        def readinto(self, buffer: Any) -> int:
            return self._data.readinto(buffer)

    return io.BufferedReader(Forward())


class SourceDropped(Transient):
    """What a connector raises when the network fails in the middle of a file."""


def dropping(data: bytes, after: int) -> BinaryIO:
    """A stream that fails with a Transient error once `after` bytes have been read."""

    class Dropping(io.RawIOBase):
        def __init__(self) -> None:
            super().__init__()
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            if self._data.tell() >= after:
                raise SourceDropped("connection reset by the source")
            view = memoryview(buffer)[: after - self._data.tell()]
            return self._data.readinto(view)

    return io.BufferedReader(Dropping(), buffer_size=1024)


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            if name.endswith("/"):
                archive.writestr(zipfile.ZipInfo(name), b"")
            else:
                archive.writestr(name, content)
    return buffer.getvalue()


# ----------------------------------------------------------------------------------------------- delimited


def test_delimited_columns_are_strings_and_empty_values_null(tmp_path: Path) -> None:
    data = (
        b'id,name,amount,note\r\n007,"Smith, Jane",12.50,\r\n8,"two\nlines",NA,""\r\n9,"say ""hi""",,null\r\n'
    )
    result = collect(write(tmp_path, "a.csv", data), DELIMITED)

    assert result.batches[0].batch.schema == pa.schema(
        [(name, pa.string()) for name in ["id", "name", "amount", "note"]]
    )
    assert result.rows == [
        {"id": "007", "name": "Smith, Jane", "amount": "12.50", "note": None},
        {"id": "8", "name": "two\nlines", "amount": "NA", "note": None},
        {"id": "9", "name": 'say "hi"', "amount": None, "note": "null"},
    ]
    assert result.numbers == [1, 2, 3]
    assert result.bad == []


def test_delimited_without_header_names_columns(tmp_path: Path) -> None:
    result = collect(
        write(tmp_path, "a.csv", b"1;x\n2;y"), FormatSpec("delimited", delimiter=";", header=False)
    )

    assert result.rows == [{"column_1": "1", "column_2": "x"}, {"column_1": "2", "column_2": "y"}]


def test_delimited_with_quoting_off_keeps_quotes(tmp_path: Path) -> None:
    result = collect(
        write(tmp_path, "a.csv", b'a|b\n"x|y"\n'), FormatSpec("delimited", delimiter="|", quote="")
    )

    assert result.rows == [{"a": '"x', "b": 'y"'}]


def test_small_blocks_give_many_batches_numbered_in_order(tmp_path: Path) -> None:
    result = collect(
        write(tmp_path, "a.csv", b"id,name,amount\n" + csv_lines(1000)), DELIMITED, block_size=1024
    )

    assert len(result.batches) > 10
    assert result.numbers == list(range(1, 1001))
    assert result.column("id") == [str(i) for i in range(1000)]


@pytest.mark.parametrize("block_size", [64, 8 << 20])
def test_ragged_rows_are_bad_records_with_their_numbers(tmp_path: Path, block_size: int) -> None:
    lines = [b"a,b,c"] + [b"%d,x,y" % i for i in range(1, 21)]
    lines[4] = b"4,x"  # record 4: a column short
    lines[9] = b"9,x,y,z"  # record 9: one too many
    lines[10] = b"10"  # record 10
    path = write(tmp_path, "a.csv", b"\n".join(lines) + b"\n")

    result = collect(path, DELIMITED, block_size=block_size)

    assert result.total == 20
    assert [(bad.record, bad.message, bad.raw) for bad in result.bad] == [
        (4, "expected 3 columns, found 2", "4,x"),
        (9, "expected 3 columns, found 4", "9,x,y,z"),
        (10, "expected 3 columns, found 1", "10"),
    ]
    assert all(bad.line is None for bad in result.bad)
    assert [int(row["a"]) for row in result.rows] == result.numbers
    assert result.numbers == [n for n in range(1, 21) if n not in (4, 9, 10)]
    if block_size == 8 << 20:
        assert result.batches[0].records == result.numbers  # interleaved: numbers given row by row


def test_latin1_is_decoded(tmp_path: Path) -> None:
    data = "nom,ville\nRené,Besançon\nZoë,Köln\n".encode("latin-1")

    result = collect(write(tmp_path, "a.csv", data), FormatSpec("delimited", encoding="ISO-8859-1"))

    assert result.rows == [{"nom": "René", "ville": "Besançon"}, {"nom": "Zoë", "ville": "Köln"}]


def test_utf8_bom_is_not_part_of_the_first_name(tmp_path: Path) -> None:
    result = collect(write(tmp_path, "a.csv", b"\xef\xbb\xbfid,name\n1,\xc3\xa9\n"), DELIMITED)

    assert result.rows == [{"id": "1", "name": "é"}]


@pytest.mark.parametrize("data", [b"a,b,c\n", b"a,b,c", b"a,b,c\r\n\r\n"])
def test_header_only_file_has_no_records(tmp_path: Path, data: bytes) -> None:
    result = collect(write(tmp_path, "a.csv", data), DELIMITED)

    assert result.total == 0


@pytest.mark.parametrize("spec", [DELIMITED, JSON, FormatSpec("delimited", compression="gzip")])
@pytest.mark.parametrize("data", [b"", b"\n\n"])
def test_empty_file_has_no_batches(tmp_path: Path, spec: FormatSpec, data: bytes) -> None:
    if spec.compression == "gzip":
        data = gzip.compress(data)

    result = collect(write(tmp_path, "a", data), spec)

    assert result.batches == []


def test_duplicate_column_names_make_the_file_unreadable(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile, match="'amount' more than once") as caught:
        collect(write(tmp_path, "a.csv", b"id,amount,amount\n1,2,3\n"), DELIMITED)
    assert isinstance(caught.value, Terminal)


def test_unclosed_quote_reads_the_rest_as_one_bad_record(tmp_path: Path) -> None:
    data = b'a,b,c\n1,x,y\n2,"x,y\n3,x,y\n4,x,y\n'

    result = collect(write(tmp_path, "a.csv", data), DELIMITED)

    assert result.column("a") == ["1"]
    [bad] = result.bad
    assert bad.record == 2
    assert "quote is never closed" in bad.message
    assert bad.raw is not None and bad.raw.startswith('2,"x,y\n3,x,y')


def test_record_longer_than_a_block_ends_the_file(tmp_path: Path) -> None:
    data = b"a,b,c\n" + csv_lines(200) + b"200,x," + b"y" * 5000 + b"\n" + csv_lines(10, 201)

    result = collect(write(tmp_path, "a.csv", data), DELIMITED, block_size=1024)

    assert 0 < len(result.rows) <= 200
    [bad] = result.bad
    assert bad.record == len(result.rows) + 1
    assert bad.raw is None
    assert bad.message.startswith(f"the rest of the file could not be read after record {len(result.rows)}: ")
    assert "block size of 1024 bytes" in bad.message


def test_invalid_utf8_mid_file_ends_the_file(tmp_path: Path) -> None:
    data = b"a,b,c\n" + csv_lines(500) + b"500,caf\xe9,1\n" + csv_lines(500, 501)

    result = collect(write(tmp_path, "a.csv", data), DELIMITED, block_size=2048)

    assert 0 < len(result.rows) < 500
    assert result.column("a") == [str(i) for i in range(len(result.rows))]  # what was read is kept, in order
    [bad] = result.bad
    assert f"after record {len(result.rows)}" in bad.message
    assert "not valid UTF-8" in bad.message


def test_utf8_declared_on_latin1_bytes_ends_the_file(tmp_path: Path) -> None:
    data = "a,b\n1,x\n2,Besançon\n3,y\n".encode("latin-1")

    result = collect(write(tmp_path, "a.csv", data), DELIMITED)

    assert result.rows == []
    [bad] = result.bad
    assert bad.record == 1
    assert "after record 0" in bad.message
    assert "ISO-8859-1" in bad.message


def test_header_in_the_wrong_encoding_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile, match="header line is not valid UTF-8"):
        collect(write(tmp_path, "a.csv", "année,b\n1,2\n".encode("latin-1")), DELIMITED)


# --------------------------------------------------------------------------------------------- compression


def deflated(data: bytes, compression: str) -> bytes:
    if compression == "gzip":
        return gzip.compress(data)
    if compression == "bzip2":
        return bz2.compress(data)
    if compression == "zlib":
        return zlib.compress(data)
    return zipped({"folder/": b"", "folder/data.csv": data, "__MACOSX/folder/._data.csv": b"junk"})


@pytest.mark.parametrize("compression", ["gzip", "bzip2", "zip", "zlib"])
def test_compressed_files_are_read_as_streams(
    tmp_path: Path, compression: Literal["gzip", "bzip2", "zip", "zlib"]
) -> None:
    data = b"id,name,amount\n" + csv_lines(5000)
    spec = FormatSpec(
        "delimited", compression="gzip" if compression == "zlib" else compression
    )  # zlib: "deflate"

    result = collect(write(tmp_path, "a.bin", deflated(data, compression)), spec, block_size=4096)

    assert result.total == 5000
    assert result.column("id") == [str(i) for i in range(5000)]


def test_zip_from_an_unseekable_stream() -> None:
    stream = unseekable(zipped({"data.json": b'{"a":1}\n{"a":2}\n'}))

    result = collect(stream, FormatSpec("json", compression="zip"))

    assert result.rows == [{"a": 1}, {"a": 2}]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (zipped({"a.csv": b"a\n1\n", "b.csv": b"a\n2\n"}), "exactly one file; this one holds 2"),
        (zipped({"empty/": b""}), "exactly one file; this one holds 0"),
        (b"PK\x03\x04 this is not really a zip archive", "not a valid zip archive"),
    ],
)
def test_zip_must_hold_one_file(tmp_path: Path, data: bytes, message: str) -> None:
    with pytest.raises(UnreadableFile, match=message):
        collect(write(tmp_path, "a.zip", data), FormatSpec("delimited", compression="zip"))


def test_concatenated_gzip_members_are_one_file(tmp_path: Path) -> None:
    data = gzip.compress(b"id,name,amount\n" + csv_lines(10)) + gzip.compress(csv_lines(10, 10))

    result = collect(write(tmp_path, "a.csv.gz", data), FormatSpec("delimited", compression="gzip"))

    assert result.column("id") == [str(i) for i in range(20)]


@pytest.mark.parametrize("compression", ["gzip", "bzip2"])
def test_zero_byte_compressed_file_is_empty(tmp_path: Path, compression: Literal["gzip", "bzip2"]) -> None:
    spec = FormatSpec("delimited", compression=compression)

    assert collect(write(tmp_path, "a", b""), spec).batches == []


@pytest.mark.parametrize("compression", ["gzip", "bzip2"])
def test_file_that_is_not_what_its_compression_says_is_unreadable(
    tmp_path: Path, compression: Literal["gzip", "bzip2"]
) -> None:
    spec = FormatSpec("delimited", compression=compression)

    with pytest.raises(UnreadableFile, match=f"could not be read as {compression} data"):
        collect(write(tmp_path, "a.csv", b"a,b\n1,2\n" * 100), spec)


@pytest.mark.parametrize(
    "spec", [FormatSpec("delimited", compression="gzip"), FormatSpec("json", compression="gzip")]
)
def test_truncated_gzip_keeps_what_was_read_then_one_bad_record(tmp_path: Path, spec: FormatSpec) -> None:
    if spec.format == "json":
        data = b"".join(b'{"id": %d, "spread": %d}\n' % (i, i * 7919 % 10007) for i in range(100_000))
    else:
        data = b"id,spread\n" + b"".join(b"%d,%d\n" % (i, i * 7919 % 10007) for i in range(100_000))
    packed = gzip.compress(data)
    cut = packed[: len(packed) // 2]
    readable = zlib.decompressobj(wbits=31).decompress(cut)
    complete = readable[: readable.rfind(b"\n")].count(b"\n") + (0 if spec.format == "delimited" else 1)

    result = collect(write(tmp_path, "a.gz", cut), spec, block_size=1 << 16)

    assert 0 < len(result.rows) < 100_000
    assert len(result.rows) == complete  # every record before the cut, none cut short
    assert [int(row["id"]) for row in result.rows] == list(range(len(result.rows)))
    [bad] = result.bad
    assert bad.record == len(result.rows) + 1
    assert bad.message == (
        f"the rest of the file could not be read after record {len(result.rows)}: "
        "the compressed data ends early (the file is truncated)"
    )


@pytest.mark.parametrize("compression", ["gzip", "zip", "none"])
def test_decompressed_size_guard(tmp_path: Path, compression: Literal["gzip", "zip", "none"]) -> None:
    data = b"a,b\n" + b"1,2\n" * 500_000  # 2 MB
    packed = {"gzip": gzip.compress, "zip": lambda d: zipped({"a.csv": d}), "none": bytes}[compression](data)
    path = write(tmp_path, "a", packed)
    spec = FormatSpec("delimited", compression=compression)

    with pytest.raises(UnreadableFile, match="more than 1000000 bytes when decompressed"):
        collect(path, spec, max_uncompressed=1_000_000)
    assert collect(path, spec, max_uncompressed=3_000_000).total == 500_000


@pytest.mark.parametrize(
    ("spec", "data"),
    [
        (DELIMITED, b"a,b\n" + b"1,2\n" * 50_000),
        (FormatSpec("delimited", compression="gzip"), gzip.compress(b"a,b\n" + csv_lines(50_000))),
        (JSON, b'{"a": 1}\n' * 50_000),
        (PARQUET, b"PAR1" + b"x" * 100_000),
    ],
)
def test_source_failures_are_raised_not_counted(spec: FormatSpec, data: bytes) -> None:
    with pytest.raises(SourceDropped):
        collect(dropping(data, after=len(data) // 2), spec, block_size=4096)


# ---------------------------------------------------------------------------------------------------- json


def test_json_lines_keep_json_types_and_nesting(tmp_path: Path) -> None:
    data = (
        b'{"id": 1, "name": "a", "at": "2024-05-01 10:00", "tags": ["x"], "address": {"city": "Paris", "zip": 75001}}\n'
        b"\n"
        b'{"id": 2, "name": null, "score": 1.5, "ok": true, "address": {"city": "Lyon"}}\n'
    )

    result = collect(write(tmp_path, "a.json", data), JSON)

    schema = result.batches[0].batch.schema
    assert schema.names == ["id", "name", "at", "tags", "address", "score", "ok"]
    assert schema.field("id").type == pa.int64()
    assert schema.field("at").type == pa.string()  # a time-like string stays as the file wrote it
    assert schema.field("tags").type == pa.list_(pa.string())
    assert pa.types.is_struct(schema.field("address").type)
    assert result.rows[0]["address"] == {"city": "Paris", "zip": 75001}
    assert result.rows[1]["at"] is None
    assert result.numbers == [1, 2]


def test_json_bad_line_is_a_bad_record_with_its_line(tmp_path: Path) -> None:
    data = b'{"a": 1}\n\n{"a": 2}\n{"a": 3,}\n{"a": 4}\n'

    result = collect(write(tmp_path, "a.jsonl", data), JSON)

    assert result.column("a") == [1, 2, 4]
    assert result.numbers == [1, 2, 4]
    [bad] = result.bad
    assert (bad.record, bad.line, bad.raw) == (3, 4, '{"a": 3,}')
    assert bad.message.startswith("invalid JSON: ")


def test_json_field_changing_type_is_a_bad_record(tmp_path: Path) -> None:
    data = b'{"a": 1, "b": {"c": 1}}\n{"a": 2, "b": {"c": "x"}}\n{"a": 3}\n{"a": "four"}\n{"a": 5.5}\n'

    result = collect(write(tmp_path, "a.json", data), JSON)

    assert result.column("a") == [1.0, 3.0, 5.5]
    assert [(bad.record, bad.line, bad.message) for bad in result.bad] == [
        (2, 2, "field 'b.c' is string where earlier records have number"),
        (4, 4, "field 'a' is string where earlier records have number"),
    ]


def test_json_trailing_garbage_and_truncated_last_line(tmp_path: Path) -> None:
    data = b'{"a": 1}\n{"a": 2} and more\n[1, 2]\n"text"\n{"a": 5, "b'

    result = collect(write(tmp_path, "a.json", data), JSON)

    assert result.rows == [{"a": 1}]
    assert [(bad.record, bad.line) for bad in result.bad] == [(2, 2), (3, 3), (4, 4), (5, 5)]
    assert result.bad[1].message == "expected a JSON object, found array"
    assert result.bad[2].message == "expected a JSON object, found string"


def test_json_invalid_utf8_line_is_one_bad_record(tmp_path: Path) -> None:
    result = collect(write(tmp_path, "a.json", b'{"a": "x"}\n{"a": "caf\xe9"}\n{"a": "z"}\n'), JSON)

    assert result.column("a") == ["x", "z"]
    [bad] = result.bad
    assert (bad.record, bad.message) == (2, "the line is not valid UTF-8 text")


def test_json_lines_across_blocks(tmp_path: Path) -> None:
    lines = [b'{"id": %d, "v": "%s"}' % (i, b"x" * (i % 50)) for i in range(1, 2001)]
    lines[1499] = b'{"id": 1500, "v": }'
    data = b"\n".join(lines)  # no final line break

    result = collect(write(tmp_path, "a.json", data), JSON, block_size=4096)

    assert len(result.batches) > 10
    assert result.total == 2000
    assert result.column("id") == [n for n in range(1, 2001) if n != 1500]
    assert result.numbers == result.column("id")
    [bad] = result.bad
    assert (bad.record, bad.line) == (1500, 1500)


def test_json_latin1(tmp_path: Path) -> None:
    data = '{"ville": "Besançon"}\n'.encode("latin-1")

    result = collect(write(tmp_path, "a.json", data), FormatSpec("json", encoding="ISO-8859-1"))

    assert result.rows == [{"ville": "Besançon"}]


def test_json_array_file(tmp_path: Path) -> None:
    data = b'\xef\xbb\xbf  [\n  {"a": 1, "b": {"c": [1, 2]}},\n  42,\n  {"a": 3}\n]  trailing\n'

    result = collect(write(tmp_path, "a.json", data), JSON)

    assert result.rows == [{"a": 1, "b": {"c": [1, 2]}}, {"a": 3, "b": None}]
    assert result.numbers == [1, 3]
    assert [(bad.record, bad.line, bad.message, bad.raw) for bad in result.bad] == [
        (2, 3, "expected a JSON object, found number", "42"),
        (4, 5, "unexpected text after the JSON array", "trailing"),
    ]


def test_broken_json_array_keeps_the_records_before_the_damage(tmp_path: Path) -> None:
    data = b'[{"a": 1},\n {"a": 2},\n {"a" 3},\n {"a": 4}]'

    result = collect(write(tmp_path, "a.json", data), JSON)

    assert result.column("a") == [1, 2]
    [bad] = result.bad
    assert bad.record == 3
    assert bad.message.startswith("the rest of the file could not be read after record 2: invalid JSON: ")
    assert "line 3" in bad.message


def test_json_array_over_64_mib_is_refused(tmp_path: Path) -> None:
    element = b'{"a": 1},'
    data = b"[" + element * ((65 << 20) // len(element)) + b'{"a": 1}]'
    path = write(tmp_path, "a.json.gz", gzip.compress(data, compresslevel=1))

    with pytest.raises(UnreadableFile) as caught:
        collect(path, FormatSpec("json", compression="gzip"))
    assert str(caught.value) == "JSON array files over 64 MiB are not supported; use JSON lines"


def test_pretty_printed_objects_are_records(tmp_path: Path) -> None:
    one = b'{\n  "a": 1,\n  "b": {"c": true}\n}\n'
    two = one + b'{\n  "a": 2\n}\n'

    assert collect(write(tmp_path, "one.json", one), JSON).rows == [{"a": 1, "b": {"c": True}}]
    assert collect(write(tmp_path, "two.json", two), JSON).rows == [
        {"a": 1, "b": {"c": True}},
        {"a": 2, "b": None},
    ]


@pytest.mark.parametrize(
    "data",
    [
        b'{"a": 1}\n{"b": "x", "a": 2}\n{"c": {"d": [1]}}\n{"a": "bad"}\n',  # line by line (a bad line)
        b'[{"a": 1}, {"b": "x", "a": 2}, {"c": {"d": [1]}}, {"a": "bad"}]',  # a JSON array
    ],
)
def test_fields_first_seen_in_later_records_are_kept(tmp_path: Path, data: bytes) -> None:
    result = collect(write(tmp_path, "a.json", data), JSON)

    assert result.rows == [
        {"a": 1, "b": None, "c": None},
        {"a": 2, "b": "x", "c": None},
        {"a": None, "b": None, "c": {"d": [1]}},
    ]
    assert [bad.record for bad in result.bad] == [4]


def test_json_objects_without_fields_still_count(tmp_path: Path) -> None:
    result = collect(write(tmp_path, "a.json", b"{}\n{}\n[]\n"), JSON)

    assert len(result.rows) == 2
    assert result.total == 3


# ------------------------------------------------------------------------------------------------- parquet


def parquet_bytes(table: pa.Table, **options: Any) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, **options)
    return buffer.getvalue()


def people(count: int) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(range(count), pa.int64()),
            "name": [f"n{i}" for i in range(count)],
            "address": [{"city": "Paris", "zip": i} for i in range(count)],
            "tags": [["a", "b"][: i % 3] for i in range(count)],
        }
    )


def test_parquet_from_a_seekable_file(tmp_path: Path) -> None:
    path = write(tmp_path, "a.parquet", parquet_bytes(people(150_000), row_group_size=40_000))

    result = collect(path, PARQUET)

    assert result.total == 150_000
    assert result.column("id") == list(range(150_000))
    assert result.rows[4] == {"id": 4, "name": "n4", "address": {"city": "Paris", "zip": 4}, "tags": ["a"]}


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_parquet_from_an_unseekable_stream_is_spooled(compression: Literal["none", "gzip"]) -> None:
    data = parquet_bytes(people(1000))
    if compression == "gzip":
        data = gzip.compress(data)

    result = collect(unseekable(data), FormatSpec("parquet", compression=compression))

    assert result.column("id") == list(range(1000))


@pytest.mark.parametrize("data", [b"id,name\n1,x\n", b"PAR1", b""])
def test_not_parquet_is_unreadable(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(UnreadableFile, match="not a Parquet file"):
        collect(write(tmp_path, "a.parquet", data), PARQUET)


def test_parquet_cut_short_is_unreadable() -> None:
    data = parquet_bytes(people(1000))

    with pytest.raises(UnreadableFile, match="not a Parquet file"):
        collect(unseekable(data[:-100]), PARQUET)


def test_parquet_guard_uses_the_declared_sizes(tmp_path: Path) -> None:
    path = write(
        tmp_path, "a.parquet", parquet_bytes(pa.table({"text": [f"{i:01000d}" for i in range(2000)]}))
    )
    assert path.stat().st_size < 200_000  # it compresses well: what counts is what it expands to

    with pytest.raises(UnreadableFile, match="possible decompression bomb"):
        collect(path, PARQUET, max_uncompressed=1_000_000)
    assert collect(path, PARQUET, max_uncompressed=3_000_000).total == 2000


def test_empty_parquet_has_no_records(tmp_path: Path) -> None:
    result = collect(write(tmp_path, "a.parquet", parquet_bytes(people(0))), PARQUET)

    assert result.total == 0


# --------------------------------------------------------------------------------------- detection, specs


@pytest.mark.parametrize(
    ("name", "head", "expected"),
    [
        ("orders.csv", b"id,name\n1,x\n", FormatSpec("delimited")),
        (
            "orders.csv.gz",
            gzip.compress(b"id;name;city\n1;x;y\n2;z;w\n"),
            FormatSpec("delimited", ";", compression="gzip"),
        ),
        ("orders", bz2.compress(b"id|name\n1|x\n"), FormatSpec("delimited", "|", compression="bzip2")),
        ("orders.tsv", b"id\tname,with comma\n1\tx\n", FormatSpec("delimited", "\t")),
        ("orders.txt", b"id~name~city\n1~a,b~c\n", FormatSpec("delimited", "~")),
        (
            "orders.dat",
            "id;ville\n1;Besançon\n".encode("latin-1"),
            FormatSpec("delimited", ";", encoding="ISO-8859-1"),
        ),
        ("events", b'{"a": 1}\n', FormatSpec("json")),
        ("events.txt", b"  [{}]", FormatSpec("json")),
        ("events.ndjson", b"", FormatSpec("json")),
        ("events.json.gz", b"", FormatSpec("json", compression="gzip")),
        ("data.bin", b"PAR1\x15\x04", FormatSpec("parquet")),
        (
            "export.zip",
            zipped({"folder/": b"", "folder/events.jsonl": b'{"a": 1}\n'}),
            FormatSpec("json", compression="zip"),
        ),
        ("export.zip", zipped({"t.csv": b"a;b\n1;2\n"}), FormatSpec("delimited", ";", compression="zip")),
    ],
)
def test_detect(name: str, head: bytes, expected: FormatSpec) -> None:
    assert detect(name, head[: 64 << 10]) == expected


def test_detect_refuses_tar() -> None:
    with pytest.raises(UnreadableFile, match="tar archives are not supported"):
        detect("backup.tar.gz", b"")


def test_declared_properties_win_over_detection() -> None:
    data = {
        "format": "delimited",
        "properties": {"columnDelimiter": ";", "encoding": "ISO-8859-1", "compressionType": "gzip"},
    }

    spec = spec_from_connection(data, "a.json", b'{"a": 1}\n')

    assert spec == FormatSpec("delimited", ";", encoding="ISO-8859-1", compression="gzip")


def test_undeclared_properties_are_detected() -> None:
    spec = spec_from_connection({"format": "delimited"}, "a.csv.gz", gzip.compress(b"a|b\n1|2\n"))

    assert spec == FormatSpec("delimited", "|", compression="gzip")


@pytest.mark.parametrize(
    ("declared", "compression"),
    [("zipDeflate", "zip"), ("deflate", "gzip"), ("GZIP", "gzip"), ("bzip2", "bzip2"), ("none", "none")],
)
def test_adobe_compression_names(declared: str, compression: str) -> None:
    spec = spec_from_connection({"format": "json", "properties": {"compressionType": declared}}, "a", b"")

    assert spec.compression == compression


def test_tab_written_as_backslash_t() -> None:
    spec = spec_from_connection({"format": "delimited", "properties": {"columnDelimiter": "\\t"}}, "a", b"")

    assert spec.delimiter == "\t"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"format": "delimited", "properties": {"compressionType": "tarGzip"}},
            "tar archives are not supported",
        ),
        ({"format": "delimited", "properties": {"compressionType": "rar"}}, "compressionType 'rar'"),
        ({"format": "delimited", "properties": {"columnDelimiter": ";;"}}, "single character"),
        ({"format": "delimited", "properties": {"encoding": "UTF-16"}}, "encoding 'UTF-16'"),
        ({"format": "tabular"}, "format 'tabular'"),
    ],
)
def test_bad_declarations_are_refused(data: dict[str, Any], message: str) -> None:
    with pytest.raises(UnreadableFile, match=message):
        spec_from_connection(data, "a.csv", b"a,b\n")


def test_spec_round_trip_reads_the_file(tmp_path: Path) -> None:
    data = gzip.compress("id;ville\n1;Besançon\n".encode("latin-1"))
    path = write(tmp_path, "a.csv.gz", data)

    spec = spec_from_connection({"format": "delimited"}, path.name, data[: 64 << 10])

    assert collect(path, spec).rows == [{"id": "1", "ville": "Besançon"}]


# ------------------------------------------------------------------------------------------------- preview


def test_preview_of_delimited_infers_types(tmp_path: Path) -> None:
    data = (
        b"id,price,active,seen,zip,note,empty\n"
        b"1,2.5,true,2024-05-01T10:00:00Z,007,x,\n"
        b"2,3,FALSE,2024-05-02 11:30:00,75001,y,\n"
        b"oops\n"
        b"3,-1e3,true,2024-05-03T00:00:00+02:00,01000,z,\n"
    )

    columns, rows = preview(write(tmp_path, "a.csv", data).open("rb"), DELIMITED, rows=2)

    assert columns == [
        {"name": "id", "type": "integer"},
        {"name": "price", "type": "number"},
        {"name": "active", "type": "boolean"},
        {"name": "seen", "type": "date-time"},
        {"name": "zip", "type": "string"},
        {"name": "note", "type": "string"},
        {"name": "empty", "type": "string"},
    ]
    assert rows == [
        {
            "id": 1,
            "price": 2.5,
            "active": True,
            "seen": "2024-05-01T10:00:00Z",
            "zip": "007",
            "note": "x",
            "empty": None,
        },
        {
            "id": 2,
            "price": 3.0,
            "active": False,
            "seen": "2024-05-02 11:30:00",
            "zip": "75001",
            "note": "y",
            "empty": None,
        },
    ]


def test_preview_of_json(tmp_path: Path) -> None:
    data = (
        b'{"id": 1, "score": 0.5, "ok": true, "tags": ["a"], "who": {"name": "x"}, "at": "2024-05-01 10:00"}\n'
        * 20
    )

    columns, rows = preview(write(tmp_path, "a.json", data).open("rb"), JSON)

    assert columns == [
        {"name": "id", "type": "integer"},
        {"name": "score", "type": "number"},
        {"name": "ok", "type": "boolean"},
        {"name": "tags", "type": "array"},
        {"name": "who", "type": "object"},
        {"name": "at", "type": "string"},
    ]
    assert len(rows) == 10
    assert rows[0] == {
        "id": 1,
        "score": 0.5,
        "ok": True,
        "tags": ["a"],
        "who": {"name": "x"},
        "at": "2024-05-01 10:00",
    }


def test_preview_of_parquet_is_json_able(tmp_path: Path) -> None:
    table = pa.table(
        {
            "at": pa.array([datetime(2024, 5, 1, 10, 0, tzinfo=UTC)] * 3, pa.timestamp("ms", tz="UTC")),
            "amount": pa.array([Decimal("1.25")] * 3, pa.decimal128(10, 2)),
            "blob": pa.array([b"\x00\x01"] * 3),
            "ratio": pa.array([float("nan"), 1.5, 2.0]),
        }
    )
    path = write(tmp_path, "a.parquet", parquet_bytes(table))

    columns, rows = preview(path.open("rb"), PARQUET, rows=2)

    assert [column["type"] for column in columns] == ["date-time", "number", "string", "number"]
    assert rows[0] == {"at": "2024-05-01T10:00:00+00:00", "amount": 1.25, "blob": "AAE=", "ratio": None}
    assert len(rows) == 2
    json.dumps(rows, allow_nan=False)
