"""The span ledger, read backwards: rebuild every input page from the final records.

Each stage folder records what the stage changed (`spans.jsonl`) next to what it
produced (`records.jsonl`). Starting from the LAST stage's records, this module
undoes the stages one by one using only their spans (and `origin` for split),
and at every stage boundary compares what it rebuilt with the records the
previous stage actually wrote. The last comparison is with ingest's decoded
text, so a page that passes is accounted for character by character.

How each stage is undone:

- per-record stages (clean, boilerplate, metadata, dedup, langid, and any stage
  not named below): a record's input text is its output text with every span's
  `replacement` swapped back for its `original`. Spans carrying `"pass": k` are
  undone from the last pass to pass 0 (pass k's offsets are into pass k-1's
  output). A dropped record with spans is rebuilt from the spans alone;
- split: a page's text is rebuilt from every output record's `origin` ranges
  (the record's text split on "\\n", one piece per range) and split's spans.

Two rules say what the ledger does not hold, and how the check treats it:

Rule W (split whitespace). Split records no span for the whitespace it drops:
the newlines between lines, blank lines, and the indentation and trailing
spaces of kept lines. A character of split's input that no `origin` range and
no span covers is rebuilt as "implicit whitespace": its position is known, its
value is not. The check requires the real character there to be whitespace
(`str.isspace`). After the last recorded character of a page the LENGTH of the
whitespace tail is unknown as well: the real tail must be all whitespace.
Everything else is compared character for character.

Rule D (dedup drops). A record dropped by dedup is listed with its reason but
without its text, so its text cannot come from the ledger. It is taken from
the dedup stage's input records and counted as "borrowed"; with
`strict=True` a borrowed record is a problem. If a dropped entry carries spans
covering the record, those are used instead and checked like any other.

What would make both rules unnecessary (changes to the stages, not made here):

- split: add a span with reason "layout" (declared in split.REASONS) for every maximal
  run of its input text that no output record's `origin` and no other span covers,
  the run after the last line included: `Span(a, b, "layout", text[a:b])`. Once a
  page's split entry holds a "layout" span, this module requires exact coverage
  (a gap is a problem and the tail is closed), so rule W no longer applies to it;
- dedup: when it drops a record, return `spans=[Span(0, len(text), reason, text)]`
  over the record's whole input text (instead of its repeated-line spans, which
  the whole-text span would overlap). Such spans are already used and checked.

`check_run(output_dir)` returns one `Problem` per page that fails: the stage
whose input could not be rebuilt, the record, and the first offset (in that
stage's input text) where the rebuilt text and the real one differ.
"""

from __future__ import annotations

import gc
import io
import json
import mmap
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np

Record = dict[str, Any]

SENTINEL = "\ufdd0"
"""Stands for an implicit whitespace character in a rebuilt text (a Unicode
noncharacter; the tags, not this character, say which positions are implicit)."""

IMPLICIT = 0
"""The fate index of an implicit whitespace character (rule W)."""

LAYOUT = "layout"
"""The reason split would give its whitespace spans to make its ledger exact (not used by split yet)."""

_RECORD_SUFFIX = re.compile(r"^(?P<page>.*)#[rc]\d+$")


# --- fates: what became of each character ----------------------------------------------------


@dataclass(frozen=True)
class Fate:
    """What became of a character of the input page.

    kind: "kept" (it is in a final record), "removed" (a span with no replacement,
    or a dropped record), "changed" (a span's original whose replacement went on
    to the fate `base`), or "implicit" (whitespace split left unrecorded).
    """

    kind: str
    stage: str = ""
    reason: str = ""
    record: str | None = None
    detail: str = ""
    base: int | None = None


class FateTable:
    """Interned fates; characters carry an index into `items`."""

    def __init__(self) -> None:
        self.items: list[Fate] = []
        self._index: dict[tuple[str, str, str, str | None, str, int | None], int] = {}
        self.add(Fate("implicit", "split", "whitespace", detail="whitespace split left unrecorded (rule W)"))

    def add(self, fate: Fate) -> int:
        return self.intern(fate.kind, fate.stage, fate.reason, fate.record, fate.detail, fate.base)

    def intern(self, kind: str, stage: str = "", reason: str = "", record: str | None = None, detail: str = "",
               base: int | None = None) -> int:
        """The index of the fate with these fields, added if new; `add` without building a
        Fate for one already known (a page has thousands of spans and a few dozen fates)."""
        key = (kind, stage, reason, record, detail, base)
        index = self._index.get(key)
        if index is None:
            index = self._index[key] = len(self.items)
            self.items.append(Fate(kind, stage, reason, record, detail, base))
        return index

    def resolve_index(self, index: int) -> int:
        """Follow "changed" fates to the fate of what replaced the characters."""
        for _ in range(64):  # one step per pass of a stage that rewrites text; never near 64
            fate = self.items[index]
            if fate.kind != "changed" or fate.base is None:
                break
            index = fate.base
        return index

    def resolve(self, index: int) -> Fate:
        """The fate, following "changed" to the fate of what replaced it."""
        return self.items[self.resolve_index(index)]


# --- tapes: text with a fate per character ---------------------------------------------------


@dataclass
class Tape:
    """A rebuilt text, one fate index per character.

    `open_tail`: the text may continue with whitespace of unknown length (rule W).
    """

    text: str
    tags: list[int]
    open_tail: bool = False

    @classmethod
    def uniform(cls, text: str, tag: int) -> Tape:
        return cls(text, [tag] * len(text))

    @classmethod
    def implicit(cls, length: int) -> Tape:
        return cls(SENTINEL * length, [IMPLICIT] * length)

    def __len__(self) -> int:
        return len(self.text)

    def implicit_count(self) -> int:
        # An implicit character is a SENTINEL: most texts hold none, and that is much cheaper
        # to find than comparing every tag.
        return self.tags.count(IMPLICIT) if SENTINEL in self.text else 0


def _join(pieces: Sequence[Tape], open_tail: bool) -> Tape:
    tags: list[int] = []
    for piece in pieces:
        tags.extend(piece.tags)
    return Tape("".join(piece.text for piece in pieces), tags, open_tail)


class LedgerError(Exception):
    """The spans cannot be undone on this text; `offset` is in the stage's input text."""

    def __init__(self, offset: int | None, message: str, record: str | None = None) -> None:
        super().__init__(message)
        self.offset = offset
        self.message = message
        self.record = record


def _piece(tape: Tape, start: int, end: int, input_offset: int) -> Tape:
    """tape[start:end]; past the end of an open tape, implicit whitespace fills in."""
    if end <= len(tape):
        return Tape(tape.text[start:end], tape.tags[start:end])
    if not tape.open_tail:
        raise LedgerError(input_offset, f"the output text ends at {len(tape)}, the spans need {end} characters")
    have = Tape(tape.text[start:], tape.tags[start:]) if start < len(tape) else Tape("", [])
    return _join([have, Tape.implicit(end - max(start, len(tape)))], False)


