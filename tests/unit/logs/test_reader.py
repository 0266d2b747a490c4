from __future__ import annotations

import io

from cicd_orchestrator.logs.reader import LogReader, iter_lines


def _lines(data: bytes, **kw: int) -> list[tuple[int, str]]:
    return list(iter_lines(io.BytesIO(data), **kw))


def test_lines_as_the_file_counts_them() -> None:
    """LF and CRLF end a line; a lone CR (a progress update, a fold marker) does not."""
    out = _lines(b"a\nb\r\nc\rd\n\r\ne\r\r\n")
    assert out == [(1, "a"), (2, "b"), (3, "c\rd"), (4, ""), (5, "e\r")]


def test_last_line_without_newline_and_empty_input() -> None:
    assert _lines(b"x\ny") == [(1, "x"), (2, "y")]
    assert _lines(b"") == []


def test_block_boundaries_do_not_change_line_numbers() -> None:
    data = b"".join(b"line %d\r\n" % i for i in range(1, 3001)) + b"tail\rend\n"
    small = _lines(data, block_size=1024)
    big = _lines(data)
    assert small == big
    assert small[-1] == (3001, "tail\rend")
    assert small[1499] == (1500, "line 1500")


def test_crlf_split_across_blocks_is_one_break() -> None:
    data = b"x" * 1023 + b"\r\n" + b"y\n"
    assert _lines(data, block_size=1024) == [(1, "x" * 1023), (2, "y")]


def test_overlong_line_is_truncated_and_counts_once() -> None:
    data = b"start\n" + b"z" * 300_000 + b"\nafter\n"
    reader = LogReader(io.BytesIO(data), block_size=4096, max_line=1000)
    text = b"".join(b.data for b in reader.blocks())
    lines = text.split(b"\n")
    assert lines[0] == b"start" and lines[2] == b"after"
    assert len(lines[1]) == 1000
    assert reader.stats.truncated_lines == 1
    assert reader.stats.lines == 3


def test_binary_lines_are_blanked_and_invalid_utf8_counted() -> None:
    data = b"ok line\n\x00\x01\x02\x00\xff\xfe binary\nbad \xff\xfe utf8\nend\n"
    reader = LogReader(io.BytesIO(data))
    blocks = list(reader.blocks())
    body = b"".join(b.data for b in blocks)
    assert body.split(b"\n")[1] == b"<binary>"
    assert reader.stats.binary_lines == 1
    assert reader.stats.invalid_utf8 >= 1
    assert reader.stats.lines == 4
    assert any("binary" in w for w in reader.stats.summary())


def test_text_stream_passed_by_mistake_is_survived() -> None:
    reader = LogReader(io.StringIO("a\nb\n"))  # type: ignore[arg-type]
    assert reader.stats.lines == 0
    assert sum(b.lines for b in reader.blocks()) == 2
