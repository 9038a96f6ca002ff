"""Where a corpus text stands in its source file: line numbers and character offsets.

Lines of the original file are split on CRLF, CR or LF (as the clean stage does);
offsets are character offsets into the decoded text, so that
`decoded[start:end]` holds the article's first line through its last line.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from itertools import accumulate, count
from operator import add, sub
from pathlib import Path

from pipeline.stages import ingest

NEWLINE = re.compile(r"(\r\n|\r|\n)")  # captured: the split keeps each break, for its width


def line_starts_and_ends(text: str) -> tuple[list[int], list[int]]:
    """Start and end of every line, the end excluding its line break.

    Without a CR every break is one "\n" and `str.split` finds them; the regex, which
    looks at every character, is three times slower and only needed for CRs."""
    if "\r" in text:
        parts = NEWLINE.split(text)  # line, break, line, break, ..., line
        offsets = list(accumulate(map(len, parts), initial=0))
        starts, ends = offsets[0::2], offsets[1::2]
    else:
        lengths = list(map(len, text.split("\n")))
        ends = list(map(add, accumulate(lengths), count()))  # line i ends after lines 0..i and i breaks
        starts = list(map(sub, ends, lengths))
    if starts[-1] == len(text):  # an empty text, or a last break with no line after it
        starts.pop()
        ends.pop()
    return starts, ends


class SourceIndex:
    """Reads source files on demand (one at a time) to turn line numbers into offsets."""

    def __init__(self, input_dir: Path, config: ingest.Config) -> None:
        self.input_dir = input_dir
        self.config = config

    @lru_cache(maxsize=4)
    def _lines(self, source: str, sha256: str) -> tuple[list[int], list[int]] | None:
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
        return [first, last], [starts[first - 1], ends[last - 1]]
