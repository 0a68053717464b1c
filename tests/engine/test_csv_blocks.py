"""The block size pyarrow reads delimited text in must not change what is read.

Blocks are whole lines (arrow_io._Decoded); a record whose quoted value spans line breaks may cross
one block boundary, never two. These tests read generated files with blocks of 2 KiB (dozens of
boundaries, many inside quoted values) and with one block for the whole file, and compare the rows,
their record numbers and the bad records.
"""

from __future__ import annotations

import gzip
import io
import random
from typing import Any

import pytest

from flowservice.engine.arrow_io import FormatSpec

from .test_arrow_io import collect

SMALL = 2048
WHOLE = 64 << 20


def _field(rng: random.Random, *, line_breaks: float) -> str:
    kind = rng.random()
    if kind < line_breaks:
        line_break = rng.choice(["\n", "\r\n"])
        return '"' + rng.choice(["first", "a,b", ""]) + line_break + rng.choice(["second", "", "x"]) + '"'
    if kind < 0.4:
        return rng.choice(["alpha", "beta", "12", "-3.5", "", "x y", "naïve", "true"])
    if kind < 0.7:
        return '"' + rng.choice(["a,b", "c", "", "d e", "ü,ß"]) + '"'
    if kind < 0.8:
        return '"say ""hi"" ' + str(rng.randrange(100)) + '"'
    if kind < 0.85:
        return rng.choice(['5" screen', 'ab"', 'o"k'])  # a quote inside an unquoted value is text
    return str(rng.randrange(10**6))


def _csv(seed: int, *, records: int = 3000, line_breaks: float = 0.05) -> bytes:
    rng = random.Random(seed)
    lines = ["id,name,note,amount"]
    for _ in range(records):
        roll = rng.random()
        if roll < 0.03:
            lines.append("")  # a blank line: skipped, not a record
            continue
        width = 4 if roll > 0.06 else rng.choice([2, 3, 5])  # a few records of the wrong width
        lines.append(",".join(_field(rng, line_breaks=line_breaks) for _ in range(width)))
    end = rng.choice(["\n", "\r\n"])
    return (end.join(lines) + end).encode()


def _numbered(result: Any) -> tuple[list[tuple[int, dict[str, Any]]], list[tuple[Any, ...]]]:
    rows = list(zip(result.numbers, result.rows, strict=True))
    bad = [(b.record, b.message, b.raw, b.remainder) for b in result.bad]
    return rows, bad


@pytest.mark.parametrize("seed", range(8))
def test_small_blocks_read_what_one_block_reads(seed: int) -> None:
    data = _csv(seed)
    assert len(data) > 20 * SMALL
    small = collect(io.BytesIO(data), FormatSpec("delimited"), block_size=SMALL)
    whole = collect(io.BytesIO(data), FormatSpec("delimited"), block_size=WHOLE)
    assert len(small.batches) > 20 and len(whole.batches) == 1
    assert _numbered(small) == _numbered(whole)
    assert whole.bad and not any(b.remainder for b in whole.bad)  # ragged records, and no file cut short


@pytest.mark.parametrize("lines", [2, 3, 60])
def test_values_of_many_lines_cross_block_boundaries(lines: int) -> None:
    value = "\n".join(f"line {i}" for i in range(lines))
    data = ("x,y,z\n" + f'a,"{value}",c\n' * 2000).encode()
    result = collect(io.BytesIO(data), FormatSpec("delimited"), block_size=SMALL)
    assert len(result.batches) >= 10
    assert not result.bad
    assert result.rows == [{"x": "a", "y": value, "z": "c"}] * 2000


def test_a_damaged_gzip_file_keeps_every_whole_record_before_the_damage() -> None:
    data = _csv(3, records=4000, line_breaks=0.0)
    packed = gzip.compress(data)
    damaged = packed[: len(packed) * 2 // 3]
    spec = FormatSpec("delimited", compression="gzip")
    small = collect(io.BytesIO(damaged), spec, block_size=SMALL)
    whole = collect(io.BytesIO(damaged), spec, block_size=WHOLE)
    assert _numbered(small) == _numbered(whole)
    assert small.bad[-1].remainder and len(small.rows) > 1000
