"""A corpus of bad source files, made on demand: truncated, mis-encoded, malformed, huge, hostile.

The files are generated (into a temporary folder by the tests, or anywhere with
`python -m tests.corpus.make_bad_files OUT`) rather than committed, because the interesting ones are
large (a 50 MB line, a zip bomb that expands to a gibibyte) and because a script says exactly what
is wrong with each file, where a binary blob in the repository would not. The output is
deterministic: no random data, no timestamps in gzip or zip headers, so two runs write the same bytes.

Every file's rows follow the Customers schema of the tests (`id,name,email,amount,signup,active`),
so a run over a file fails only for the damage the file was made to have.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["HEADER", "BadFile", "make"]

HEADER = ["id", "name", "email", "amount", "signup", "active"]
LONG_LINE_BYTES = 50 * 10**6  # "a 50 MB single line"
BOMB_BYTES = 1 << 30  # what the zip and gzip bombs expand to
_ZIP_TIME = (2026, 1, 1, 0, 0, 0)  # fixed, so the archives are the same bytes on every run

Format = Literal["delimited", "json", "parquet"]


@dataclass(frozen=True, slots=True)
class BadFile:
    """One file of the corpus: where it is, how a source connection should declare it, what is wrong."""

    name: str  # the file's name in the corpus folder
    format: Format  # the source connection's `data.format`
    what: str  # what is wrong with it, for people
    properties: dict[str, str] = field(default_factory=dict)  # `data.properties` (compression, encoding)

    @property
    def data(self) -> dict[str, Any]:
        """The source connection's `data` object for this file."""
        return {"format": self.format, **({"properties": self.properties} if self.properties else {})}


# ------------------------------------------------------------------------------------------------ rows


def _row(customer: int, name: str | None = None) -> list[str]:
    return [
        str(customer),
        name if name is not None else f"name {customer}",
        f"c{customer}@example.com",
        f"{customer}.50",
        "2026-01-15",
        "true",
    ]


def _line(fields: list[str]) -> str:
    return ",".join(fields) + "\n"


def _csv(count: int, start: int = 1, header: bool = True) -> str:
    return (_line(HEADER) if header else "") + "".join(_line(_row(i)) for i in range(start, start + count))


def _object(customer: int, **changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": customer,
        "name": f"name {customer}",
        "email": f"c{customer}@example.com",
        "amount": customer + 0.5,
        "signup": "2026-01-15",
        "active": True,
    }
    record.update(changes)
    return record


def _json_lines(count: int, start: int = 1) -> str:
    return "".join(json.dumps(_object(i)) + "\n" for i in range(start, start + count))


# ------------------------------------------------------------------------------------------------ files