def _matches(piece: Tape, expected: str) -> int | None:
    """Index of the first character of `piece` that cannot be `expected`'s, or None."""
    if piece.text == expected:
        return None
    for i, (got, want) in enumerate(zip(piece.text, expected)):
        if got != want and not (piece.tags[i] == IMPLICIT and want.isspace()):
            return i
    return None if len(piece.text) == len(expected) else min(len(piece.text), len(expected))


def unapply(tape: Tape, spans: Sequence[Record], stage: str, fates: FateTable, label: str = "",
            record: str | None = None) -> Tape:
    """Undo one pass of spans: the input text from the output text, fates carried along.

    Raises LedgerError when a span is malformed, overlaps another, or its
    replacement is not where the output text should hold it.
    """
    texts: list[str] = []
    tags: list[int] = []
    size = len(tape.text)
    cursor_in = 0
    cursor_out = 0
    where = f"{stage}{label}"
    known: dict[tuple[str, int | None], int] = {}  # (reason, base) -> fate: spans share a few
    for span in sorted(spans, key=lambda s: (int(s["start"]), int(s["end"]))):
        start, end = int(span["start"]), int(span["end"])
        original = str(span.get("original", ""))
        replacement = str(span.get("replacement") or "")
        reason = str(span.get("reason", "?"))
        if end < start or len(original) != end - start:
            raise LedgerError(start, f"{where}: span {start}..{end} ({reason}) holds {len(original)} "
                                     f"original characters for a range of {end - start}")
        if start < cursor_in:
            raise LedgerError(start, f"{where}: span {start}..{end} ({reason}) overlaps the span before it")
        gap_end = cursor_out + start - cursor_in
        if gap_end <= size:
            texts.append(tape.text[cursor_out:gap_end])
            tags += tape.tags[cursor_out:gap_end]
        else:
            gap = _piece(tape, cursor_out, gap_end, cursor_in)
            texts.append(gap.text)
            tags += gap.tags
        cursor_out = gap_end
        if replacement:
            found = _piece(tape, cursor_out, cursor_out + len(replacement), start)
            bad = _matches(found, replacement)
            if bad is not None:
                raise LedgerError(start, f"{where}: span {start}..{end} ({reason}) expects its replacement "
                                         f"{replacement!r} in the output at {cursor_out}, found "
                                         f"{found.text.replace(SENTINEL, '·')!r}")
            base = found.tags[0]
            tag = known.get((reason, base))
            if tag is None:
                tag = known[(reason, base)] = fates.intern("changed", stage, reason, base=base)
        else:
            tag = known.get((reason, None))
            if tag is None:
                tag = known[(reason, None)] = fates.intern("removed", stage, reason, record)
        texts.append(original)
        tags += [tag] * len(original)
        cursor_out += len(replacement)
        cursor_in = end
    if cursor_out > size and not tape.open_tail:
        raise LedgerError(cursor_in, f"{where}: the spans reach past the end of the output text")
    texts.append(tape.text[cursor_out:])
    tags += tape.tags[cursor_out:]
    return Tape("".join(texts), tags, tape.open_tail)


def unapply_passes(tape: Tape, spans: Sequence[Record], stage: str, fates: FateTable,
                   record: str | None = None) -> Tape:
    """Undo every pass, the last first; spans without "pass" are pass 0."""
    passes: dict[int, list[Record]] = {}
    for span in spans:
        passes.setdefault(int(span.get("pass", 0)), []).append(span)
    for number in sorted(passes, reverse=True):
        label = f" pass {number}" if len(passes) > 1 else ""
        try:
            tape = unapply(tape, passes[number], stage, fates, label, record)
        except LedgerError as err:
            if number != 0:
                # Offsets of later passes are not in the stage's input text.
                raise LedgerError(None, f"{err.message} (offset {err.offset} of pass {number}'s input)") from None
            raise
    return tape


def assemble(pieces: Iterable[tuple[int, int, Tape, str]], where: str, exact: bool = False) -> Tape:
    """A text from pieces at known offsets; gaps are implicit whitespace, the tail is open.

    Each piece is (start, end, tape, what) with len(tape) == end - start. With
    `exact`, the pieces must cover the text: a gap is an error and the tail is closed.
    """
    return _assemble([(start, end, tape.text, tape.tags, what, None) for start, end, tape, what in pieces],
                     where, exact)


_Piece = tuple[int, int, str, list[int] | int, str, str | None]
"""start, end, text, its tags (or the one tag of all its characters), and what it is: a kind
and a name, joined by a space into the `what` of `assemble` only for an error message."""


def _what(kind: str, name: str | None) -> str:
    return kind if name is None else f"{kind} {name}"


def _assemble(pieces: list[_Piece], where: str, exact: bool) -> Tape:
    """`assemble` of pieces that need no Tape each (split has one per line and per span)."""
    pieces.sort(key=itemgetter(0, 1))
    texts: list[str] = []
    tags: list[int] = []
    cursor = 0
    previous: tuple[str, str | None] = ("", None)
    for start, end, text, tag, kind, name in pieces:
        if end - start != len(text):
            raise LedgerError(start, f"{where}: {_what(kind, name)} covers {start}..{end} but holds "
                                     f"{len(text)} characters")
        if start < cursor:
            raise LedgerError(start, f"{where}: characters {start}..{min(cursor, end)} claimed twice "
                                     f"({_what(*previous)} and {_what(kind, name)})")
        if start > cursor:
            if exact:
                raise LedgerError(cursor, f"{where}: characters {cursor}..{start} are in no record and no span")
            texts.append(SENTINEL * (start - cursor))
            tags += [IMPLICIT] * (start - cursor)
        texts.append(text)
        if isinstance(tag, int):
            tags += [tag] * len(text)
        else:
            tags += tag
        cursor = end
        previous = (kind, name)
    return Tape("".join(texts), tags, not exact)


def first_difference(tape: Tape, truth: str) -> tuple[int, str] | None:
    """Where `tape` stops agreeing with `truth` under rule W, with a description."""
    text = tape.text
    if text == truth and SENTINEL not in text:  # most texts: nothing to look at character by character
        return None
    limit = min(len(text), len(truth))
    pos = 0
    while pos < limit:
        k = text.find(SENTINEL, pos, limit)
        stop = limit if k == -1 else k
        if text[pos:stop] != truth[pos:stop]:
            for i in range(pos, stop):
                if text[i] != truth[i]:
                    return i, f"rebuilt {_show(text, i)} but the stage's input has {_show(truth, i)}"
        if k == -1:
            break
        if tape.tags[k] == IMPLICIT:
            if not truth[k].isspace():
                return k, (f"split left {truth[k]!r} unrecorded (rule W allows only whitespace "
                           f"outside origin ranges and spans): {_show(truth, k)}")
        elif truth[k] != SENTINEL:
            return k, f"rebuilt {_show(text, k)} but the stage's input has {_show(truth, k)}"
        pos = k + 1
    if len(text) > len(truth):
        return len(truth), f"rebuilt text is {len(text)} characters, the stage's input {len(truth)}"
    if len(text) < len(truth):
        tail = truth[len(text):]
        if not (tape.open_tail and tail.isspace()):
            return len(text), (f"rebuilt text ends at {len(text)}, the stage's input goes on: "
                               f"{_show(truth, len(text))}")
    return None


