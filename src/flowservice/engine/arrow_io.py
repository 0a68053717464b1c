"""Reading source files into Arrow record batches: delimited text, JSON and Parquet, plain or compressed.

This is the only module that does pyarrow file I/O for source formats, because every byte a dataflow
ingests passes through it and the run's numbers are only as honest as this reading is. Three rules
follow from the run invariant *input = output + failed* (DESIGN.md §4):

- Every record gets a number, whether it parsed or not. A record that cannot be parsed becomes a
  `BadRecord` (`INGEST-1401-400`) and never aborts the file, so partial ingestion can keep the rest.
- When the rest of a file cannot be read (a truncated gzip, a quote never closed, a record longer than
  the block, bytes that are not the declared encoding), what was read is kept and the remainder is
  reported as one more bad record saying after which record reading stopped. Raising instead would
  lose the count of what was already read.
- `UnreadableFile` (Terminal) is for a file that as a whole is not what it claims to be: not gzip, not
  Parquet, a zip with two files or an entry named `../…`, a zip bomb, UTF-16 text, two columns of one
  name. A retry cannot fix it. Failures of the source itself (the
  network, a Transient error raised by a connector's stream) are re-raised unchanged, never turned into
  bad records: a retry can fix those.

Memory stays bounded: files are read as streams of blocks (`block_size`), decompression streams too.
The one exception is a JSON document that is not JSON lines (a top-level array, or pretty-printed
objects), which must be parsed whole and is limited to 64 MiB. Width and depth are bounded too, since
Arrow keeps a value of every column for every row: at most FIELD_LIMIT columns (a header, a Parquet
schema, the fields a JSON file's records name), JSON batches of at most `_JSON_CELLS` rows × fields,
and JSON records at most JSON_DEPTH_LIMIT levels deep (pyarrow's JSON reader crashes the process on
deep nesting, so such lines never reach it).

Typing is not done here: delimited columns are all strings (validation types them per row, so one bad
value rejects one record, not a column); JSON keeps its own types (number, string, boolean, object,
array) and Parquet its schema.
"""

from __future__ import annotations

import base64
import bz2
import codecs
import contextlib
import csv
import dataclasses
import io
import json
import math
import re
import tempfile
import threading
import zipfile
import zlib
from collections import Counter, deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import PurePosixPath
from typing import IO, Any, BinaryIO, Literal, TypeAlias, cast

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from flowservice.errors import Terminal, Transient

__all__ = [
    "CORRUPT_RECORD",
    "JSON_DOCUMENT_LIMIT",
    "BadRecord",
    "FormatSpec",
    "SourceBatch",
    "UnreadableFile",
    "detect",
    "preview",
    "read",
    "spec_from_connection",
]

Format: TypeAlias = Literal["delimited", "json", "parquet"]
Encoding: TypeAlias = Literal["UTF-8", "ISO-8859-1"]
Compression: TypeAlias = Literal["none", "gzip", "bzip2", "zip"]

CORRUPT_RECORD = "INGEST-1401-400"
"""The code of a record that cannot be parsed (DESIGN.md §6)."""

JSON_DOCUMENT_LIMIT = 64 << 20
"""A JSON file that is not JSON lines is parsed whole; above this many (uncompressed) bytes it is refused."""

_JSON_LINE_LIMIT = 64 << 20  # one JSON line longer than this ends the file: memory must stay bounded
JSON_DEPTH_LIMIT = 64
"""A JSON record nested deeper than this many objects and arrays is a bad record.

pyarrow's JSON reader recurses once per level and takes the whole process down (SIGSEGV) at about
10,000 levels, a line of 20 KB; Python's json stops at its recursion limit. No schema is this deep.
"""
FIELD_LIMIT = 10_000
"""Most columns a file may name (a header, a Parquet schema, the fields of a JSON file's records).

Arrow keeps a column per field for every row, and pyarrow's readers cost kilobytes per column: an 8 MB
header of 600,000 names took 3 GB to read, and 700 KB of JSON lines each naming a field of its own
took 10 GB (30,000 columns × 30,000 rows of nulls).
"""
_JSON_CELLS = 1 << 24  # rows × fields one JSON parse may build (nulls included): ~200 MB at worst
_PIECE_LINES = 4096  # the most lines of a JSON piece parsed at once when its fields are not yet known
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}\n")  # what `_may_nest_deeper` deletes
_BRACKET_RUN = re.compile(rb"[^\n]{%d,}" % (JSON_DEPTH_LIMIT + 1))
_HEAD = 64 << 10  # what detection looks at, and the granularity of peeking at a stream's start
_RAW_LIMIT = 1000
_MESSAGE_LIMIT = 300
_PARQUET_BATCH_ROWS = 65_536
_DOCUMENT_BATCH_ROWS = 65_536
_PREVIEW_BLOCK = 1 << 20
_SPOOL_CHUNK = 1 << 20
_INT64 = 1 << 63

_UTF8_BOM = b"\xef\xbb\xbf"
_WIDE_BOMS = (  # UTF-32 first: its little-endian mark starts with UTF-16's
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)
_LONE_SURROGATE = re.compile("[\udc80-\udcff]")
_DELIMITERS = (",", ";", "\t", "|", "~")
_JSON_EXTENSIONS = (".json", ".jsonl", ".ndjson")
_COMPRESSION_EXTENSIONS: dict[str, Compression] = {
    ".gz": "gzip",
    ".gzip": "gzip",
    ".bz2": "bzip2",
    ".zip": "zip",
}
_COMPRESSION_NAMES: dict[str, Compression] = {
    "none": "none",
    "gzip": "gzip",
    "bzip2": "bzip2",
    "zip": "zip",
    "zipdeflate": "zip",
    # Adobe's "deflate" is a zlib stream; the gzip decoder here detects a zlib header as well as gzip's.
    "deflate": "gzip",
}
_ENCODING_NAMES: dict[str, Encoding] = {
    "utf-8": "UTF-8",
    "utf8": "UTF-8",
    "iso-8859-1": "ISO-8859-1",
    "iso8859-1": "ISO-8859-1",
    "latin1": "ISO-8859-1",
    "latin-1": "ISO-8859-1",
}
_TAR_REFUSED = (
    "tar archives are not supported: compress each file on its own with gzip, bzip2 or zip "
    "(compressionType gzip, bzip2 or zipDeflate)"
)


class UnreadableFile(Terminal):
    """The whole file (or its remainder) cannot be read: not gzip, not parquet, bad zip, zip bomb…

    The message is safe to show a user: it says what is wrong with the file, never a path on this
    machine or a stack trace.
    """


@dataclass(frozen=True, slots=True)
class FormatSpec:
    """How to read one file: its format and the properties a source connection may declare."""

    format: Format
    delimiter: str = ","
    quote: str = '"'  # "" turns quoting off
    header: bool = True  # delimited: the first record holds column names (else column_1, column_2, ...)
    encoding: Encoding = "UTF-8"
    compression: Compression = "none"

    def __post_init__(self) -> None:
        if len(self.delimiter) != 1 or self.delimiter in '\r\n"':
            raise ValueError(
                f"delimiter must be one character other than a quote or line break: {self.delimiter!r}"
            )
        if len(self.quote) > 1 or self.quote == self.delimiter:
            raise ValueError(
                f"quote must be one character (or empty) other than the delimiter: {self.quote!r}"
            )


@dataclass(frozen=True, slots=True)
class BadRecord:
    """A record that could not be parsed, or (last in a file) the remainder that could not be read."""

    record: int  # 1-based record number within the file (count of records before it + 1)
    line: int | None  # physical line number when known (JSON), else None
    code: str  # CORRUPT_RECORD
    message: str  # why, at most ~300 characters
    raw: str | None  # the raw text of the record, cut to 1,000 characters, when available
    remainder: bool = False  # the rest of the file, which could not be read (the file was not read whole)


@dataclass(slots=True)
class SourceBatch:
    """Records that parsed, with their record numbers, and the bad records met since the previous batch."""

    batch: pa.RecordBatch  # the records that parsed, columns named as in the file
    first_record: int  # record number (1-based) of row 0; rows are consecutive unless `records` is set
    records: list[int] | None  # each row's record number, when bad records were interleaved (else None)
    bad: list[BadRecord]  # records that failed to parse since the previous SourceBatch


# --------------------------------------------------------------------------------------------- detection


