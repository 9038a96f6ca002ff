"""Where a corpus text stands in its source file: line numbers and character offsets.

Lines of the original file are split on CRLF, CR or LF (as the clean stage does);
offsets are character offsets into the decoded text, so that
`decoded[start:end]` holds the article's first line through its last line.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from pathlib import Path

from pipeline.stages import ingest

NEWLINE = re.compile(r"\r\n|\r|\n")


def line_starts_and_ends(text: str) -> list[tuple[int, int]]:
    """(start, end) of every line, the end excluding its line break."""
    bounds: list[tuple[int, int]] = []
    start = 0
    for match in NEWLINE.finditer(text):
        bounds.append((start, match.start()))
        start = match.end()
    if start < len(text):
        bounds.append((start, len(text)))
    return bounds


class SourceIndex:
    """Reads source files on demand (one at a time) to turn line numbers into offsets."""

    def __init__(self, input_dir: Path, config: ingest.Config) -> None:
        self.input_dir = input_dir
        self.config = config

    @lru_cache(maxsize=4)
    def _lines(self, source: str, sha256: str) -> list[tuple[int, int]] | None:
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
        if bounds is None or not 1 <= first <= last <= len(bounds):
            return [first, last], None
        return [first, last], [bounds[first - 1][0], bounds[last - 1][1]]