def _show(text: str, offset: int, width: int = 24) -> str:
    piece = text[max(0, offset - 4): offset + width].replace(SENTINEL, "·")
    return repr(piece)


# --- problems --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """The first place a page cannot be rebuilt: stage input, record, offset."""

    page: str
    stage: str
    record: str
    offset: int | None
    message: str

    def __str__(self) -> str:
        where = f"offset {self.offset}" if self.offset is not None else "offset unknown"
        record = "" if self.record == self.page else f", record {self.record}"
        return f"{self.page}: {self.stage} input{record}, {where}: {self.message}"


# --- reading a run ---------------------------------------------------------------------------


@dataclass
class StageData:
    """One stage's records and span entries, grouped by page."""

    name: str
    folder: Path | None = None
    records: dict[str, list[Record]] = field(default_factory=dict)  # page -> output records
    entries: dict[str, list[Record]] = field(default_factory=dict)  # page -> span entries
    stats: dict[str, Any] = field(default_factory=dict)


def page_of(record: Record) -> str:
    """The input page a record comes from."""
    page = record.get("page_id")
    return str(page) if page else str(record["id"])


def page_of_id(record_id: str) -> str:
    """The page of a record id when only the id is known (`<page>#rN`, `<page>#cN`)."""
    match = _RECORD_SUFFIX.match(record_id)
    return match.group("page") if match else record_id