def detect(file_name: str, head: bytes) -> FormatSpec:
    """Guess how to read a file from its name and first bytes (up to 64 KiB): Adobe's `determineProperties`.

    Magic bytes decide the compression (gzip, bzip2, zip); a Parquet magic or a known extension decides
    the format, else the first character of the (decompressed) sample ('{' or '[' is JSON); the delimiter
    is the one among , ; TAB | ~ that splits the sample's lines into the same number of fields.
    """
    return spec_from_connection({}, file_name, head)


def spec_from_connection(data: dict[str, Any], file_name: str, head: bytes) -> FormatSpec:
    """The FormatSpec for one file of a source connection: declared properties win, the rest is detected.

    `data` is the source connection's `data` object, e.g. `{"format": "delimited", "properties":
    {"columnDelimiter": ";", "encoding": "ISO-8859-1", "compressionType": "gzip"}}`.
    """
    properties = data.get("properties") or {}
    if not isinstance(properties, dict):
        properties = {}

    declared_compression = properties.get("compressionType")
    compression = (
        _compression_named(declared_compression)
        if declared_compression is not None
        else _compression_of(file_name, head)
    )
    member_name, sample = _sample(head, compression)
    if sample[257:262] == b"ustar" or _inner_name(file_name, compression).lower().endswith((".tar", ".tgz")):
        raise UnreadableFile(_TAR_REFUSED)
    name = member_name or _inner_name(file_name, compression)
    guessed_format, guessed_delimiter, guessed_encoding = _guess(name, sample)

    declared_format = data.get("format")
    fmt = _format_named(declared_format) if declared_format is not None else guessed_format
    declared_delimiter = properties.get("columnDelimiter")
    delimiter = _delimiter_named(declared_delimiter) if declared_delimiter is not None else guessed_delimiter
    declared_encoding = properties.get("encoding")
    encoding = _encoding_named(declared_encoding) if declared_encoding is not None else guessed_encoding
    return FormatSpec(format=fmt, delimiter=delimiter, encoding=encoding, compression=compression)


def _format_named(value: object) -> Format:
    name = str(value).strip().lower()
    if name == "delimited":
        return "delimited"
    if name == "json":
        return "json"
    if name == "parquet":
        return "parquet"
    raise UnreadableFile(
        f"format {value!r} is not a file format this service reads: use delimited, json or parquet"
    )


def _compression_named(value: object) -> Compression:
    name = str(value).strip().lower()
    if name in ("tar", "targzip"):
        raise UnreadableFile(_TAR_REFUSED)
    if name not in _COMPRESSION_NAMES:
        raise UnreadableFile(
            f"compressionType {value!r} is not supported: use none, gzip, bzip2, zip, zipDeflate or deflate"
        )
    return _COMPRESSION_NAMES[name]


def _encoding_named(value: object) -> Encoding:
    name = str(value).strip().lower()
    if name not in _ENCODING_NAMES:
        raise UnreadableFile(f"encoding {value!r} is not supported: use UTF-8 or ISO-8859-1")
    return _ENCODING_NAMES[name]


def _delimiter_named(value: object) -> str:
    text = str(value)
    # Query strings and hand-written JSON often carry a tab as the two characters backslash and t.
    if text in ("\\t", "tab", "TAB"):
        text = "\t"
    if len(text) != 1 or not text.isascii() or text in '\r\n"':
        raise UnreadableFile(
            f"columnDelimiter {value!r} must be a single character (not a quote or line break)"
        )
    return text


def _compression_of(file_name: str, head: bytes) -> Compression:
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"BZh"):
        return "bzip2"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head:
        return "none"
    return _COMPRESSION_EXTENSIONS.get(PurePosixPath(file_name).suffix.lower(), "none")


def _inner_name(file_name: str, compression: Compression) -> str:
    """`data.csv.gz` -> `data.csv`: the name that tells the format of what is inside."""
    path = PurePosixPath(file_name)
    if compression != "none" and path.suffix.lower() in _COMPRESSION_EXTENSIONS:
        return path.stem
    return path.name


def _sample(head: bytes, compression: Compression) -> tuple[str | None, bytes]:
    """The start of the file's content, decompressed as far as `head` allows (best effort, never raises)."""
    try:
        if compression == "gzip":
            return None, zlib.decompressobj(wbits=47).decompress(head, _HEAD)  # 47: gzip or zlib header
        if compression == "bzip2":
            return None, bz2.BZ2Decompressor().decompress(head, max_length=_HEAD)
        if compression == "zip":
            return _zip_sample(head)
    except (zlib.error, OSError, EOFError, ValueError):
        return None, b""
    return None, head


def _zip_sample(head: bytes) -> tuple[str | None, bytes]:
    """The name and first bytes of the first file entry, read from the zip's local headers."""
    pos = 0
    for _ in range(16):
        if head[pos : pos + 4] != b"PK\x03\x04" or len(head) < pos + 30:
            break
        flags = int.from_bytes(head[pos + 6 : pos + 8], "little")
        method = int.from_bytes(head[pos + 8 : pos + 10], "little")
        size = int.from_bytes(head[pos + 18 : pos + 22], "little")
        name_length = int.from_bytes(head[pos + 26 : pos + 28], "little")
        extra_length = int.from_bytes(head[pos + 28 : pos + 30], "little")
        name = head[pos + 30 : pos + 30 + name_length].decode("utf-8", "replace")
        start = pos + 30 + name_length + extra_length
        if name.endswith("/") or _zip_noise(name):
            if flags & 0x08:  # sizes follow the data: the next header cannot be found from here
                break
            pos = start + size
            continue
        if method == 0:
            return name, head[start : start + _HEAD]
        if method == 8:
            return name, zlib.decompressobj(wbits=-15).decompress(head[start:], _HEAD)
        return name, b""
    return None, b""


def _zip_escapes(name: str) -> bool:
    """Whether a zip entry's name would leave the folder it is extracted into ("zip slip")."""
    parts = name.replace("\\", "/").split("/")
    return name.startswith(("/", "\\")) or ".." in parts or re.match(r"[A-Za-z]:", name) is not None


def _zip_noise(name: str) -> bool:
    """Entries macOS's Finder adds to every zip it makes: not the user's data."""
    return name.startswith("__MACOSX/") or PurePosixPath(name).name.startswith("._")


def _guess(name: str, sample: bytes) -> tuple[Format, str, Encoding]:
    suffix = PurePosixPath(name).suffix.lower()
    encoding = _guess_encoding(sample)
    text = _decode_sample(sample, encoding)
    fmt: Format
    if sample.startswith(b"PAR1") or suffix == ".parquet":
        fmt = "parquet"
    elif suffix in _JSON_EXTENSIONS:
        fmt = "json"
    elif suffix in (".csv", ".tsv"):
        fmt = "delimited"
    else:
        fmt = "json" if text.lstrip()[:1] in ("{", "[") else "delimited"
    delimiter = _sniff_delimiter(text, "\t" if suffix == ".tsv" else None) if fmt == "delimited" else ","
    return fmt, delimiter, encoding


def _guess_encoding(sample: bytes) -> Encoding:
    try:
        # final=False: a sample cut in the middle of a multi-byte character is still UTF-8.
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        return "ISO-8859-1"
    return "UTF-8"


def _decode_sample(sample: bytes, encoding: Encoding) -> str:
    if encoding == "UTF-8":
        return codecs.getincrementaldecoder("utf-8-sig")(errors="replace").decode(sample, final=False)
    return sample.decode("latin-1")


