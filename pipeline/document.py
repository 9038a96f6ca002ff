"""The two shapes every stage speaks: lines of a page, and spans of change.

A stage never edits text in place. It decides a list of `Span`s over its input
text (what to remove or replace, and why) and `apply_spans` produces the output.
The spans are written to the stage's audit output, so every change is recorded
with a reason, and the input can be rebuilt from the output plus the spans.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a text, with its offsets; `end` excludes the newline."""

    index: int
    start: int
    end: int
    text: str

    @property
    def stripped(self) -> str:
        return self.text.strip()

    @property
    def indent(self) -> int:
        """Width of the leading whitespace (a tab counts as one column)."""
        return len(self.text) - len(self.text.lstrip())

    @property
    def is_blank(self) -> bool:
        return not self.text.strip()


def split_lines(text: str) -> list[Line]:
    """Split on '\\n' only, keeping offsets into `text`; a final newline adds no line."""
    lines: list[Line] = []
    start = 0
    index = 0
    length = len(text)
    while start < length:
        end = text.find("\n", start)
        if end == -1:
            end = length
        lines.append(Line(index, start, end, text[start:end]))
        index += 1
        start = end + 1
    return lines


@dataclass(frozen=True, slots=True)
class Span:
    """A change to a stage's input text: `text[start:end]` becomes `replacement`.

    `reason` is a code from the stage's declared set. A removal has an empty
    replacement. `original` is the input text of the span, kept so that the
    audit can show it and the input can be rebuilt without the input file.
    """

    start: int
    end: int
    reason: str
    original: str
    replacement: str = ""

    def to_json(self) -> dict[str, object]:
        record: dict[str, object] = {
            "start": self.start,
            "end": self.end,
            "reason": self.reason,
            "original": self.original,
        }
        if self.replacement:
            record["replacement"] = self.replacement
        return record


def line_span(line: Line, text: str, reason: str) -> Span:
    """A span removing a whole line and the newline that ends it (if any)."""
    end = line.end + 1 if line.end < len(text) and text[line.end] == "\n" else line.end
    return Span(line.start, end, reason, text[line.start:end])


def apply_spans(text: str, spans: Iterable[Span]) -> str:
    """Apply non-overlapping spans to `text`; raises ValueError if they overlap."""
    pieces: list[str] = []
    cursor = 0
    for span in sorted(spans, key=lambda s: (s.start, s.end)):
        if span.start < cursor:
            raise ValueError(f"overlapping spans at offset {span.start}")
        pieces.append(text[cursor:span.start])
        pieces.append(span.replacement)
        cursor = span.end
    pieces.append(text[cursor:])
    return "".join(pieces)


def map_offset(offset: int, spans: Sequence[Span]) -> int:
    """Map an offset of the input text to the output text of `apply_spans`."""
    shift = 0
    for span in sorted(spans, key=lambda s: s.start):
        if span.end <= offset:
            shift += len(span.replacement) - (span.end - span.start)
        elif span.start < offset:
            return span.start + shift + len(span.replacement)
        else:
            break
    return offset + shift