def stage_folders(output_dir: Path) -> list[tuple[str, Path]]:
    """(name, folder) of the complete stage folders of a run, in stage order."""
    root = Path(output_dir) / "stages"
    found: list[tuple[int, str, Path]] = []
    if root.is_dir():
        for folder in root.iterdir():
            match = re.fullmatch(r"(\d+)-(.+)", folder.name)
            if match and folder.is_dir() and (folder / "records.jsonl").is_file() \
                    and (folder / "stats.json").is_file():
                found.append((int(match.group(1)), match.group(2), folder))
    found.sort()
    chain: list[tuple[str, Path]] = []
    previous_out: tuple[int, int] | None = None
    for _, name, folder in found:
        stats = _read_json(folder / "stats.json")
        counts_in = (stats.get("documents_in"), stats.get("characters_in"))
        # A stage that did not read what the stage before wrote is left over from another run.
        if previous_out is not None and counts_in != previous_out:
            break
        previous_out = (stats.get("documents_out"), stats.get("characters_out"))
        chain.append((name, folder))
    return chain


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _jsonl(path: Path, known: dict[str, Record] | None = None, read: dict[str, Record] | None = None
           ) -> Iterator[Record]:
    """The records of a JSONL file. A line found in `known` is not parsed: its record is
    shared (a stage passes many records on unchanged, and records here are only read).
    Each line and its record go into `read`."""
    if not path.is_file():
        return
    with path.open("r", encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.isspace():  # as `line.strip()`, without copying long lines
                record = known.get(line) if known is not None else None
                if record is None:
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError as err:
                        raise ValueError(f"{path}:{number}: not valid JSON ({err.msg})") from err
                if read is not None:
                    read[line] = record
                yield record


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cycle collector off for a while: parsed JSON holds no reference cycles, and
    each collector pass over a heap that grows by a whole run's records costs more than
    the parsing itself."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_run(output_dir: Path, pages: set[str] | None = None) -> list[StageData]:
    """Every stage of the run's chain, optionally only the records of `pages`."""
    with collector_paused():
        return _load_run(output_dir, pages)


def _load_run(output_dir: Path, pages: set[str] | None) -> list[StageData]:
    chain = stage_folders(output_dir)
    data: list[StageData] = []
    record_pages: dict[str, str] = {}  # record id -> page, of the previous stage's outputs
    lines: dict[str, Record] = {}  # the previous stage's records by their line in records.jsonl
    for name, folder in chain:
        stage = StageData(name, folder, stats=_read_json(folder / "stats.json"))
        for entry in _jsonl(folder / "spans.jsonl"):
            entry_id = str(entry.get("id"))
            page = record_pages.get(entry_id) or page_of_id(entry_id)
            if pages is None or page in pages:
                stage.entries.setdefault(page, []).append(entry)
        record_pages = {}
        known, lines = lines, {}
        for record in _jsonl(folder / "records.jsonl", known, lines):
            page = page_of(record)
            record_pages[str(record["id"])] = page
            if pages is None or page in pages:
                stage.records.setdefault(page, []).append(record)
        data.append(stage)
    return data


class RunOutOfOrder(Exception):
    """A stage file whose records are not grouped by page in input order (not written by
    the runner): such a run can only be read whole (`load_run`)."""


LINE_KEY_BYTES = 256
"""A record line is looked up among the stage before's by its start (the record's id): hashing
whole lines (10 KB and more) cost more than the look-up saves; equal keys are then compared."""


def _invalid(path: Path, offset: int, lines: int, err: json.JSONDecodeError) -> ValueError:
    """The error for a line that is not JSON: `lines` lines after byte `offset` of `path`
    (the line number is counted here, in text mode as the file is read, only for the message)."""
    with path.open("rb") as raw:
        before = raw.read(offset)
    number = sum(1 for _ in io.TextIOWrapper(io.BytesIO(before), encoding="utf-8")) + lines
    return ValueError(f"{path}:{number}: not valid JSON ({err.msg})")


class _Lines:
    """The lines of a JSONL file from byte `start` to byte `end` (line starts), split as text
    mode splits the whole file (universal newlines; "\r" and "\n" are single bytes in UTF-8),
    without their newline. A line stays bytes until it is parsed: one equal to a line in
    `known` (the stage before's lines of the same pages, by LINE_KEY_BYTES) is neither
    decoded nor parsed, and of one that adds members to such a line only the added members
    are (`_shared_record`). Decoding a range whole and splitting the text cost more than the
    parsing saved (3 groups of the 5 MB bench: 438M instructions to read as text, 361M as bytes)."""

    def __init__(self, path: Path, start: int, end: int) -> None:
        self.path = path
        self._start = start
        self._lines: list[bytes] = []
        if end > start:
            with path.open("rb") as raw:
                raw.seek(start)
                data = raw.read(end - start)
            if b"\r" in data:
                data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            self._lines = data.split(b"\n")
        self._next = 0  # the index of the first line not taken

    def take(self, pages: set[str], page: Callable[[Record], str], known: dict[bytes, tuple[bytes, Record]],
             read: dict[bytes, tuple[bytes, Record]] | None = None) -> list[tuple[Record, str]]:
        """(record, its page) of the lines from here on while their page is in `pages`, each
        line and its record put in `read`; the first line of another page is parsed, and left."""
        taken: list[tuple[Record, str]] = []
        lines = self._lines
        index = self._next
        while index < len(lines):
            line = lines[index]
            if line.strip():
                key = line[:LINE_KEY_BYTES]
                same = known.get(key) if known else None
                record = _shared_record(line, *same) if same is not None else None
                if record is None:
                    text = line.decode("utf-8")
                    if text.isspace():  # blank in text mode: non-ASCII whitespace
                        index += 1
                        continue
                    try:
                        record = json.loads(text)
                    except json.JSONDecodeError as err:
                        raise _invalid(self.path, self._start, index + 1, err) from err
                where = page(record)
                if where not in pages:
                    break
                if read is not None:
                    read[key] = line, record
                taken.append((record, where))
            index += 1
        self._next = index
        return taken

    def left(self) -> bool:
        """Whether `take` stopped at a line of another page (it takes blank lines as it goes)."""
        return self._next < len(self._lines)


def _shared_record(line: bytes, before_line: bytes, before: Record) -> Record | None:
    """The record of `line` made from the stage before's line and record, if `line` is that
    line or that line with members added at the end (dedup and langid write their input
    record, then their fields): only the added members are parsed."""
    if line == before_line:
        return before
    body = before_line.rstrip()
    end = len(body) - 1  # the closing brace
    if not (isinstance(before, dict) and before and body.endswith(b"}") and line[end:end + 1] == b","
            and line.startswith(body[:end])):
        return None
    try:
        added = json.loads("{" + line[end + 1:].decode("utf-8"))
    except json.JSONDecodeError:
        return None  # parsed whole, for the error message
    return {**before, **added} if added else None  # none: a trailing comma, an error


# --- a run cut into groups of pages -----------------------------------------------------------
#
# The runner writes every stage file in input page order, a page's lines together, so the
# lines of consecutive pages are one byte range of each file. `cut_run` finds the ranges
# without parsing the files: it walks the first stage's records (the page order) and, in
# every other file, binary-searches the first line of each group, reading a line's page
# from its leading members as `io.dumps` writes them (a line written otherwise is parsed
# whole). `read_group` then parses a group's ranges as a batch was always read, and what
# the cut got wrong it cannot miss: every line of every file lies in exactly one group's
# ranges, and a line there that is not of the group's pages raises RunOutOfOrder.

_JSON_STRING = rb'"[^"\\]*(?:\\.[^"\\]*)*"'
_LEAD_ID = re.compile(rb'\{"id":(' + _JSON_STRING + rb')')
_LEAD_PAGE_ID = re.compile(rb'\{"id":(' + _JSON_STRING + rb')(?:,' + _JSON_STRING + rb':(?:' + _JSON_STRING
                           + rb'|[-+.\w]+))*?,"page_id":(' + _JSON_STRING + rb'|null)')
"""The id and page_id of a line whose members before page_id are strings, numbers, true,
false or null (split's records and those after it start: id, kind, page_id)."""
_NOT_BLANK = re.compile(rb"\S")


@dataclass(frozen=True)
class PageGroup:
    """Consecutive input pages, and the byte range (start, end) of their lines in each
    stage's records.jsonl and spans.jsonl, in chain order."""

    pages: tuple[str, ...]
    records: tuple[tuple[int, int], ...]
    entries: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class RunCut:
    """A run's chain of stages, and its pages cut into groups in input order."""

    chain: list[tuple[str, Path]]
    stats: list[dict[str, Any]]
    groups: list[PageGroup]

    @property
    def order(self) -> list[str]:
        """The run's pages in input order (the first stage's records)."""
        return [page for group in self.groups for page in group.pages]


def _string(literal: bytes) -> str:
    """The value of a JSON string literal (quotes included)."""
    return literal[1:-1].decode("utf-8") if b"\\" not in literal else str(json.loads(literal))


def _line_page(data: Any, start: int, end: int) -> str:
    """`page_of` the record on `data[start:end]`, from its leading members where they tell."""
    if data.find(b'"page_id"', start, end) < 0:  # no such member (an escaped key: the worker sees it)
        match = _LEAD_ID.match(data, start, end)
        if match:
            return _string(match.group(1))
    else:
        match = _LEAD_PAGE_ID.match(data, start, end)
        if match:
            page = _string(match.group(2)) if match.group(2) != b"null" else ""
            return page or _string(match.group(1))
    return page_of(json.loads(data[start:end]))


def _line_id(data: Any, start: int, end: int) -> str:
    """`str(entry.get("id"))` of the span entry on `data[start:end]`."""
    match = _LEAD_ID.match(data, start, end)
    return _string(match.group(1)) if match else str(json.loads(data[start:end]).get("id"))


@contextmanager
def _mapped(path: Path) -> Iterator[Any]:
    """The bytes of a file (b"" if it is empty or missing), mapped rather than read."""
    if not path.is_file() or path.stat().st_size == 0:
        yield b""
        return
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        yield data


def _lines(data: Any, start: int, end: int) -> Iterator[tuple[int, int]]:
    """(start, end) of the lines of data[start:end] that are not blank; `start` a line start."""
    while start < end:
        newline = data.find(b"\n", start, end)
        stop = end if newline < 0 else newline + 1
        if _NOT_BLANK.search(data, start, stop):
            yield start, stop
        start = stop


def _first_line_from(data: Any, lo: int, hi: int, index: int, place: Callable[[int, int], int]) -> int:
    """The start of the first line of data[lo:hi] (`lo` a line start) whose page comes at
    `index` of the order or later (`place` of a line: its page's index), or `hi`: a binary
    search, as the lines are in page order. A blank line counts as the line after it."""
    while lo < hi:
        mid = (lo + hi) // 2
        start = data.rfind(b"\n", lo, mid) + 1 or lo  # of the line that holds `mid`
        line = next(_lines(data, start, hi), None)
        if line is None or place(*line) >= index:
            hi = start
        else:
            lo = line[1]
    return lo


def _cut_first(data: Any, path: Path, pages_per_group: int, bytes_per_group: int | None
               ) -> tuple[list[list[str]], list[int]]:
    """The pages of the first stage's records cut into groups, and where each group's lines
    start (then the end of the file)."""
    groups: list[list[str]] = []
    bounds = [0]
    seen: set[str] = set()
    page: str | None = None
    for start, end in _lines(data, 0, len(data)):
        try:
            found = _line_page(data, start, end)
        except json.JSONDecodeError as err:
            raise _invalid(path, start, 1, err) from err
        if found == page:
            continue
        if found in seen:
            raise RunOutOfOrder(f"{path}: the lines of page {found!r} are not together")
        seen.add(found)
        page = found
        if not groups or len(groups[-1]) >= pages_per_group or (
                bytes_per_group is not None and start - bounds[-1] >= bytes_per_group):
            if groups:
                bounds.append(start)
            groups.append([])
        groups[-1].append(page)
    bounds.append(len(data))
    return groups, bounds


def _cut_file(path: Path, firsts: list[int], page_at: Callable[[Any, int, int], str],
              position: dict[str, int]) -> list[int]:
    """Where each group's lines start in a stage file (then the end of the file); `firsts`:
    the place in the order of each group's first page, `page_at` the page of a line."""
    with _mapped(path) as data:
        def place(start: int, end: int) -> int:
            try:
                page = page_at(data, start, end)
            except json.JSONDecodeError as err:
                raise _invalid(path, start, 1, err) from err
            if page not in position:
                raise RunOutOfOrder(f"{path}: a line of page {page!r}, which the first stage does not hold")
            return position[page]

        bounds = [0]
        for index in firsts[1:]:
            bounds.append(_first_line_from(data, bounds[-1], len(data), index, place))
        bounds.append(len(data))
        if not firsts and next(_lines(data, 0, len(data)), None) is not None:
            raise RunOutOfOrder(f"{path}: lines of pages the first stage does not hold")
        return bounds


def cut_run(output_dir: Path, pages_per_group: int, bytes_per_group: int | None = None) -> RunCut:
    """The run's pages cut into groups of consecutive pages, of at most `pages_per_group`
    pages and, if given, about `bytes_per_group` bytes of the first stage's records each,
    with the byte ranges of their lines in every stage file. Raises RunOutOfOrder where a
    file is seen not to be in input page order (`read_group` sees what this does not)."""
    chain = stage_folders(output_dir)
    stats = [_read_json(folder / "stats.json") for _, folder in chain]
    if not chain:
        return RunCut(chain, stats, [])
    first = chain[0][1] / "records.jsonl"
    with _mapped(first) as data:
        pages, first_bounds = _cut_first(data, first, pages_per_group, bytes_per_group)
    position = {page: i for i, page in enumerate(page for group in pages for page in group)}
    firsts = [position[group[0]] for group in pages]

    def entry_page(data: Any, start: int, end: int) -> str:
        # Span entries name the stage before's records: a page's own id, or <page>#rN, <page>#cN.
        entry_id = _line_id(data, start, end)
        return entry_id if entry_id in position else page_of_id(entry_id)

    def first_entry_page(data: Any, start: int, end: int) -> str:
        return page_of_id(_line_id(data, start, end))  # no stage before: as read_group does

    records: list[list[int]] = []
    entries: list[list[int]] = []
    for number, (_, folder) in enumerate(chain):
        entries.append(_cut_file(folder / "spans.jsonl", firsts, entry_page if number else first_entry_page,
                                 position))
        records.append(first_bounds if not number else _cut_file(folder / "records.jsonl", firsts, _line_page,
                                                                  position))
    groups = [PageGroup(tuple(group), tuple((bounds[i], bounds[i + 1]) for bounds in records),
                        tuple((bounds[i], bounds[i + 1]) for bounds in entries))
              for i, group in enumerate(pages)]
    return RunCut(chain, stats, groups)


def read_group(cut: RunCut, group: PageGroup) -> list[StageData]:
    """Every stage of the chain holding the records and span entries of one group's pages,
    read from the group's byte ranges. Raises RunOutOfOrder if a line there is not of those
    pages, or the first stage's lines there are not those pages in that order."""
    batch = [StageData(name, folder, stats=stat) for (name, folder), stat in zip(cut.chain, cut.stats)]
    records = [_Lines(folder / "records.jsonl", *span) for (_, folder), span in zip(cut.chain, group.records)]
    entries = [_Lines(folder / "spans.jsonl", *span) for (_, folder), span in zip(cut.chain, group.entries)]
    pages = set(group.pages)
    known: dict[bytes, tuple[bytes, Record]] = {}
    for record, page in records[0].take(pages, page_of, {}, known):
        batch[0].records.setdefault(page, []).append(record)
    if tuple(batch[0].records) != group.pages:
        raise RunOutOfOrder(f"{records[0].path}: the pages of a group are not in input order")
    before_ids: dict[str, str] = {}  # record id -> page, of the stage before's records

    def entry_page(entry: Record) -> str:
        entry_id = str(entry.get("id"))
        return before_ids.get(entry_id) or page_of_id(entry_id)

    for position, stage in enumerate(batch):
        for entry, page in entries[position].take(pages, entry_page, {}):
            stage.entries.setdefault(page, []).append(entry)
        if position:
            read: dict[bytes, tuple[bytes, Record]] = {}
            for record, page in records[position].take(pages, page_of, known, read):
                stage.records.setdefault(page, []).append(record)
            known = read
        before_ids = {str(r["id"]): page for page, found in stage.records.items() for r in found}
    for stream in records + entries:
        if stream.left():
            raise RunOutOfOrder(f"{stream.path}: records of pages not in input order")
    return batch


def iter_run(output_dir: Path, pages_per_batch: int) -> Iterator[list[StageData]]:
    """The run a batch of pages at a time: every stage of the chain, holding the records and
    span entries of `pages_per_batch` consecutive input pages only, so memory does not grow
    with the run. The runner writes each stage's records and entries in input page order,
    a page's together; a run whose files are not (`RunOutOfOrder`) must be read whole."""
    cut = cut_run(output_dir, pages_per_batch)
    for group in cut.groups:
        yield read_group(cut, group)


# --- undoing stages --------------------------------------------------------------------------


def kept_fate(record: Record, fates: FateTable) -> int:
    """The fate of a character of a final record: article, related, comment or duplicate."""
    record_id = str(record.get("id"))
    if record.get("duplicate_of"):
        similarity = record.get("dup_similarity")
        detail = f"duplicate of {record['duplicate_of']}" + (f" (similarity {similarity})" if similarity else "")
        return fates.intern("kept", "dedup", "duplicate", record_id, detail)
    if record.get("kind") == "comment":
        depth = int(record.get("depth") or 0)
        bits = [f"comment {record_id.rsplit('#', 1)[-1]}"]
        if record.get("author"):
            bits.append(f"by {record['author']}")
        if record.get("posted_raw"):
            bits.append(f"· {record['posted_raw']}")
        bits.append(f"· depth {depth}")
        if record.get("parent_id"):
            bits.append(f"· reply to {str(record['parent_id']).rsplit('#', 1)[-1]}")
        return fates.intern("kept", "split", "comment", record_id, " ".join(bits))
    if record.get("role") == "related":
        title = record.get("title")
        detail = f"related article {record_id.rsplit('#', 1)[-1]}" + (f": {title}" if title else "")
        return fates.intern("kept", "split", "related", record_id, detail)
    if not record.get("kind"):
        return fates.intern("kept", "", "kept", record_id, "kept (the run stopped before split)")
    return fates.intern("kept", "split", "article", record_id, "main article")


@dataclass
class Level:
    """The texts of one page at one stage boundary: tapes by record id, plus their records."""

    tapes: dict[str, Tape]
    records: dict[str, Record]


def undo_records(stage: str, level: Level, entries: Sequence[Record], fates: FateTable,
                 stage_input: dict[str, Record] | None, borrowed: list[str]) -> Level:
    """Undo a per-record stage: spans swapped back, dropped records restored."""
    tapes = dict(level.tapes)
    records = dict(level.records)
    for entry in entries:
        try:
            _undo_entry(stage, entry, tapes, records, fates, stage_input, borrowed)
        except LedgerError as err:
            err.record = err.record or str(entry.get("id"))
            raise
    return Level(tapes, records)


def _undo_entry(stage: str, entry: Record, tapes: dict[str, Tape], records: dict[str, Record], fates: FateTable,
                stage_input: dict[str, Record] | None, borrowed: list[str]) -> None:
    record_id = str(entry.get("id"))
    spans = entry.get("spans") or []
    if entry.get("dropped"):
        if record_id in tapes:
            raise LedgerError(None, f"{stage}: {record_id} is listed as dropped but has an output record")
        reason = str(entry["dropped"])
        detail = f"duplicate of {entry['duplicate_of']}" if entry.get("duplicate_of") else ""
        tag = fates.add(Fate("removed", stage, reason, record_id, detail))
        source = (stage_input or {}).get(record_id)
        if spans:
            pieces = [(int(s["start"]), int(s["end"]),
                       Tape.uniform(str(s.get("original", "")),
                                    fates.add(Fate("removed", stage, str(s.get("reason")), record_id, detail))),
                       f"span {s.get('reason')}") for s in spans]
            tapes[record_id] = assemble(pieces, f"{stage} dropped {record_id}")
        elif source is not None:
            tapes[record_id] = Tape.uniform(str(source.get("text", "")), tag)
            borrowed.append(record_id)
        else:
            raise LedgerError(None, f"{stage}: {record_id} was dropped ({reason}) and its text is "
                                    "in neither the ledger nor the stage's input")
        records[record_id] = dict(source or {"id": record_id})
        return
    if not spans:
        return
    if record_id not in tapes:
        raise LedgerError(None, f"{stage}: spans for {record_id}, which has no output record")
    tapes[record_id] = unapply_passes(tapes[record_id], spans, stage, fates, record_id)


def undo_split(page: str, level: Level, entries: Sequence[Record], fates: FateTable) -> Level:
    """Undo split: the page text from the records' origin ranges and split's spans (rule W).

    If split records its whitespace as spans with reason LAYOUT (the change proposed in
    the module docstring), the page must be covered exactly: no gap, no open tail.
    """
    pieces: list[_Piece] = []
    for record_id, tape in level.tapes.items():
        record = level.records.get(record_id, {})
        origin = record.get("origin")
        if origin is None:
            raise LedgerError(None, f"split: record {record_id} has no origin")
        if not origin:
            if tape.text:
                raise LedgerError(None, f"split: record {record_id} has text but no origin ranges")
            continue
        lines = tape.text.split("\n", len(origin) - 1)  # the last holds the rest, newlines and all
        if len(lines) < len(origin):
            raise LedgerError(int(origin[len(lines) - 1][0]), f"split: record {record_id} has {len(origin)} "
                                                              f"origin ranges but only {len(lines)} lines")
        if "\n" in lines[-1]:
            raise LedgerError(int(origin[-1][0]), f"split: record {record_id} has more lines than its "
                                                  f"{len(origin)} origin ranges")
        cursor = 0
        for (start, end), line in zip(origin, lines):
            pieces.append((int(start), int(end), line, tape.tags[cursor:cursor + len(line)], "record", record_id))
            cursor += len(line) + 1
    exact = False
    known: dict[str, int] = {}  # reason -> fate
    for entry in entries:
        for span in entry.get("spans") or []:
            if span.get("replacement"):
                raise LedgerError(int(span["start"]), "split: a span with a replacement; split only removes")
            reason = str(span.get("reason"))
            tag = known.get(reason)
            if tag is None:
                exact = exact or reason == LAYOUT
                tag = known[reason] = fates.intern("removed", "split", reason)
            pieces.append((int(span["start"]), int(span["end"]), str(span.get("original", "")), tag, "span", reason))
    tape = _assemble(pieces, "split", exact)
    return Level({page: tape}, {page: {"id": page}})


def compare(stage: str, page: str, level: Level, truth: Sequence[Record]) -> Problem | None:
    """The rebuilt input of `stage` against the records the stage really read."""
    real = {str(r["id"]): r for r in truth}
    missing = sorted(set(real) - set(level.tapes))
    if missing:
        return Problem(page, stage, missing[0], None,
                       f"the stage read {len(missing)} record(s) the ledger does not rebuild: "
                       f"{', '.join(missing[:3])}")
    extra = sorted(set(level.tapes) - set(real))
    if extra:
        return Problem(page, stage, extra[0], None,
                       f"the ledger rebuilds {len(extra)} record(s) the stage never read: {', '.join(extra[:3])}")
    for record_id in sorted(real):
        found = first_difference(level.tapes[record_id], str(real[record_id].get("text", "")))
        if found is not None:
            return Problem(page, stage, record_id, found[0], found[1])
    return None


@dataclass
class PageResult:
    """One page rebuilt back to ingest's text."""

    page: str
    truth: str | None  # ingest's decoded text
    tape: Tape | None  # rebuilt ingest text with fates (None if rebuilding stopped early)
    problem: Problem | None
    fates: FateTable
    records: dict[str, Record]  # final records of the page (and borrowed dropped ones) by id
    source: Record | None  # ingest's record (source, sha256, encoding, bytes)
    borrowed: list[str] = field(default_factory=list)
    implicit: int = 0  # characters rebuilt as implicit whitespace (rule W)
    stages: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None


def rebuild_page(page: str, run: Sequence[StageData], strict: bool = False) -> PageResult:
    """Rebuild one page from the last stage's records back to ingest's text, checking each boundary."""
    fates = FateTable()
    names = [stage.name for stage in run]
    ingest = run[0].records.get(page, []) if run else []
    source = ingest[0] if ingest else None
    truth = str(source.get("text", "")) if source else None
    final = run[-1].records.get(page, []) if run else []
    records = {str(r["id"]): r for r in final}
    level = Level({rid: Tape.uniform(str(r.get("text", "")), kept_fate(r, fates)) for rid, r in records.items()},
                  dict(records))
    result = PageResult(page, truth, None, None, fates, records, source, stages=names)
    for position in range(len(run) - 1, 0, -1):
        stage = run[position]
        before = run[position - 1]
        borrowed: list[str] = []
        level, problem = undo_stage(page, stage, before, level, fates, borrowed)
        for record_id in borrowed:
            result.borrowed.append(record_id)
            result.records.setdefault(record_id, level.records[record_id])
        if problem is None and strict and borrowed:
            problem = Problem(page, stage.name, borrowed[0], None, f"{stage.name}: {borrowed[0]} was dropped "
                                                                   "without its text in the ledger (rule D, strict)")
        if problem is not None:
            result.problem = problem
            return result
    tape = level.tapes.get(page)
    result.tape = tape
    if tape is not None:
        result.implicit = tape.implicit_count() + max(0, len(truth or "") - len(tape))
    if truth is None:
        result.problem = Problem(page, run[0].name if run else "ingest", page, None, "no ingest record")
    return result


def undo_stage(page: str, stage: StageData, before: StageData, level: Level, fates: FateTable,
               borrowed: list[str]) -> tuple[Level, Problem | None]:
    """Undo one stage for one page and compare with what the stage read (`before`'s records)."""
    entries = stage.entries.get(page, [])
    inputs = before.records.get(page, [])
    try:
        if stage.name == "split":
            level = undo_split(page, level, entries, fates)
        else:
            level = undo_records(stage.name, level, entries, fates, {str(r["id"]): r for r in inputs}, borrowed)
    except LedgerError as err:
        return level, Problem(page, stage.name, err.record or page, err.offset, err.message)
    return level, compare(stage.name, page, level, inputs)


def check_stage(before: StageData, stage: StageData) -> list[Problem]:
    """Undo one stage alone: its outputs and spans against the records it read, page by page.

    `before` holds the stage's input records (the previous stage's output).
    """
    problems: list[Problem] = []
    for page in before.records:
        fates = FateTable()
        outputs = {str(r["id"]): r for r in stage.records.get(page, [])}
        level = Level({rid: Tape.uniform(str(r.get("text", "")), kept_fate(r, fates)) for rid, r in outputs.items()},
                      dict(outputs))
        _, problem = undo_stage(page, stage, before, level, fates, [])
        if problem is not None:
            problems.append(problem)
    return problems


def stage_data(name: str, records: Iterable[Record], entries: Iterable[Record] = (),
               inputs: Iterable[Record] = ()) -> StageData:
    """A StageData from records and span entries in memory (as a stage folder would hold them).

    `inputs` (the stage's input records) tell which page an entry belongs to.
    """
    data = StageData(name)
    for record in records:
        data.records.setdefault(page_of(record), []).append(record)
    pages = {str(r["id"]): page_of(r) for r in inputs}
    for entry in entries:
        entry_id = str(entry["id"])
        data.entries.setdefault(pages.get(entry_id) or page_of_id(entry_id), []).append(entry)
    return data


def rebuild_run(output_dir: Path, pages: set[str] | None = None, strict: bool = False) -> list[PageResult]:
    """Rebuild every page of a run (or only `pages`), in input order."""
    run = load_run(Path(output_dir), pages)
    if not run:
        return []
    return [rebuild_page(page, run, strict) for page in run[0].records]


def check_run(output_dir: Path, strict: bool = False) -> list[Problem]:
    """One Problem per page whose text cannot be rebuilt from the final records and the spans.

    Raises FileNotFoundError when the folder holds no stage outputs.
    """
    if not stage_folders(Path(output_dir)):
        raise FileNotFoundError(f"{output_dir}: no stage outputs (stages/NN-name/records.jsonl)")
    return [result.problem for result in rebuild_run(Path(output_dir), strict=strict) if result.problem]


def summary(results: Sequence[PageResult]) -> str:
    """One line: pages, characters checked, implicit whitespace, borrowed records."""
    pages = len(results)
    failed = sum(1 for r in results if not r.ok)
    chars = sum(len(r.truth or "") for r in results)
    implicit = sum(r.implicit for r in results)
    borrowed = sum(len(r.borrowed) for r in results)
    stages = results[0].stages if results else []
    text = (f"{pages - failed}/{pages} pages rebuilt from the final records and the spans of "
            f"{' → '.join(reversed(stages)) or 'no stages'}; {chars} characters, "
            f"{implicit} of them implicit whitespace (rule W)")
    if borrowed:
        text += f"; {borrowed} dropped record(s) taken from dedup's input (rule D)"
    return text


# --- what each line became ---------------------------------------------------------------------


METADATA_ROLES = ("title", "subtitle", "byline", "dateline", "site_header", "bio")
SPLIT_THREAD = ("comment_header", "comment_section", "thread_markup")


@dataclass
class LineInfo:
    """One line of the input page and its final label."""

    number: int  # 1-based
    text: str
    label: str  # article, title, byline, boilerplate:<reason>, comment, related, duplicate, blank, ...
    group: str  # colour family: article, meta, boilerplate, comment, thread, related, feed, duplicate, clean, blank
    stage: str  # the stage that decided
    reason: str  # its reason code
    detail: str  # what a reviewer reads on hover
    record: str | None = None
    depth: int | None = None
    changes: list[str] = field(default_factory=list)  # other, smaller changes in the line ("clean:odd_space")
    note: str = ""  # the reason in a few words, for the terminal

    def __post_init__(self) -> None:
        self.note = self.note or self.reason


def describe_fate(fate: Fate) -> tuple[str, str]:
    """(label, colour group) of a resolved fate."""
    if fate.kind == "kept":
        group = {"comment": "comment", "related": "related", "duplicate": "duplicate"}.get(fate.reason, "article")
        return fate.reason, group
    if fate.kind == "implicit":
        return "blank", "blank"
    if fate.stage == "boilerplate":
        return f"boilerplate:{fate.reason}", "boilerplate"
    if fate.stage == "metadata":
        return fate.reason, "meta"
    if fate.stage == "split":
        return fate.reason, "thread" if fate.reason in SPLIT_THREAD else "feed"
    if fate.stage == "dedup":
        return "duplicate", "duplicate"
    if fate.stage == "clean":
        return f"clean:{fate.reason}", "clean"
    return f"{fate.stage}:{fate.reason}", "other"


def page_lines(result: PageResult) -> list[LineInfo]:
    """Every line of the page's decoded text with the label its characters ended with."""
    truth = result.truth or ""
    tags = result.tape.tags if result.tape is not None else []
    size = len(tags)
    fates = result.fates
    records = result.records
    verdicts: dict[Any, _Verdict] = {}  # lines with the same weighed fates get the same verdict
    lines: list[LineInfo] = []
    texts = truth.split("\n")
    if len(texts) > 1 and not texts[-1]:
        texts.pop()  # a final newline ends the last line; it does not start another
    start = 0
    for number, text in enumerate(texts, 1):
        length = len(text)
        end = start + length
        line_tags = tags[start:end]
        start = end + 1
        if line_tags and end <= size and line_tags.count(line_tags[0]) == length:
            # One tag throughout (most lines): the verdict is the tag's, and whether anything shows.
            key: Any = (line_tags[0], text.isspace())
            verdict = verdicts.get(key)
            if verdict is None:
                verdict = verdicts[key] = _line_verdict(text, line_tags, *_uniform_weights(text, line_tags[0], fates),
                                                        fates, records)
        elif not text:
            verdict = verdicts.get(EMPTY_LINE)
            if verdict is None:
                verdict = verdicts[EMPTY_LINE] = _line_verdict(text, line_tags, {}, set(), fates, records)
        else:
            verdict = _weighed_verdict(text, line_tags, *_mixed_weights(text, line_tags, fates), fates, records,
                                       verdicts)
        lines.append(_from_verdict(number, text, verdict))
    return lines


EMPTY_LINE = ("empty",)  # the verdicts key of an empty line


_Verdict = tuple[str, str, str, str, str, str | None, int | None, list[str], str]
"""The fields of a LineInfo after `number` and `text`."""


def _line_info(number: int, text: str, tags: list[int], fates: FateTable,
               records: dict[str, Record], verdicts: dict[Any, _Verdict] | None = None) -> LineInfo:
    weights, minor = _line_weights(text, tags, fates)
    return _from_verdict(number, text, _weighed_verdict(text, tags, weights, minor, fates, records, verdicts))


def _weighed_verdict(text: str, tags: list[int], weights: dict[int, int], minor: set[int], fates: FateTable,
                     records: dict[str, Record], verdicts: dict[Any, _Verdict] | None) -> _Verdict:
    """The verdict of a weighed line, shared through `verdicts` by lines weighed alike."""
    # The verdict depends on the weights only through the winner when one fate has them all.
    key: Any = (tuple(weights) if len(weights) == 1 else tuple(weights.items()), tuple(sorted(minor)),
                not weights and bool(text.strip()) and not tags)
    verdict = verdicts.get(key) if verdicts is not None else None
    if verdict is None:
        verdict = _line_verdict(text, tags, weights, minor, fates, records)
        if verdicts is not None:
            verdicts[key] = verdict
    return verdict


def _from_verdict(number: int, text: str, verdict: _Verdict) -> LineInfo:
    label, group, stage, reason, detail, record, depth, changes, note = verdict
    return LineInfo(number, text, label, group, stage, reason, detail, record, depth, list(changes), note)


def _line_weights(text: str, tags: list[int], fates: FateTable) -> tuple[dict[int, int], set[int]]:
    """Visible characters per resolved fate, in order of first appearance, and the tags of
    smaller changes (replacements, clean's removals)."""
    # Most lines carry one tag throughout: weigh them whole rather than character by character.
    if tags and len(tags) == len(text) and tags.count(tags[0]) == len(tags):
        return _uniform_weights(text, tags[0], fates)
    return _mixed_weights(text, tags, fates)


def _uniform_weights(text: str, tag: int, fates: FateTable) -> tuple[dict[int, int], set[int]]:
    """`_line_weights` of a line whose characters all carry `tag`."""
    weights: dict[int, int] = {}
    minor: set[int] = set()
    if tag == IMPLICIT:
        return weights, minor
    fate = fates.items[tag]
    cleaned = fate.kind == "removed" and fate.stage == "clean"
    if fate.kind == "changed" or cleaned:
        minor.add(tag)
    if not cleaned and not text.isspace():
        # Only one fate is weighed: its count does not change the verdict, so it is not counted.
        weights[fates.resolve_index(tag)] = 1
    return weights, minor


def _mixed_weights(text: str, tags: list[int], fates: FateTable) -> tuple[dict[int, int], set[int]]:
    """`_line_weights` of a line with more than one tag, or fewer tags than characters."""
    weights: dict[int, int] = {}
    minor: set[int] = set()
    runs: list[tuple[str, int]]
    lead = len(text) - len(text.lstrip())
    rest = tags[lead:]
    if rest and len(tags) == len(text) and rest.count(rest[0]) == len(rest):
        # Most such lines are indented comments: one tag after the leading whitespace. Runs
        # may be cut anywhere: the weights add up alike.
        runs = [*zip(text[:lead], tags), (text[lead:], rest[0])]
    elif tags and len(tags) == len(text):
        codes = np.fromiter(tags, dtype=np.int64, count=len(tags))
        bounds = [0, *(np.flatnonzero(codes[1:] != codes[:-1]) + 1).tolist(), len(tags)]
        runs = [(text[a:b], tags[a]) for a, b in zip(bounds, bounds[1:])]
    else:
        runs = list(zip(text, tags))
    resolved: dict[int, int] = {}
    for chars, tag in runs:
        if tag == IMPLICIT:
            continue
        fate = fates.items[tag]
        cleaned = fate.kind == "removed" and fate.stage == "clean"
        if fate.kind == "changed" or cleaned:
            minor.add(tag)
        if cleaned:
            continue
        visible = len("".join(chars.split()))  # str.split() splits on str.isspace() characters
        if visible:
            target = resolved.get(tag)
            if target is None:
                target = resolved[tag] = fates.resolve_index(tag)
            weights[target] = weights.get(target, 0) + visible
    return weights, minor


def _line_verdict(text: str, tags: list[int], weights: dict[int, int], minor: set[int], fates: FateTable,
                  records: dict[str, Record]) -> _Verdict:
    """Label, group, stage, reason, detail, record, depth, changes and note of a line."""
    if not weights:
        changes = sorted({f"{fates.items[t].stage}:{fates.items[t].reason}" for t in minor})
        if text.strip() and not tags:
            return "unknown", "other", "", "", "not rebuilt", None, None, changes, ""
        return "blank", "blank", "", "", "blank line", None, None, changes, ""
    if len(weights) == 1:  # most lines
        (winner,) = weights
        others: set[str] = set()
    else:
        kept = [(n, t) for t, n in weights.items() if fates.items[t].kind == "kept"]
        # The most characters, the first such fate on a tie (as Counter.most_common(1) picks).
        winner = max(kept)[1] if kept else max(weights.items(), key=lambda item: item[1])[0]
        others = {f"{fates.items[t].stage}:{fates.items[t].reason}" for t in weights if t != winner}
    fate = fates.items[winner]
    label, group = describe_fate(fate)
    changes = sorted((others | {f"{fates.items[t].stage}:{fates.items[t].reason}" for t in minor})
                     - {f"{fate.stage}:{fate.reason}"}) if others or minor else []
    record = records.get(fate.record or "") if fate.record else None
    depth = int(record.get("depth") or 0) if record is not None and label == "comment" else None
    if fate.kind == "kept":
        detail = fate.detail or "kept"
    else:
        detail = f"removed by {fate.stage}: {fate.reason}" + (f", {fate.detail}" if fate.detail else "")
        owner = records.get(fate.record or "")
        if owner is not None and fate.stage == "metadata":
            detail += (f" of related article {owner['id'].rsplit('#', 1)[-1]}" if owner.get("role") == "related"
                       else " of the main article")
    note = fate.detail if fate.kind == "kept" else fate.reason + (f" ({fate.detail})" if fate.detail else "")
    return label, group, fate.stage, fate.reason, detail, fate.record, depth, changes, note