def _sniff_delimiter(text: str, preferred: str | None) -> str:
    """The candidate that cuts the sample's lines into the same number (≥ 2) of fields most consistently."""
    lines = list(io.StringIO(text, newline=""))
    if len(lines) > 1 and not text.endswith(("\n", "\r")):
        lines = lines[:-1]  # the sample may stop in the middle of a line
    lines = lines[:50]
    best, best_score = ",", (0.0, 0)
    for delimiter in _DELIMITERS:
        widths = [len(row) for row in _csv_rows(lines, delimiter, '"') if row]
        if not widths:
            continue
        width = Counter(widths).most_common(1)[0][0]
        if width < 2:
            continue
        if delimiter == preferred:
            return delimiter
        score = (sum(1 for w in widths if w == width) / len(widths), width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _csv_rows(lines: list[str], delimiter: str, quote: str) -> list[list[str]]:
    rows: list[list[str]] = []
    reader = _csv_reader(iter(lines), delimiter, quote)
    with contextlib.suppress(csv.Error):  # a quote left open by the cut: keep the rows before it
        rows.extend(reader)
    return rows


def _csv_reader(lines: Iterator[str], delimiter: str, quote: str) -> Iterator[list[str]]:
    if quote:
        return csv.reader(lines, delimiter=delimiter, quotechar=quote, doublequote=True, strict=False)
    return csv.reader(lines, delimiter=delimiter, quoting=csv.QUOTE_NONE, strict=False)


# --------------------------------------------------------------------------------------------- streams


_DATA_ERRORS: tuple[type[BaseException], ...] = (
    pa.ArrowException,
    OSError,
    EOFError,
    ValueError,  # includes UnicodeDecodeError and json.JSONDecodeError
    zlib.error,
    zipfile.BadZipFile,
    csv.Error,
)
"""What a damaged file raises while it is parsed or decompressed (after the source's own errors are set apart)."""


class _Raw(io.RawIOBase):
    """The caller's stream, remembering an exception it raised: that is the source failing, not the data."""

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__()
        self._stream = stream
        self.error: BaseException | None = None

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        try:
            return self._stream.read(size)
        except BaseException as exc:
            self.error = exc
            raise


class _Inflating(io.RawIOBase):
    """gzip (also zlib: Adobe's "deflate") or bzip2 decompression as a stream, over the caller's stream.

    Why not pyarrow.CompressedInputStream: when its input ends early it drops everything it decompressed
    during that read call — up to a whole block, so a truncated gzip lost records that were intact.
    Python's zlib and bz2 are the same C libraries, release the GIL, and measured as fast (300 MB of CSV
    from gzip: 0.73 s against pyarrow's 0.81 s). Output per call is capped (`max_length`), so one chunk of
    compressed input cannot expand into memory unchecked. Concatenated gzip members are read in turn.
    """

    def __init__(self, raw: _Raw, compression: Compression) -> None:
        super().__init__()
        self._raw = raw
        self._bzip2 = compression == "bzip2"
        self._decoder = self._new()
        self._input = b""
        self._more = False  # the decoder may hold more output without more input
        self._seen_input = False

    def _new(self) -> Any:
        return bz2.BZ2Decompressor() if self._bzip2 else zlib.decompressobj(wbits=47)  # 47: gzip or zlib

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = size if size and size > 0 else _SPOOL_CHUNK
        while True:
            if self._decoder.eof:
                follow = self._decoder.unused_data or self._raw.read(_SPOOL_CHUNK)
                if not follow:
                    return b""
                self._decoder, self._input, self._more = self._new(), follow, False
            if self._input or self._more:
                data, self._input = self._input, b""
                out = self._decoder.decompress(data, size)
                if not self._bzip2:
                    self._input = self._decoder.unconsumed_tail
                holding = self._bzip2 and not self._decoder.needs_input
                self._more = bool(out) and (len(out) == size or holding)
                if out:
                    return bytes(out)
                continue
            chunk = self._raw.read(_SPOOL_CHUNK)
            if not chunk:
                if not self._seen_input:
                    return b""  # an empty file, compressed or not, holds no records
                raise EOFError("Compressed file ended before the end-of-stream marker was reached")
            self._seen_input = True
            self._input = chunk


class _Decoded(io.RawIOBase):
    """The decompressed bytes as the parsers consume them.

    It counts them (the zip-bomb guard) and lets the start be peeked at without losing it. A decompression
    error met while peeking is held back until the bytes before it have been read, so a file whose start
    is good is read up to the damage.

    For pyarrow's CSV reader (`for_csv`) it also hands out whole lines only and never raises a damaged-data
    error: it ends the stream at the last complete line and keeps the error in `broken`. pyarrow reads
    ahead on another thread and, on a read error, may report it before the blocks already read, which
    would lose records that were fine; and a record cut by the damage must not reach the parser as if it
    were whole. It also ends the data with a line break (pyarrow cannot read a header-only file without).
    """

    def __init__(self, inner: Any, limit: int | None, compression: Compression, raw: _Raw | None) -> None:
        super().__init__()
        self._inner = inner
        self._raw = raw
        self._limit = limit
        self._compression = compression
        self._buffer = b""
        self._held: BaseException | None = None
        self._eof = False
        self._last = b"\n"
        self.consumed = 0
        self.guard: UnreadableFile | None = None
        self.for_csv = False
        self.broken: BaseException | None = None
        self._tail = b""  # for_csv: bytes after the last line break handed out
        self._ready: deque[bytes | memoryview] = deque()  # for_csv: whole lines ready to hand out

    def readable(self) -> bool:
        return True

    @property
    def at_eof(self) -> bool:
        return self._eof and not self._buffer and self._held is None

    def peek(self, size: int) -> bytes:
        """Up to `size` bytes from the current position, without consuming them."""
        while len(self._buffer) < size and not self._eof and self._held is None:
            try:
                chunk = self._pull(max(size - len(self._buffer), _HEAD))
            except UnreadableFile:
                raise
            except _DATA_ERRORS as exc:
                self._hold(exc)
                break
            if not chunk:
                break
            self._buffer += chunk
        return self._buffer[:size]

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(_SPOOL_CHUNK), b""))
        # mypy: the memoryviews of the CSV path go only to pyarrow, which takes any buffer.
        return cast(bytes, self._whole_lines(size)) if self.for_csv else self._read(size)

    def _whole_lines(self, size: int) -> bytes | memoryview:
        # Every piece handed out holds whole lines and at most `size` bytes (pyarrow's block), so a record
        # whose quoted value spans line breaks straddles at most one block boundary, as pyarrow allows.
        # (Handed out alone, the end of a line left over from one read made a block of its own, and such
        # a record then straddled two and ended the file.) A line longer than the block is handed on as
        # it is; the parser refuses it in order. Pieces are memoryviews of what was read: pyarrow takes
        # any buffer.
        while True:
            if self._ready:
                piece = self._ready.popleft()
                if len(piece) > size:
                    self._ready.appendleft(piece[size:])
                    piece = piece[:size]
                return piece
            if self.broken is not None:
                return b""
            if len(self._tail) >= size:
                self._ready.append(memoryview(self._tail))
                self._tail = b""
                continue
            try:
                chunk = self._read(size - len(self._tail))
            except UnreadableFile:
                raise
            except _DATA_ERRORS as exc:
                if (self._raw is not None and self._raw.error is not None) or _is_source_error(exc):
                    raise
                self.broken = exc
                cut = self._tail.rfind(b"\n") + 1  # the whole lines read before the damage are kept,
                if cut:
                    self._ready.append(memoryview(self._tail)[:cut])
                self._tail = b""  # not the record the damage cut short
                continue
            if not chunk:
                out, self._tail = self._tail, b""
                return out
            self._tail += chunk
            if len(self._tail) < size:
                continue  # a short read (the end of what was peeked, say): a block is filled first
            cut = self._tail.rfind(b"\n") + 1
            if cut:
                self._ready.append(memoryview(self._tail)[:cut])
                self._tail = self._tail[cut:]

    def _read(self, size: int) -> bytes:
        if self._buffer:
            out, self._buffer = self._buffer[:size], self._buffer[size:]
            return out
        if self._held is not None:
            held, self._held = self._held, None
            raise held
        try:
            return self._pull(size)
        except UnreadableFile:
            raise
        except _DATA_ERRORS as exc:
            self._hold(exc)  # raises UnreadableFile when nothing came out yet
            self._held = None
            raise

    def _hold(self, exc: BaseException) -> None:
        source_failed = self._raw is not None and self._raw.error is not None
        if (
            self.consumed == 0
            and self._compression != "none"
            and not source_failed
            and not _is_source_error(exc)
        ):
            # Not one byte came out: the file is not what its compression says it is.
            raise UnreadableFile(
                f"the file could not be read as {self._compression} data: {_reason(exc, 0)}"
            ) from exc
        self._held = exc

    def _pull(self, size: int) -> bytes:
        if self._eof:
            return b""
        chunk = bytes(self._inner.read(size))
        if not chunk:
            self._eof = True
            if self.for_csv and self.consumed and self._last not in (b"\n", b"\r"):
                return b"\n"
            return b""
        self.consumed += len(chunk)
        self._last = chunk[-1:]
        if self._limit is not None and self.consumed > self._limit:
            self.guard = UnreadableFile(
                f"the file expands to more than {self._limit} bytes when decompressed; "
                "it is refused as a possible zip bomb"
            )
            raise self.guard
        return chunk


