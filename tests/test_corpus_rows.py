import hashlib
from pathlib import Path

import pytest

from pipeline.provenance import SourceIndex, line_starts_and_ends
from pipeline.stages import ingest

# (text, [(start, end) of each line]): LF, CRLF and CR end a line; a last break ends the text.
LINES = [
    ("a\nb", [(0, 1), (2, 3)]),
    ("a\r\nb\rc\n", [(0, 1), (3, 4), (5, 6)]),
    ("", []),
    ("\n", [(0, 0)]),
    ("a\n\nb\n", [(0, 1), (2, 2), (3, 4)]),
    ("\r\n\r\n", [(0, 0), (2, 2)]),
    ("one\r\ntwo\n\nthree", [(0, 3), (5, 8), (9, 9), (10, 15)]),
    # Offsets count characters, whatever their UTF-8 or UTF-16 width.
    ("é\r\r\n😀\n\r", [(0, 1), (2, 2), (4, 5), (6, 6)]),
    ("日本\n\nß", [(0, 2), (3, 3), (4, 5)]),
    ("\n\r\n\r", [(0, 0), (1, 1), (3, 3)]),
]


@pytest.mark.parametrize(("text", "bounds"), LINES)
def test_line_bounds_with_every_line_ending(text: str, bounds: list[tuple[int, int]]) -> None:
    starts, ends = line_starts_and_ends(text)
    assert list(zip(starts, ends)) == bounds


def test_locate_gives_the_offsets_of_the_first_and_last_line(tmp_path: Path) -> None:
    data = "head\r\n\r\nfirst line\r\nmiddle\rlast line\nfoot\n".encode("utf-8")
    (tmp_path / "page.txt").write_bytes(data)
    sources = SourceIndex(tmp_path, ingest.Config())
    sha = hashlib.sha256(data).hexdigest()
    lines, offsets = sources.locate("page.txt", sha, [3, 4, 5])
    assert lines == [3, 5] and offsets is not None
    assert all(type(offset) is int for offset in offsets)  # not numpy's: rows are JSON
    assert data.decode("utf-8")[offsets[0]:offsets[1]] == "first line\r\nmiddle\rlast line"
    assert sources.locate("page.txt", sha, [9]) == ([9, 9], None)  # past the last line
    assert sources.locate("page.txt", "0" * 64, [3]) == ([3, 3], None)  # the file changed since