def _truncated_gzip() -> bytes:
    whole = gzip.compress(_csv(2000).encode(), compresslevel=6, mtime=0)
    return whole[: len(whole) * 6 // 10]  # cut inside the deflate stream: no trailer, no end marker


def _latin1() -> bytes:
    # A Latin-1 export (names with accents) whose source connection says UTF-8.
    rows = "".join(_line(_row(i, f"Renée {i}")) for i in range(1, 101))
    return (_line(HEADER) + rows).encode("latin-1")


def _utf16() -> bytes:
    # What spreadsheet programs write as "Unicode text": UTF-16 with its byte order mark.
    return b"\xff\xfe" + _csv(100).encode("utf-16-le")


def _bom_csv() -> bytes:
    return b"\xef\xbb\xbf" + _csv(100).encode()


def _bom_json() -> bytes:
    return b"\xef\xbb\xbf" + _json_lines(100).encode()


def _ragged() -> bytes:
    lines = [_line(HEADER)]
    for i in range(1, 101):
        row = _row(i)
        if i in (10, 20, 30):
            row = row[:-1]  # a column short
        elif i in (40, 50):
            row = [*row, "extra"]  # a column too many
        lines.append(_line(row))
    return "".join(lines).encode()


def _unclosed_quote() -> bytes:
    lines = [_line(HEADER)]
    for i in range(1, 101):
        row = _row(i)
        if i == 90:
            row[1] = '"name 90'  # opens a quote no later character closes
        lines.append(_line(row))
    return "".join(lines).encode()


def _long_line_csv(size: int) -> bytes:
    long = _line(_row(11, "x" * size))
    return (_csv(10) + long + _csv(10, start=12, header=False)).encode()


def _long_line_json(size: int) -> bytes:
    long = json.dumps(_object(11, name="x" * size)) + "\n"
    return (_json_lines(10) + long + _json_lines(10, start=12)).encode()


def _wrong_types_csv() -> bytes:
    lines = [_line(HEADER)]
    for i in range(1, 51):
        lines.append(_line([f"id-{i}", "n" * 60, f"not an email {i}", "lots", "2026-13-45", "maybe"]))
    return "".join(lines).encode()


def _wrong_types_json() -> bytes:
    return "".join(
        json.dumps(
            {
                "id": f"x{i}",
                "name": {"first": "Ada"},
                "email": i,
                "amount": "ten",
                "signup": False,
                "active": "yes",
            }
        )
        + "\n"
        for i in range(1, 51)
    ).encode()


def _duplicate_columns() -> bytes:
    header = ["id", "name", "email", "email", "amount", "signup", "active"]
    rows = "".join(
        _line([str(i), f"n{i}", f"a{i}@x.org", f"b{i}@x.org", "1", "2026-01-15", "true"])
        for i in range(1, 11)
    )
    return (_line(header) + rows).encode()


def _trailing_garbage_lines() -> bytes:
    return (_json_lines(20) + "}} this is not JSON {{\n").encode()


def _trailing_garbage_array() -> bytes:
    return (json.dumps([_object(i) for i in range(1, 21)], indent=1) + "\n]] trailing garbage\n").encode()


def _mismatched_parquet() -> bytes:
    # Written by some other pipeline: `id` as text, `amount` as a boolean, no `email`, an extra column.
    table = pa.table(
        {
            "id": pa.array([str(i) if i % 5 else f"#{i}" for i in range(1, 51)], pa.string()),
            "name": pa.array([f"name {i}" for i in range(1, 51)], pa.string()),
            "amount": pa.array([i % 2 == 0 for i in range(1, 51)], pa.bool_()),
            "unexpected": pa.array(range(1, 51), pa.int64()),
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _duplicate_columns_parquet() -> bytes:
    # Arrow and Parquet allow two columns of one name; which one a reader takes is anyone's guess.
    columns = [
        pa.array(range(1, 11), pa.int64()),
        pa.array([f"a{i}@x.org" for i in range(1, 11)]),
        pa.array([f"b{i}@x.org" for i in range(1, 11)]),
    ]
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_arrays(columns, names=["id", "email", "email"]), sink)
    return sink.getvalue()


def _deep_json() -> bytes:
    # 100,000 nested arrays in one 200 KB line: pyarrow's JSON reader recursed per level and crashed.
    deep = '{"id": 11, "email": "c11@example.com", "nested": ' + "[" * 100_000 + "]" * 100_000 + "}\n"
    return (_json_lines(10) + deep + _json_lines(10, start=12)).encode()


def _sparse_keys() -> bytes:
    # Each record names a field no other record has: Arrow keeps every field for every row, nulls too.
    return "".join(json.dumps({**_object(i), f"extra_{i}": i}) + "\n" for i in range(1, 30_001)).encode()


def _wide_header() -> bytes:
    names = [*HEADER, *(f"column_{i}" for i in range(200_000))]
    return (_line(names) + _line([*_row(1), *("" for _ in range(200_000))])).encode()


def _bomb_rows(size: int) -> tuple[bytes, bytes, int]:
    """(first piece: header and rows, the piece repeated, how many times) of a CSV of about `size` bytes."""
    row = _line(_row(1)).encode()
    piece = row * ((1 << 20) // len(row))
    return _line(HEADER).encode() + piece, piece, max(1, size // len(piece))


def _gzip_bomb(size: int) -> bytes:
    # gzip members may follow one another and decompress as one file: one member per MiB, each ~1 KiB.
    first, piece, count = _bomb_rows(size)
    member = gzip.compress(piece, compresslevel=9, mtime=0)
    return gzip.compress(first, compresslevel=9, mtime=0) + member * (count - 1)


def _zip_bomb(size: int) -> bytes:
    """A zip whose one entry is ~`size` bytes of CSV, declared honestly, in ~1/1000 of that.

    The deflate stream is built from full-flush blocks: after a full flush the compressor starts
    afresh, so compressing the same MiB again gives the same bytes, and the block is repeated instead
    of compressing a gibibyte.
    """
    first, piece, count = _bomb_rows(size)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = compressor.compress(first) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(piece) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(piece) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert block == again, "a full flush must make the compressor's output repeatable"
    stream = head + block * (count - 1) + compressor.flush()
    crc = zlib.crc32(first)
    for _ in range(count - 1):
        crc = zlib.crc32(piece, crc)
    expanded = len(first) + len(piece) * (count - 1)
    return _zip_of(b"bomb.csv", stream, crc, expanded)


def _zip_of(name: bytes, deflated: bytes, crc: int, size: int) -> bytes:
    """A one-entry zip archive around an already deflated stream (zipfile can only compress itself)."""
    dos_date = ((_ZIP_TIME[0] - 1980) << 9) | (_ZIP_TIME[1] << 5) | _ZIP_TIME[2]
    local = struct.pack(
        "<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, dos_date, crc, len(deflated), size, len(name), 0
    )
    central = struct.pack(
        "<IHHHHHHIIIHHHHHII",
        0x02014B50,
        20,
        20,
        0,
        8,
        0,
        dos_date,
        crc,
        len(deflated),
        size,
        len(name),
        0,
        0,
        0,
        0,
        0,
        0,
    )
    body = local + name + deflated
    directory = central + name
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(directory), len(body), 0)
    return body + directory + end


def _zip_named(entry: str) -> bytes:
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo(entry, date_time=_ZIP_TIME), _csv(10))
    return sink.getvalue()


def _plain_declared_gzip() -> bytes:
    return _csv(10).encode()


# --------------------------------------------------------------------------------------------- the corpus


def make(
    folder: Path, *, long_line_bytes: int = LONG_LINE_BYTES, bomb_bytes: int = BOMB_BYTES
) -> list[BadFile]:
    """Write every file of the corpus into `folder` (created if missing); the files, in a fixed order."""
    utf8 = {"encoding": "UTF-8"}
    corpus: list[tuple[BadFile, Callable[[], bytes]]] = [
        (BadFile("truncated.csv.gz", "delimited", "a gzip cut off at 60 % of its bytes"), _truncated_gzip),
        (
            BadFile("latin1.csv", "delimited", "Latin-1 text declared as UTF-8", properties=utf8),
            _latin1,
        ),
        (BadFile("utf16.csv", "delimited", "UTF-16 text with a byte order mark"), _utf16),
        (BadFile("bom.csv", "delimited", "a UTF-8 byte order mark before the header"), _bom_csv),
        (BadFile("bom.json", "json", "a UTF-8 byte order mark before the first JSON line"), _bom_json),
        (BadFile("ragged.csv", "delimited", "5 of 100 rows with a column short or too many"), _ragged),
        (
            BadFile("unclosed_quote.csv", "delimited", "a quote opened in row 90, never closed"),
            _unclosed_quote,
        ),
        (
            BadFile("long_line.csv", "delimited", f"a {long_line_bytes:,}-byte record between good rows"),
            lambda: _long_line_csv(long_line_bytes),
        ),
        (
            BadFile("long_line.json", "json", f"a {long_line_bytes:,}-byte JSON line between good lines"),
            lambda: _long_line_json(long_line_bytes),
        ),
        (
            BadFile("wrong_types.csv", "delimited", "a wrong value in every column of every row"),
            _wrong_types_csv,
        ),
        (
            BadFile("wrong_types.json", "json", "a wrong JSON type in every field of every line"),
            _wrong_types_json,
        ),
        (BadFile("deep.json", "json", "a line nested 100,000 arrays deep between good lines"), _deep_json),
        (
            BadFile("sparse_keys.json", "json", "30,000 JSON lines, each with a field of its own"),
            _sparse_keys,
        ),
        (BadFile("wide_header.csv", "delimited", "a header of 200,006 columns"), _wide_header),
        (BadFile("empty.csv", "delimited", "zero bytes"), lambda: b""),
        (BadFile("empty.json", "json", "zero bytes"), lambda: b""),
        (BadFile("header_only.csv", "delimited", "a header and no rows"), lambda: _line(HEADER).encode()),
        (BadFile("duplicate_columns.csv", "delimited", "the header names `email` twice"), _duplicate_columns),
        (
            BadFile("duplicate_columns.parquet", "parquet", "two columns named `email`"),
            _duplicate_columns_parquet,
        ),
        (
            BadFile("trailing_garbage.json", "json", "JSON lines, then a line of garbage"),
            _trailing_garbage_lines,
        ),
        (
            BadFile("trailing_garbage_array.json", "json", "a JSON array, then garbage after it"),
            _trailing_garbage_array,
        ),
        (
            BadFile(
                "mismatched.parquet", "parquet", "id as text, amount as boolean, no email, an extra column"
            ),
            _mismatched_parquet,
        ),
        (
            BadFile("bomb.zip", "delimited", f"a zip whose entry expands to {bomb_bytes:,} bytes"),
            lambda: _zip_bomb(bomb_bytes),
        ),
        (
            BadFile("bomb.csv.gz", "delimited", f"gzip members that expand to {bomb_bytes:,} bytes"),
            lambda: _gzip_bomb(bomb_bytes),
        ),
        (
            BadFile("zip_slip.zip", "delimited", "a zip entry named ../../evil.csv"),
            lambda: _zip_named("../../evil.csv"),
        ),
        (
            BadFile("zip_absolute.zip", "delimited", "a zip entry named /tmp/evil.csv"),
            lambda: _zip_named("/tmp/evil.csv"),
        ),
        (
            BadFile(
                "plain_declared_gzip.csv",
                "delimited",
                "plain text whose source connection says gzip",
                properties={"compressionType": "gzip"},
            ),
            _plain_declared_gzip,
        ),
    ]
    folder.mkdir(parents=True, exist_ok=True)
    for bad, content in corpus:
        (folder / bad.name).write_bytes(content())
    return [bad for bad, _ in corpus]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("folder", type=Path, help="where to write the files")
    parser.add_argument("--long-line-bytes", type=int, default=LONG_LINE_BYTES)
    parser.add_argument("--bomb-bytes", type=int, default=BOMB_BYTES)
    args = parser.parse_args(argv)
    for bad in make(args.folder, long_line_bytes=args.long_line_bytes, bomb_bytes=args.bomb_bytes):
        size = (args.folder / bad.name).stat().st_size
        print(f"{bad.name:32} {size:>12,} bytes  {bad.what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