def _is_source_error(exc: BaseException) -> bool:
    return isinstance(exc, Transient)


def _seekable(stream: Any) -> bool:
    try:
        return bool(stream.seekable())
    except Exception:  # a stream without seekable() (or one that fails answering) cannot seek
        return False


def _spool(read: Callable[[int], bytes], stack: contextlib.ExitStack) -> IO[bytes]:
    """Copy a stream to an anonymous temporary file (deleted when closed) to get something seekable."""
    spool = stack.enter_context(tempfile.TemporaryFile(prefix="flowservice-"))  # noqa: SIM115 (the stack closes it)
    while chunk := read(_SPOOL_CHUNK):
        spool.write(chunk)
    spool.seek(0)
    return spool


@dataclass(slots=True)
class _Pipeline:
    """One file being read: its spec, the caller's stream and the decompressed bytes."""

    spec: FormatSpec
    raw: _Raw
    decoded: _Decoded
    block_size: int

    def reraise(self, exc: BaseException) -> None:
        """Raise again what is not damage in the file: the zip-bomb guard and the source's own failures."""
        if self.decoded.guard is not None:
            raise self.decoded.guard from None
        if isinstance(exc, UnreadableFile):
            raise exc
        if self.raw.error is not None:
            raise self.raw.error
        if _is_source_error(exc):
            raise exc


def _open(
    stream: BinaryIO, spec: FormatSpec, stack: contextlib.ExitStack, limit: int | None, block: int
) -> _Pipeline:
    raw = _Raw(stream)
    inner: Any
    if spec.compression == "none":
        inner = raw
    elif spec.compression in ("gzip", "bzip2"):
        inner = _Inflating(raw, spec.compression)
    else:
        inner = _zip_member(stream, stack, limit)
    return _Pipeline(spec, raw, _Decoded(inner, limit, spec.compression, raw), block)


def _zip_member(stream: BinaryIO, stack: contextlib.ExitStack, limit: int | None) -> IO[bytes]:
    """The one file of a zip archive, as a decompressing stream (zip needs a seekable file: spool if not).

    Refused before a byte is inflated: an entry whose name climbs out of the archive's folder (`../`,
    an absolute path, a drive): nothing here extracts, but such a name marks a hostile archive, and
    whoever unpacks the same file elsewhere would write outside their folder; and an entry whose
    declared size is over `limit` (zipfile stops at the declared size, so a lie ends in a CRC error).
    """
    source: IO[bytes] = stream if _seekable(stream) else _spool(stream.read, stack)
    try:
        archive = stack.enter_context(zipfile.ZipFile(source))
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise UnreadableFile("the file is not a valid zip archive") from exc
    for info in archive.infolist():
        if _zip_escapes(info.filename):
            shown = info.filename[:100]
            raise UnreadableFile(f"the zip archive holds an entry named {shown!r}, outside its own folder")
    members = [info for info in archive.infolist() if not info.is_dir() and not _zip_noise(info.filename)]
    if len(members) != 1:
        raise UnreadableFile(f"a zip archive must hold exactly one file; this one holds {len(members)}")
    if limit is not None and members[0].file_size > limit:
        raise UnreadableFile(
            f"the file expands to more than {limit} bytes when decompressed (its zip entry declares "
            f"{members[0].file_size}); it is refused as a possible zip bomb"
        )
    try:
        return stack.enter_context(archive.open(members[0]))
    except RuntimeError as exc:  # zipfile's word for an encrypted member
        raise UnreadableFile("the zip archive is encrypted") from exc
    except NotImplementedError as exc:
        raise UnreadableFile("the zip archive uses a compression method that is not supported") from exc
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise UnreadableFile("the file is not a valid zip archive") from exc


# --------------------------------------------------------------------------------------------- numbering


@dataclass(slots=True)
class _Pending:
    """A bad record whose number is known (from the parser) before the batch it belongs with."""

    number: int | None
    line: int | None
    message: str
    raw: str | None


class _Numbering:
    """Gives every record of a file its number, interleaving bad records with the batches of good ones."""

    def __init__(self) -> None:
        self.next = 1
        self._pending: list[_Pending] = []

    def place(self, batch: pa.RecordBatch, bad: list[_Pending], *, final: bool = False) -> SourceBatch | None:
        """The SourceBatch for `batch`, whose rows are the next good records; None if nothing to report.

        Bad records carry their own numbers; the good rows fill the numbers between them. A bad record
        numbered beyond this batch's rows waits for the next batch (the CSV parser reports ahead).
        """
        self._pending.extend(bad)
        self._pending.sort(key=lambda item: -1 if item.number is None else item.number)
        good = batch.num_rows
        cursor = start = self.next
        runs: list[tuple[int, int]] = []  # [from, to) ranges of good record numbers
        placed: list[BadRecord] = []
        taken = 0
        for item in self._pending:
            gap = 0 if item.number is None or final else max(item.number - cursor, 0)
            if gap > good:
                break
            if gap:
                runs.append((cursor, cursor + gap))
                good -= gap
                cursor += gap
            placed.append(_bad(cursor, item.line, item.message, item.raw))
            cursor += 1
            taken += 1
        del self._pending[:taken]
        if good:
            runs.append((cursor, cursor + good))
            cursor += good
        self.next = cursor
        if batch.num_rows == 0 and not placed:
            return None
        if not placed:
            return SourceBatch(batch, start, None, [])
        first = runs[0][0] if runs else start
        if len(runs) <= 1:
            return SourceBatch(batch, first, None, placed)
        records: list[int] = []
        for low, high in runs:
            records.extend(range(low, high))
        return SourceBatch(batch, first, records, placed)

    def flush(self, schema: pa.Schema) -> SourceBatch | None:
        """Bad records still waiting when the file ends, numbered in order after everything else."""
        return self.place(_empty(schema), [], final=True) if self._pending else None

    def remainder(self, schema: pa.Schema, reason: str) -> SourceBatch:
        """The rest of the file as one bad record: reading stopped after the records numbered so far."""
        self._pending.clear()
        record = self.next
        self.next += 1
        message = f"the rest of the file could not be read after record {record - 1}: {reason}"
        cut = _bad(record, None, message, None)
        return SourceBatch(_empty(schema), record, None, [dataclasses.replace(cut, remainder=True)])


def _bad(record: int, line: int | None, message: str, raw: str | None) -> BadRecord:
    if len(message) > _MESSAGE_LIMIT:
        message = message[: _MESSAGE_LIMIT - 3] + "..."
    return BadRecord(record, line, CORRUPT_RECORD, message, None if raw is None else raw[:_RAW_LIMIT])


