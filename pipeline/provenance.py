"""Where a corpus text stands in its source file: line numbers and character offsets.

Lines of the original file are split on CRLF, CR or LF (as the clean stage does);
offsets are character offsets into the decoded text, so that
`decoded[start:end]` holds the article's first line through its last line.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import numpy as np

from pipeline.stages import ingest

CR, LF = 13, 10


def line_starts_and_ends(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Start and end of every line, the end excluding its line break, as int64 arrays.

    The breaks are found by numpy among the text's code points (its bytes when ASCII, else its
    UTF-32): `str.split` made a string of every line, twice the instructions on the 20 MB
    bench's sources (300k lines). A CR is a break, and so is a LF unless a CR is before it,
    which makes the CR's break two characters wide."""
    if text.isascii():
        codes = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    else:
        codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
    lf = codes == LF
    if "\r" in text:
        cr = codes == CR
        after_cr = np.concatenate(([False], cr[:-1]))
        breaks = np.flatnonzero(cr | (lf & ~after_cr))
        widths = 1 + np.concatenate((after_cr[1:] & lf[1:], [False]))[breaks]
    else:
        breaks = np.flatnonzero(lf)
        widths = 1
    ends = np.append(breaks, len(text))
    starts = np.append(0, breaks + widths)
    if starts[-1] == len(text):  # an empty text, or a last break with no line after it
        return starts[:-1], ends[:-1]
    return starts, ends


class SourceIndex:
    """Reads source files on demand (one at a time) to turn line numbers into offsets."""

    def __init__(self, input_dir: Path, config: ingest.Config) -> None:
        self.input_dir = input_dir
        self.config = config

    @lru_cache(maxsize=4)
    def _lines(self, source: str, sha256: str) -> tuple[np.ndarray, np.ndarray] | None:
        path = self.input_dir / source
        try:
            data = path.read_bytes()
        except OSError:
            return None
        if hashlib.sha256(data).hexdigest() != sha256:
            return None  # the file changed since it was read: no offsets rather than wrong ones
        text, _encoding, _replaced = ingest.decode(data, self.config)
        return line_starts_and_ends(text)

    def locate(self, source: str, sha256: str, line_numbers: list[int]) -> tuple[list[int] | None, list[int] | None]:
        """([first line, last line], [start offset, end offset]) of a text, or Nones."""
        if not line_numbers:
            return None, None
        first, last = line_numbers[0], line_numbers[-1]
        bounds = self._lines(source, sha256)
        if bounds is None or not 1 <= first <= last <= len(bounds[0]):
            return [first, last], None
        starts, ends = bounds
        return [first, last], [int(starts[first - 1]), int(ends[last - 1])]