def _empty(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([], schema=schema)


def _reason(exc: BaseException, block_size: int) -> str:
    """A user-safe account of why reading stopped."""
    text = str(exc)
    if "straddl" in text:
        return f"a record is longer than the block size of {block_size} bytes, or a quote is never closed"
    if isinstance(exc, UnicodeDecodeError) or "UTF8" in text or "UTF-8" in text:
        return "the text is not valid UTF-8 (if the file is Latin-1, declare the encoding ISO-8859-1)"
    if isinstance(exc, EOFError) or "runcated" in text:
        return "the compressed data ends early (the file is truncated)"
    if isinstance(exc, zlib.error | zipfile.BadZipFile) or "inflate" in text or "header check" in text:
        return "the compressed data is damaged"
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first[:200]


# --------------------------------------------------------------------------------------------- reading


def read(
    stream: BinaryIO,
    spec: FormatSpec,
    *,
    block_size: int = 8 << 20,
    max_uncompressed: int | None = None,
) -> Iterator[SourceBatch]:
    """The file's records as Arrow batches, with every bad record numbered and reported.

    `block_size` is the unit of reading (bytes); a delimited record longer than it ends the file.
    `max_uncompressed`, when given, refuses the file (UnreadableFile) once more bytes than that have come
    out of decompression (counted as they are consumed): the zip-bomb guard. The caller keeps ownership
    of `stream`; temporary files made here are deleted when the iterator finishes or is closed.
    """
    with contextlib.ExitStack() as stack:
        if spec.format == "parquet" and spec.compression == "none" and _seekable(stream):
            yield from _read_parquet(stream, max_uncompressed)
            return
        pipeline = _open(stream, spec, stack, max_uncompressed, block_size)
        if spec.format == "parquet":
            try:
                spooled = _spool(pipeline.decoded.read, stack)
            except _DATA_ERRORS as exc:
                pipeline.reraise(exc)
                raise UnreadableFile(
                    f"the Parquet file could not be decompressed: {_reason(exc, 0)}"
                ) from exc
            yield from _read_parquet(spooled, max_uncompressed)
        elif spec.format == "json":
            yield from _read_json(pipeline)
        else:
            yield from _read_delimited(pipeline)


# delimited ---------------------------------------------------------------------------------------------


def _repeated(names: list[str]) -> str | None:
    """The first name that appears twice, if any."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    return None


def _refuse_wide_text(p: _Pipeline) -> None:
    """UnreadableFile for UTF-16 or UTF-32 text, which neither declarable encoding can read.

    Spreadsheet programs save "Unicode text" as UTF-16. Read as UTF-8 it fails at the first byte;
    read as ISO-8859-1 (what detection guesses for bytes that are not UTF-8) every other character
    is a NUL, so the columns are never found and every record fails as "required field missing",
    which hides the real cause. A byte order mark or NULs in every other byte say which it is.
    """
    head = p.decoded.peek(_HEAD)
    name = next((name for bom, name in _WIDE_BOMS if head.startswith(bom)), None)
    if name is None and len(head) >= 16:
        # Without a mark: ASCII in UTF-16 has a NUL in every other byte, and text never has them.
        nuls = sorted((head[0::2].count(0), head[1::2].count(0)))
        if nuls[1] > len(head) // 4 and nuls[0] < len(head) // 20:
            name = "UTF-16"
    if name is not None:
        raise UnreadableFile(
            f"the file is {name} text; save it as UTF-8 (or ISO-8859-1, declaring that encoding)"
        )


def _read_delimited(p: _Pipeline) -> Iterator[SourceBatch]:
    spec = p.spec
    p.decoded.for_csv = True
    _refuse_wide_text(p)
    first = _first_record(p)
    if first is None:
        return  # an empty file (or only blank lines): no records, no error
    if len(first) > FIELD_LIMIT:
        raise UnreadableFile(f"the first line has {len(first)} columns; at most {FIELD_LIMIT} are read")
    if spec.header:
        twice = _repeated(first)
        if twice is not None:
            raise UnreadableFile(f"the header names the column {twice!r} more than once")
        names, column_names, header_rows = first, None, 1
    else:
        names = [f"column_{i}" for i in range(1, len(first) + 1)]
        column_names, header_rows = names, 0

    reported: list[_Pending] = []
    lock = threading.Lock()

    def on_invalid(row: Any) -> str:
        # Called by pyarrow, possibly from its I/O thread and ahead of the batch the row belongs with;
        # `row.number` (counting the header) places it.
        number = None if row.number is None else row.number - header_rows
        message = f"expected {row.expected_columns} columns, found {row.actual_columns}"
        text = row.text or ""
        if spec.quote and "\n" in text.strip("\r\n") and text.count(spec.quote) % 2:
            message = (
                f"a quote is never closed, so the rest of the file was read as this one record ({message})"
            )
        with lock:
            reported.append(_Pending(number, None, message, text))
        return "skip"

    def drain() -> list[_Pending]:
        with lock:
            out = reported[:]
            reported.clear()
        return out

    # use_threads=False: pyarrow numbers invalid rows only when it reads on one thread, and the numbers are
    # what place a bad record between good ones. Measured on 2 cores (300 MB CSV, 10 columns, 8 MiB blocks,
    # all columns as strings): ~850-900 MB/s either way, the difference within noise — the parse is not the
    # bottleneck and the I/O readahead thread stays on. So numbering costs nothing here.
    read_options = pa_csv.ReadOptions(
        use_threads=False,
        block_size=p.block_size,
        encoding="utf8" if spec.encoding == "UTF-8" else "latin1",
        column_names=column_names,
    )
    parse_options = pa_csv.ParseOptions(
        delimiter=spec.delimiter,
        quote_char=spec.quote or False,
        double_quote=True,
        escape_char=False,
        newlines_in_values=True,  # RFC 4180 allows line breaks in quoted values; the cost measured nil
        ignore_empty_lines=True,
        invalid_row_handler=on_invalid,
    )
    convert_options = pa_csv.ConvertOptions(
        column_types={name: pa.string() for name in names},
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    numbering = _Numbering()
    schema = pa.schema([(name, pa.string()) for name in names])
    reader: Any = None
    try:
        reader = pa_csv.open_csv(
            p.decoded, read_options=read_options, parse_options=parse_options, convert_options=convert_options
        )
        if any(not pa.types.is_string(field.type) for field in reader.schema):
            raise UnreadableFile("the header line could not be read")
        schema = reader.schema
        for batch in reader:
            placed = numbering.place(batch, drain())
            if placed is not None:
                yield placed
    except _DATA_ERRORS as exc:
        p.reraise(exc)
        if "Empty CSV file" in str(exc) and numbering.next == 1:
            return
        yield numbering.remainder(schema, _reason(exc, p.block_size))
        return
    finally:
        del reader  # stops pyarrow's readahead before the streams below it are closed
    leftover = numbering.place(_empty(schema), drain())
    if leftover is not None:
        yield leftover
    tail = numbering.flush(schema)
    if tail is not None:
        yield tail
    if p.decoded.broken is not None:
        yield numbering.remainder(schema, _reason(p.decoded.broken, p.block_size))


def _first_record(p: _Pipeline) -> list[str] | None:
    """The fields of the file's first non-blank record (the header), read with Python's csv module.

    pyarrow reads the header itself; this tells the names beforehand so every column can be read as a
    string (pyarrow has no "no type inference" switch, only per-name types).
    """
    spec = p.spec
    codec = "utf-8-sig" if spec.encoding == "UTF-8" else "latin-1"
    size = _HEAD
    while True:
        head = p.decoded.peek(size)
        complete = len(head) < size  # the whole file is in `head`
        # surrogateescape: a bad byte after the header is the parser's business (it ends the file there);
        # one inside the header shows as a lone surrogate and makes the file unreadable.
        text = codecs.getincrementaldecoder(codec)(errors="surrogateescape").decode(head, final=complete)
        lines = list(io.StringIO(text, newline=""))
        used = 0

        def counted(source: list[str] = lines) -> Iterator[str]:
            nonlocal used
            for line in source:
                used += 1
                yield line

        try:
            for row in _csv_reader(counted(), spec.delimiter, spec.quote):
                if not row:
                    continue  # a blank line
                if not (complete or used < len(lines)):
                    break  # the record may go on past what was peeked
                if any(_LONE_SURROGATE.search(name) for name in row):
                    raise UnreadableFile(
                        "the header line is not valid UTF-8 text "
                        "(if the file is Latin-1, declare the encoding ISO-8859-1)"
                    )
                return row
            else:
                if complete:
                    return None
        except csv.Error:
            if complete:
                raise UnreadableFile("the header line could not be read") from None
        if size >= p.block_size:
            raise UnreadableFile(f"the header line is longer than the block size of {p.block_size} bytes")
        size = min(size * 4, p.block_size)


# json --------------------------------------------------------------------------------------------------


def _read_json(p: _Pipeline) -> Iterator[SourceBatch]:
    _refuse_wide_text(p)
    head = p.decoded.peek(_HEAD)
    if p.spec.encoding == "UTF-8" and head.startswith(_UTF8_BOM):
        p.decoded.read(len(_UTF8_BOM))
        head = head[len(_UTF8_BOM) :]
    text = head.decode("utf-8" if p.spec.encoding == "UTF-8" else "latin-1", errors="replace")
    start = text.lstrip()[:1]
    if not start and p.decoded.at_eof:
        return
    if start == "[" or (start == "{" and _is_document(text)):
        yield from _json_document(p, array=start == "[")
    else:
        yield from _json_lines(p)


def _is_document(head: str) -> bool:
    """Whether a file starting with '{' is a pretty-printed JSON document rather than JSON lines."""
    lines = head.split("\n")
    if len(lines) < 2 or _is_object(lines[0]):
        return False
    if any(_is_object(line) for line in lines[1:6] if line.strip()):
        return False  # the first line is damaged, but those after it are JSON lines
    start = len(head) - len(head.lstrip())
    try:
        _, end = json.JSONDecoder().raw_decode(head, start)
    except json.JSONDecodeError as exc:
        return exc.pos > len(lines[0])
    except RecursionError:
        return False  # nested past reading: line by line, where it becomes a bad record
    return end > len(lines[0])


def _is_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except (ValueError, RecursionError):
        return False


def _json_lines(p: _Pipeline) -> Iterator[SourceBatch]:
    """JSON lines, block by block: pyarrow parses a block; a block it refuses is parsed line by line."""
    numbering = _Numbering()
    types = _JsonTypes()
    line = 1
    carry = b""
    while True:
        try:
            chunk = p.decoded.read(p.block_size)
        except _DATA_ERRORS as exc:
            p.reraise(exc)
            yield numbering.remainder(pa.schema([]), _reason(exc, p.block_size))
            return
        if chunk:
            data = carry + chunk if carry else chunk
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                carry = data
                if len(carry) > _JSON_LINE_LIMIT:
                    yield numbering.remainder(
                        pa.schema([]), f"a JSON line is longer than {_JSON_LINE_LIMIT} bytes"
                    )
                    return
                continue
            block, carry = data[:cut], data[cut:]
        else:
            block, carry = carry, b""
        if block:
            if p.spec.encoding == "ISO-8859-1":
                block = block.decode("latin-1").encode("utf-8")
            yield from _json_block(block, line, numbering, types)
            line += block.count(b"\n")
            if types.too_wide:
                yield numbering.remainder(pa.schema([]), f"the records name more than {FIELD_LIMIT} fields")
                return
        if not chunk:
            return


def _json_block(block: bytes, line: int, numbering: _Numbering, types: _JsonTypes) -> Iterator[SourceBatch]:
    """One block of JSON lines: whole when it names only fields seen before, else in pieces that cannot
    make pyarrow build more than _JSON_CELLS values; a piece pyarrow refuses goes line by line."""
    deep = _may_nest_deeper(block)
    table = None if deep else types.parse_known(block)
    if table is not None:
        yield from _placed(table.to_batches(), [], numbering)
        return
    first = True
    for piece in _pieces(block):
        readable = piece.count(b":") <= FIELD_LIMIT and not _may_nest_deeper(piece)
        table = types.parse(piece) if readable else None
        if table is None:
            yield from _placed(*_json_fallback(piece, line, numbering.next), numbering)
        else:
            yield from _placed(table.to_batches(), [], numbering)
        line += piece.count(b"\n")
        if types.too_wide:
            return
        if first and not deep and len(piece) < len(block):
            # The first piece told the fields: the rest of a uniform block goes at once (tried once only,
            # so a block whose pieces keep naming new fields is not parsed over and over).
            table = types.parse_known(block[len(piece) :])
            if table is not None:
                yield from _placed(table.to_batches(), [], numbering)
                return
        first = False


def _placed(
    batches: list[pa.RecordBatch], bad: list[_Pending], numbering: _Numbering
) -> Iterator[SourceBatch]:
    """Consecutive batches of one stretch of the file, with its bad records, numbered."""
    for index, batch in enumerate(batches or [_empty(pa.schema([]))]):
        placed = numbering.place(batch, bad if index == 0 else [])
        if placed is not None:
            yield placed


def _pieces(block: bytes) -> Iterator[bytes]:
    """`block` cut at line ends into pieces pyarrow may parse with inference.

    A piece's colons bound the fields it can name, so colons ≤ FIELD_LIMIT bounds its columns and
    colons × lines ≤ _JSON_CELLS the values pyarrow builds (nulls included), whatever the records are.
    A single line past those is a piece of its own (read line by line, where its fields are counted).
    """
    start, lines = 0, _PIECE_LINES
    while start < len(block):
        while True:
            end = _after_lines(block, start, lines)
            colons = block.count(b":", start, end)
            if lines == 1 or (
                colons <= FIELD_LIMIT and colons * block.count(b"\n", start, end) <= _JSON_CELLS
            ):
                break
            lines //= 2
        yield block[start:end]
        start, lines = end, min(lines * 2, _PIECE_LINES)


def _after_lines(block: bytes, start: int, lines: int) -> int:
    """The offset just after the `lines`-th line break from `start` (the end of `block` if fewer)."""
    end = start
    for _ in range(lines):
        found = block.find(b"\n", end)
        if found < 0:
            return len(block)
        end = found + 1
    return end


def _may_nest_deeper(block: bytes) -> bool:
    """Whether a line of `block` may nest deeper than JSON_DEPTH_LIMIT: then pyarrow must not see it.

    Brackets inside strings count too, so this over-estimates; the line-by-line path it sends a block
    to checks each record exactly. Deleting every other byte leaves a small skeleton (a few brackets
    per record), and only skeleton lines with more brackets than the limit are walked in Python.
    """
    skeleton = block.translate(None, _NOT_BRACKETS)
    for run in _BRACKET_RUN.finditer(skeleton):
        depth = 0
        for byte in run.group():
            depth += 1 if byte in b"[{" else -1
            if depth > JSON_DEPTH_LIMIT:
                return True
    return False


class _JsonTypes:
    """What the blocks of one JSON-lines file share: fields kept as strings, and the order of columns."""

    def __init__(self) -> None:
        self._overrides: dict[str, pa.DataType] = {}
        self._order: dict[str, int] = {}
        self._known: pa.Schema | None = None  # the fields (and types) of the pieces parsed so far
        self._known_fields = 0

    @property
    def too_wide(self) -> bool:
        """Whether the records so far name more fields than FIELD_LIMIT (the rest is not read)."""
        return len(self._order) > FIELD_LIMIT

    def parse_known(self, block: bytes) -> pa.Table | None:
        """The block parsed against the fields already known, or None: when a line names another
        field or type, or when the known fields' values (nulls too) would exceed _JSON_CELLS.

        As fast as pyarrow's inference, and safe: no field can be added, so the values are bounded.
        """
        if self._known is None or self._known_fields * max(1, block.count(b"\n")) > _JSON_CELLS:
            return None
        try:
            table = pa_json.read_json(
                pa.BufferReader(block),
                read_options=pa_json.ReadOptions(use_threads=True),
                parse_options=pa_json.ParseOptions(
                    explicit_schema=self._known, unexpected_field_behavior="error", newlines_in_values=False
                ),
            )
            table.validate(full=True)
        except pa.ArrowException:
            return None
        if any(_rounds_integers(column) for column in table.columns):
            return None  # inference would have kept those integers as integers
        return self._ordered(table)

    def _learn(self, schema: pa.Schema) -> None:
        try:
            known = schema if self._known is None else pa.unify_schemas([self._known, schema])
        except pa.ArrowException:  # a field changed type: the latest types serve the next block
            known = schema
        fields = _arrow_fields(known)
        self._known, self._known_fields = (known, fields) if fields <= FIELD_LIMIT else (None, 0)

    def parse(self, block: bytes) -> pa.Table | None:
        """pyarrow's parse of a block of JSON lines, or None when any line of it is not acceptable."""
        try:
            table = self._read(block)
            self._remember(table)
            timestamped = [field for field in table.schema if _has_timestamp(field.type)]
            if timestamped:
                # pyarrow turns strings that look like times into timestamps; JSON has no timestamp type
                # and the line-by-line path keeps strings, so keep them as the file wrote them. The
                # override stays for the following blocks: the second parse happens once per file.
                for field in timestamped:
                    self._overrides[field.name] = _without_timestamps(field.type)
                table = self._read(block)
            # pyarrow's JSON reader does not check that strings are UTF-8; the full validation does
            # (under 1 ms per 8 MiB block), and a block that fails it goes line by line.
            table.validate(full=True)
        except pa.ArrowException:
            return None
        self._learn(table.schema)
        return self._ordered(table)

    def _read(self, block: bytes) -> pa.Table:
        schema = pa.schema(list(self._overrides.items())) if self._overrides else None
        return pa_json.read_json(
            pa.BufferReader(block),
            read_options=pa_json.ReadOptions(use_threads=True),
            parse_options=pa_json.ParseOptions(
                explicit_schema=schema, unexpected_field_behavior="infer", newlines_in_values=False
            ),
        )

    def _remember(self, table: pa.Table) -> None:
        for name in table.column_names:
            self._order.setdefault(name, len(self._order))

    def _ordered(self, table: pa.Table) -> pa.Table:
        """Columns in the order the file first showed them (an explicit schema puts its fields first)."""
        self._remember(table)
        names = sorted(table.column_names, key=self._order.__getitem__)
        return table if names == table.column_names else table.select(names)


def _rounds_integers(values: pa.Array | pa.ChunkedArray) -> bool:
    """Whether floating-point values reach 2**53, where an integer in the file may have been rounded.

    A field known as double takes integers without a word; below 2**53 they are exact (and validation
    treats 3.0 as 3), beyond it inference, which would keep them int64, must decide.
    """
    type_ = values.type
    if pa.types.is_floating(type_):
        biggest = pc.max(pc.abs(values)).as_py()
        return biggest is not None and biggest >= 2.0**53
    if pa.types.is_struct(type_):
        return any(_rounds_integers(pc.struct_field(values, [i])) for i in range(type_.num_fields))
    if pa.types.is_list(type_) or pa.types.is_large_list(type_):
        return _rounds_integers(pc.list_flatten(values))
    return False


def _arrow_fields(type_: pa.Schema | pa.DataType) -> int:
    """How many fields a schema or type holds, nested ones included."""
    if isinstance(type_, pa.Schema):
        return sum(1 + _arrow_fields(field.type) for field in type_)
    if pa.types.is_list(type_) or pa.types.is_large_list(type_):
        return _arrow_fields(type_.value_type)
    return sum(1 + _arrow_fields(type_.field(i).type) for i in range(type_.num_fields))


def _has_timestamp(type_: pa.DataType) -> bool:
    if pa.types.is_timestamp(type_):
        return True
    return any(_has_timestamp(type_.field(i).type) for i in range(type_.num_fields))


def _without_timestamps(type_: pa.DataType) -> pa.DataType:
    if pa.types.is_timestamp(type_):
        return pa.string()
    if pa.types.is_struct(type_):
        return pa.struct([field.with_type(_without_timestamps(field.type)) for field in type_])
    if pa.types.is_list(type_) or pa.types.is_large_list(type_):
        item = type_.value_field
        return pa.list_(item.with_type(_without_timestamps(item.type)))
    return type_


def _json_fallback(
    block: bytes, first_line: int, first_record: int
) -> tuple[list[pa.RecordBatch], list[_Pending]]:
    """A block pyarrow refused, line by line: good lines become rows, bad lines bad records."""
    rows: list[tuple[int, int | None, str, dict[str, Any]]] = []
    bad: list[_Pending] = []
    record = first_record
    for line, raw in enumerate(block.split(b"\n"), start=first_line):
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            bad.append(
                _Pending(record, line, "the line is not valid UTF-8 text", raw.decode("utf-8", "replace"))
            )
        else:
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                bad.append(_Pending(record, line, f"invalid JSON: {exc.msg} at column {exc.colno}", text))
            except RecursionError:
                bad.append(_Pending(record, line, _TOO_DEEP, text))
            else:
                if isinstance(value, dict):
                    rows.append((record, line, text, value))
                else:
                    bad.append(
                        _Pending(record, line, f"expected a JSON object, found {_json_kind(value)}", text)
                    )
        record += 1
    kinds = _Kinds()
    batches, rejected = _rows_to_batch(rows, kinds)
    return batches, sorted(bad + rejected, key=lambda item: item.number or 0)


def _json_document(p: _Pipeline, *, array: bool) -> Iterator[SourceBatch]:
    """A JSON file that is not JSON lines: a top-level array, or one or more (pretty-printed) objects."""
    numbering = _Numbering()
    chunks: list[bytes] = []
    size = 0
    failure: str | None = None
    while True:
        try:
            chunk = p.decoded.read(_SPOOL_CHUNK)
        except _DATA_ERRORS as exc:
            p.reraise(exc)
            failure = _reason(exc, p.block_size)
            break
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > JSON_DOCUMENT_LIMIT:
            if array:
                raise UnreadableFile("JSON array files over 64 MiB are not supported; use JSON lines")
            raise UnreadableFile("JSON files over 64 MiB must be JSON lines (one object per line)")
    data = b"".join(chunks)
    del chunks
    codec = "utf-8" if p.spec.encoding == "UTF-8" else "latin-1"
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as exc:
        text = data[: exc.start].decode(codec)
        failure = failure or _reason(exc, 0)
    del data

    kinds = _Kinds()
    decoder = json.JSONDecoder()
    rows: list[tuple[int, int | None, str, dict[str, Any]]] = []
    bad: list[_Pending] = []
    counted_to, line = 0, 1

    def line_at(pos: int) -> int:
        nonlocal counted_to, line
        line += text.count("\n", counted_to, pos)
        counted_to = pos
        return line

    def flush() -> Iterator[SourceBatch]:
        batches, rejected = _rows_to_batch(rows, kinds)
        everything_bad = sorted(bad + rejected, key=lambda item: item.number or 0)
        rows.clear()
        bad.clear()
        yield from _placed(batches, everything_bad, numbering)

    pos = _skip_space(text, 0) + (1 if array else 0)
    record = 1
    try:
        while True:
            pos = _skip_space(text, pos)
            if array and text.startswith("]", pos):
                pos += 1
                break
            if pos >= len(text):
                if array:
                    raise json.JSONDecodeError("the array is never closed", text, pos)
                break
            value, end = decoder.raw_decode(text, pos)
            if isinstance(value, dict):
                rows.append((record, None, "", value))
            else:
                found = f"expected a JSON object, found {_json_kind(value)}"
                bad.append(_Pending(record, line_at(pos), found, text[pos : min(end, pos + _RAW_LIMIT)]))
            record += 1
            pos = _skip_space(text, end)
            if array:
                if text.startswith(",", pos):
                    pos += 1
                elif not text.startswith("]", pos):
                    raise json.JSONDecodeError("Expecting ',' delimiter", text, pos)
            if len(rows) + len(bad) >= _DOCUMENT_BATCH_ROWS:
                yield from flush()
    except json.JSONDecodeError as exc:
        yield from flush()
        where = f" (line {exc.lineno} column {exc.colno})" if failure is None else ""
        reason = failure or f"invalid JSON: {exc.msg}{where}"
        yield numbering.remainder(pa.schema([]), reason)
        return
    except RecursionError:  # where the record that is too deep ends is not known: the rest goes
        yield from flush()
        yield numbering.remainder(pa.schema([]), _TOO_DEEP)
        return
    rest_at = _skip_space(text, pos)
    if rest_at < len(text):
        message = (
            "unexpected text after the JSON array" if array else "unexpected text after the JSON document"
        )
        bad.append(_Pending(record, line_at(rest_at), message, text[rest_at:].rstrip()))
    yield from flush()
    if failure is not None:
        yield numbering.remainder(pa.schema([]), failure)


_JSON_SPACE = re.compile(r"[ \t\n\r]*")


def _skip_space(text: str, pos: int) -> int:
    match = _JSON_SPACE.match(text, pos)
    return pos if match is None else match.end()


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


# The shape of a JSON value as Arrow will type it: None (null or not yet known), "boolean", "number",
# "string", a dict of field kinds (an object), or a one-item list holding the item kind (an array).
_Kind: TypeAlias = "str | dict[str, _Kind] | list[_Kind] | None"


class _KindConflict(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _kind_name(kind: _Kind) -> str:
    if isinstance(kind, dict):
        return "object"
    if isinstance(kind, list):
        return "array"
    return kind or "null"


_TOO_DEEP = f"the record is nested deeper than {JSON_DEPTH_LIMIT} levels of objects and arrays"


def _kind_of(value: Any, path: str, depth: int = 1) -> _Kind:
    if isinstance(value, list | dict) and depth > JSON_DEPTH_LIMIT:
        raise _KindConflict(_TOO_DEEP)
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        if not -_INT64 <= value < _INT64:
            raise _KindConflict(f"field '{path}' holds an integer beyond 64 bits")
        return "number"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        item: _Kind = None
        for element in value:
            item = _merge_kinds(item, _kind_of(element, f"{path}[]", depth + 1), f"{path}[]")
        return [item]
    return {
        str(key): _kind_of(element, f"{path}.{key}" if path else str(key), depth + 1)
        for key, element in value.items()
    }


def _merge_kinds(known: _Kind, new: _Kind, path: str) -> _Kind:
    """The kind that holds both, or _KindConflict naming the field whose type changed."""
    if known is None:
        return new
    if new is None:
        return known
    if isinstance(known, dict) and isinstance(new, dict):
        merged = dict(known)
        for key, kind in new.items():
            merged[key] = _merge_kinds(known.get(key), kind, f"{path}.{key}" if path else key)
        return merged
    if isinstance(known, list) and isinstance(new, list):
        return [_merge_kinds(known[0], new[0], f"{path}[]")]
    if known == new:
        return known
    raise _KindConflict(f"field '{path}' is {_kind_name(new)} where earlier records have {_kind_name(known)}")


class _Kinds:
    """The kinds seen so far in a block or document: the first type a field has is the one it keeps."""

    def __init__(self) -> None:
        self.kind: _Kind = {}
        self._fields = 0  # at least the fields in `kind` (counted exactly only when near the limit)

    def accept(self, row: dict[str, Any]) -> str | None:
        """None if the row fits (and is now part of what is known), else why it does not."""
        try:
            new = _kind_of(row, "")
            merged = _merge_kinds(self.kind, new, "")
        except _KindConflict as conflict:
            return conflict.message
        fields = self._fields + _kind_fields(new)
        if fields > FIELD_LIMIT:
            fields = _kind_fields(merged)
            if fields > FIELD_LIMIT:
                return f"the records name more than {FIELD_LIMIT} fields"
        self.kind, self._fields = merged, fields
        return None

    def fields(self) -> int:
        return _kind_fields(self.kind)


def _kind_fields(kind: _Kind) -> int:
    """How many fields a kind holds, nested ones included."""
    if isinstance(kind, dict):
        return sum(1 + _kind_fields(child) for child in kind.values())
    if isinstance(kind, list):
        return _kind_fields(kind[0])
    return 0


def _rows_to_batch(
    rows: list[tuple[int, int | None, str, dict[str, Any]]], kinds: _Kinds
) -> tuple[list[pa.RecordBatch], list[_Pending]]:
    """Parsed JSON objects as batches; objects whose fields change type (or would take the fields past
    FIELD_LIMIT) become bad records. A batch holds a value for every field in every row, so sparse
    records are cut into batches of at most _JSON_CELLS values."""
    accepted: list[tuple[int, int | None, str, dict[str, Any]]] = []
    rejected: list[_Pending] = []
    for item in rows:
        problem = kinds.accept(item[3])
        if problem is None:
            accepted.append(item)
        else:
            record, line, text, value = item
            rejected.append(_Pending(record, line, problem, text or _dumps(value)))
    step = max(1, _JSON_CELLS // max(1, kinds.fields()))
    batches: list[pa.RecordBatch] = []
    for start in range(0, len(accepted), step):
        part = accepted[start : start + step]
        try:
            batches.append(_batch_from_rows([value for _, _, _, value in part]))
        except (pa.ArrowException, OverflowError) as exc:
            # The kinds are Arrow's own rules; should pyarrow still refuse, the rows are bad, not the file.
            message = f"the record could not be converted: {str(exc)[:200]}"
            rejected.extend(
                _Pending(record, line, message, text or _dumps(value)) for record, line, text, value in part
            )
    return batches, rejected


def _batch_from_rows(rows: list[dict[str, Any]]) -> pa.RecordBatch:
    # Not RecordBatch.from_pylist: it takes its columns from the first row's keys and silently drops a
    # field that only later rows have. A struct array takes the union of all keys, in order of first
    # appearance, and keeps the row count of objects without fields.
    if not rows:
        return _empty(pa.schema([]))
    return pa.RecordBatch.from_struct_array(pa.array(rows))


def _dumps(value: object) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=str)[:_RAW_LIMIT]
    except RecursionError:
        return "(nested too deeply to show)"


# parquet -----------------------------------------------------------------------------------------------


def _read_parquet(source: Any, max_uncompressed: int | None) -> Iterator[SourceBatch]:
    try:
        parquet = pq.ParquetFile(source)
    except _DATA_ERRORS as exc:
        if _is_source_error(exc):
            raise
        raise UnreadableFile("the file is not a Parquet file, or its footer is damaged") from exc
    metadata = parquet.metadata
    if metadata.num_columns > FIELD_LIMIT:
        raise UnreadableFile(
            f"the Parquet file has {metadata.num_columns} columns; at most {FIELD_LIMIT} are read"
        )
    twice = _repeated(parquet.schema_arrow.names)
    if twice is not None:  # else the mapping would silently take one of them
        raise UnreadableFile(f"the Parquet file names the column {twice!r} more than once")
    if max_uncompressed is not None:
        expanded = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
        if expanded > max_uncompressed:
            raise UnreadableFile(
                f"the Parquet file expands to {expanded} bytes, more than the limit of {max_uncompressed}; "
                "it is refused as a possible decompression bomb"
            )
    numbering = _Numbering()
    try:
        for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH_ROWS):
            placed = numbering.place(batch, [])
            if placed is not None:
                yield placed
    except _DATA_ERRORS as exc:
        if _is_source_error(exc):
            raise
        left = metadata.num_rows - (numbering.next - 1)
        yield numbering.remainder(parquet.schema_arrow, f"{_reason(exc, 0)} ({left} records were not read)")


# --------------------------------------------------------------------------------------------- preview


def preview(
    stream: BinaryIO, spec: FormatSpec, rows: int = 10
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """`(columns, data)` for the explore endpoint: the first `rows` records as JSON-able dicts.

    Columns are `{"name", "type"}` with type one of string, integer, number, boolean, date-time, object,
    array. Delimited values are strings in the file; here their type is inferred from the values shown
    (integers without leading zeros, finite numbers, true/false, ISO date-times) and the data converted.
    Bad records are left out.
    """
    batches: list[pa.RecordBatch] = []
    wanted = rows
    reader = cast(Generator[SourceBatch, None, None], read(stream, spec, block_size=_PREVIEW_BLOCK))
    try:
        for item in reader:
            if wanted <= 0:
                break
            if item.batch.num_rows:
                batches.append(item.batch.slice(0, wanted))
                wanted -= min(wanted, item.batch.num_rows)
            if wanted <= 0:
                break
    finally:
        reader.close()

    columns: dict[str, pa.DataType] = {}
    for batch in batches:
        for field in batch.schema:
            columns.setdefault(field.name, field.type)
    data: list[dict[str, Any]] = [
        {key: _jsonable(value) for key, value in record.items()}
        for batch in batches
        for record in batch.to_pylist()
    ]
    if spec.format != "delimited":
        return [{"name": name, "type": _wire_type(type_)} for name, type_ in columns.items()], data
    described: list[dict[str, Any]] = []
    for name in columns:
        wire, convert = _infer_text([row.get(name) for row in data])
        described.append({"name": name, "type": wire})
        for row in data:
            if row.get(name) is not None:
                row[name] = convert(row[name])
    return described, data


_INTEGER = re.compile(r"[+-]?(?:0|[1-9][0-9]*)\Z")
_NUMBER = re.compile(r"[+-]?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _infer_text(values: list[Any]) -> tuple[str, Callable[[str], Any]]:
    present = [value for value in values if isinstance(value, str)]
    if not present:
        return "string", str
    if all(_INTEGER.match(value) for value in present):
        return "integer", int
    if all(_NUMBER.match(value) and math.isfinite(float(value)) for value in present):
        return "number", float
    if all(value.lower() in ("true", "false") for value in present):
        return "boolean", lambda value: value.lower() == "true"
    if all(_is_date_time(value) for value in present):
        return "date-time", str
    return "string", str


def _is_date_time(value: str) -> bool:
    if not _DATE_TIME.match(value):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _wire_type(type_: pa.DataType) -> str:
    if pa.types.is_dictionary(type_):
        return _wire_type(type_.value_type)
    if pa.types.is_boolean(type_):
        return "boolean"
    if pa.types.is_integer(type_):
        return "integer"
    if pa.types.is_floating(type_) or pa.types.is_decimal(type_):
        return "number"
    if pa.types.is_timestamp(type_) or pa.types.is_date(type_):
        return "date-time"
    if pa.types.is_struct(type_) or pa.types.is_map(type_):
        return "object"
    if pa.types.is_list(type_) or pa.types.is_large_list(type_) or pa.types.is_fixed_size_list(type_):
        return "array"
    return "string"


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() else None
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return str(value)
