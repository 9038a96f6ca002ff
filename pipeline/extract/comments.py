"""Find the reader-comment section of a page and split it into comments.

A page arrives as `Line`s (one block per line) after the boilerplate stage has
removed widget lines, leaving markers `(line_index, reason)` where it did. Each
line is classified once by the configured patterns (configs/comments/formats.yaml:
headers, signatures, date lines, reply links, headings, widgets, ...). Comments
are then found from the lines that frame them, in four kinds of "anchor":

* a header line BEFORE the body ("mikael says", "Anna — July 18th, 2012,
  4:09 pm"), possibly nested by indentation with list markers
  ("  1. mikael says", "    • BigB says");
* a short name line next to a date line ("Barry Joseph" / "September 27th,
  2012 at 11:01 pm");
* a signature AFTER the body ("Posted by: NAME | Dec 12 2016 14:48 utc | 12");
* as a last resort, under a heading counting comments, a name alone on its line.

Anchors close together form clusters; a cluster must show evidence of being a
thread (clock times, a comments heading, reply links, prose bodies, or many
anchors) and the largest valid cluster wins. Bodies lie between anchors; the
first body of a signature format is bounded by the article's last frame line
(byline, heading, pagination) or a marker, the last body of a header format by
the first frame line, marker, reply link or list of short lines after it.

Every step is a pass or a few passes over the lines, and each pattern is
applied to one line of at most MAX_FRAME_CHARS characters, so the work is
linear in the size of the page.

A page with no comment (a lone "Leave a Reply" form, a heading with no
thread) gives None: a `CommentSection` always holds at least one comment.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from pipeline.document import Line

# --- constants ---------------------------------------------------------------

# The six keys the formats file must have, then those it may have.
REQUIRED_KEYS: tuple[str, ...] = (
    "header_patterns",
    "signature_patterns",
    "reply_link_patterns",
    "date_line_patterns",
    "end_patterns",
    "mention_patterns",
)
OPTIONAL_KEYS: tuple[str, ...] = (
    "item_patterns",
    "pre_header_patterns",
    "heading_patterns",
    "widget_patterns",
    "pagination_patterns",
    "byline_patterns",
)

# `{{name}}` in a pattern is replaced by the macro `name` of the formats file.
_MACRO_REF = re.compile(r"\{\{(\w+)\}\}")

# Kinds a line is classified into; each non-blank line has exactly one.
BLANK = "blank"
TEXT = "text"
HEADER = "header"
SIGNATURE = "signature"
DATE = "date"
REPLY = "reply"
END = "end"
HEADING = "heading"
WIDGET = "widget"
PAGINATION = "pagination"
PRE = "pre_header"
BYLINE = "byline"

# Reason codes for section lines that belong to no comment.
OTHER_REASONS: dict[str, str] = {
    HEADING: "comments_heading",
    WIDGET: "comment_widget",
    PAGINATION: "pagination",
    END: "section_end",
}
# Kinds that end a body where nothing else does (after the last comment of a
# header format, before the first of a signature format).
_FRAME_KINDS = frozenset({END, HEADING, WIDGET, PAGINATION, BYLINE})
# Markers whose removed line announced comments (a heading or a comment form).
_SECTION_MARKER_REASONS = frozenset({"comments_heading", "comment_widget", "comments"})

# A posted text with a calendar date in it (a year, d/m/y digits, or a word
# next to a number), and one with a clock time in it. A name line above a date
# line with no calendar date ("Headline / 4:19 PM ET") is a ticker, not a header.
_CALENDAR = re.compile(r"\d{4}|\d{1,2}[./-]\d{1,2}[./-]\d{2}|[^\W\d_]{3,}\.?\s?\d|\d\s[^\W\d_]{3,}")
_CLOCK = re.compile(r"\d{1,2}[:.h]\d\d")

# A line of prose, as comment bodies have and headline lists do not: a
# lowercase word closed by sentence punctuation, or a long run of words.
_SENTENCE_END = re.compile(r"[a-z\u00e0-\u00ff](?:[.!?…][\"”')]*(?:\s|$)|:$)")
PROSE_WORDS = 10
# How many text lines at a body's opening are looked at for prose.
OPENING_LINES = 3

# The count a comments heading starts with ("19 Responses", "{ 131 comments }").
_HEADING_COUNT = re.compile(r"(?i)\W{0,3}(\d{1,5}|one|two|three|four|five|six|seven|eight|nine|ten)\b")

# Lines longer than this are prose: no header, signature or widget is this long.
MAX_FRAME_CHARS = 200
# A name line (of a name + date-line header) has at most this many words/chars.
MAX_NAME_WORDS = 6
MAX_NAME_CHARS = 60
# Two anchors with more non-blank lines than this between them start new clusters.
MAX_GAP = 60
# How far (non-blank lines) before the first comment a heading still counts.
HEADING_WINDOW = 2
# The last comment (header formats) is cut after this many non-blank lines at
# least, or twice the longest other body, when no frame line ends it; and
# before a run of this many short non-prose lines (a sidebar or a footer).
MIN_LAST_BODY_CAP = 30
LAST_BODY_LIST_RUN = 4
# A first comment (signature formats) with no boundary above takes at most the
# median body length of the others; with no others, this many lines.
LONE_FIRST_BODY_CAP = 3
# Anchors needing no other evidence: a thread of this many headers.
MIN_PLAIN_ANCHORS = 5
# A bare name line (a thread with no dates) has at most this many words/chars.
MAX_BARE_NAME_WORDS = 4
MAX_BARE_NAME_CHARS = 40


# --- public data -------------------------------------------------------------


@dataclass(frozen=True)
class CommentFormats:
    """Patterns that recognise comment headers and signatures; config data, not code."""

    header_patterns: tuple[str, ...]  # header line BEFORE the body; groups author, number, posted
    signature_patterns: tuple[str, ...]  # signature line AFTER the body; groups author, posted, number
    reply_link_patterns: tuple[str, ...]  # "Reply", "Reply ↓", "Log in to Reply": header lines
    date_line_patterns: tuple[str, ...]  # a line holding only the posted date/time; group posted
    end_patterns: tuple[str, ...]  # lines that close a section: "The comments to this entry are closed."
    mention_patterns: tuple[str, ...]  # "@NN name", "@NN" -> reply_to; group number and/or name
    item_patterns: tuple[str, ...] = ()  # list markers ("1.", "•") opening threaded comments
    pre_header_patterns: tuple[str, ...] = ()  # lines just above a header that belong to it
    heading_patterns: tuple[str, ...] = ()  # "15 comments", "Comments (4)": open a section
    widget_patterns: tuple[str, ...] = ()  # form fields, share/vote buttons
    pagination_patterns: tuple[str, ...] = ()  # "next page »", "← Previous Comments"
    byline_patterns: tuple[str, ...] = ()  # article-side lines that bound the first comment


@dataclass(frozen=True)
class Comment:
    """One comment: its fields and the lines it was read from."""

    position: int  # 0-based order on the page
    number: str | None  # as shown ("1", "12"), else None
    author: str | None
    posted_raw: str | None  # the date/time text exactly as shown
    depth: int  # 0 = top level
    parent: int | None  # position of the parent comment
    reply_to: tuple[int, ...]  # positions of comments addressed by @NN / @name
    body: tuple[Line, ...]  # the body lines (unchanged Line objects)
    header: tuple[Line, ...]  # header / signature / date / "Reply" lines of this comment


@dataclass(frozen=True)
class CommentSection:
    """The comment section: a line range, its comments, and its leftover lines."""

    start: int  # index (into the `lines` list) of the first line of the section
    end: int  # index after the last line of the section
    comments: tuple[Comment, ...]
    other: tuple[tuple[Line, str], ...]  # lines in no comment, with a reason code


# --- loading the formats -----------------------------------------------------


def _expand_macros(pattern: str, macros: dict[str, str], where: str) -> str:
    """Replace each `{{name}}` by its macro; unknown names are a config error."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in macros:
            raise ValueError(f"{where}: unknown macro {{{{{name}}}}}")
        return macros[name]

    return _MACRO_REF.sub(replace, pattern)


def _check_pattern(path: Path, original: str, expanded: str) -> None:
    """Compile one pattern so a bad regex fails at load time with its file."""
    try:
        re.compile(expanded)
    except re.error as err:
        raise ValueError(f"{path}: invalid pattern {original!r}: {err}") from err


def load_formats(path: Path) -> CommentFormats:
    """Read a formats YAML file (six required lists, optional lists, macros) and validate it."""
    data: Any = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    known = set(REQUIRED_KEYS) | set(OPTIONAL_KEYS) | {"macros"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{path}: unknown keys {unknown}")
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise ValueError(f"{path}: missing keys {missing}")

    macros: dict[str, str] = {}
    for name, value in (data.get("macros") or {}).items():
        if not isinstance(value, str):
            raise ValueError(f"{path}: macro {name!r} is not a string")
        # Macros may use earlier macros, so expand each as it is defined.
        macros[str(name)] = _expand_macros(value, macros, f"{path}: macro {name!r}")
        _check_pattern(path, value, macros[str(name)])

    lists: dict[str, tuple[str, ...]] = {}
    for key in (*REQUIRED_KEYS, *OPTIONAL_KEYS):
        raw = data.get(key) or []
        if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
            raise ValueError(f"{path}: {key} must be a list of strings")
        expanded = []
        for pattern in raw:
            full = _expand_macros(pattern, macros, f"{path}: {key}")
            _check_pattern(path, pattern, full)
            expanded.append(full)
        lists[key] = tuple(expanded)
    for pattern in lists["mention_patterns"]:
        groups = re.compile(pattern).groupindex
        if "number" not in groups and "name" not in groups:
            raise ValueError(f"{path}: invalid pattern {pattern!r}: needs a 'number' or 'name' group")
    return CommentFormats(**lists)


DEFAULT_FORMATS: CommentFormats = load_formats(
    Path(__file__).resolve().parents[2] / "configs" / "comments" / "formats.yaml"
)


# --- per-call compiled patterns and line facts ------------------------------


@dataclass(frozen=True)
class _Patterns:
    """The formats compiled once per call (re's own cache makes this cheap)."""

    header: tuple[re.Pattern[str], ...]
    signature: tuple[re.Pattern[str], ...]
    reply: tuple[re.Pattern[str], ...]
    date: tuple[re.Pattern[str], ...]
    end: tuple[re.Pattern[str], ...]
    mention: tuple[re.Pattern[str], ...]
    item: tuple[re.Pattern[str], ...]
    pre: tuple[re.Pattern[str], ...]
    heading: tuple[re.Pattern[str], ...]
    widget: tuple[re.Pattern[str], ...]
    pagination: tuple[re.Pattern[str], ...]
    byline: tuple[re.Pattern[str], ...]


def _compile(formats: CommentFormats) -> _Patterns:
    """Compile every pattern list of `formats`."""
    names = [f.name for f in fields(CommentFormats)]
    compiled = {name: tuple(re.compile(p) for p in getattr(formats, name)) for name in names}
    return _Patterns(
        header=compiled["header_patterns"],
        signature=compiled["signature_patterns"],
        reply=compiled["reply_link_patterns"],
        date=compiled["date_line_patterns"],
        end=compiled["end_patterns"],
        mention=compiled["mention_patterns"],
        item=compiled["item_patterns"],
        pre=compiled["pre_header_patterns"],
        heading=compiled["heading_patterns"],
        widget=compiled["widget_patterns"],
        pagination=compiled["pagination_patterns"],
        byline=compiled["byline_patterns"],
    )


@dataclass(frozen=True)
class _Info:
    """What one line is, and the fields its pattern captured."""

    kind: str
    author: str | None = None
    number: str | None = None
    posted: str | None = None
    item: bool = False  # starts with a list marker ("1.", "•")


def _first_match(patterns: Sequence[re.Pattern[str]], text: str) -> re.Match[str] | None:
    """The match of the first pattern that matches the whole of `text`."""
    for pattern in patterns:
        match = pattern.fullmatch(text)
        if match:
            return match
    return None


def _group(match: re.Match[str], name: str) -> str | None:
    """A named group's stripped text, or None when absent or empty."""
    if name not in match.re.groupindex:
        return None
    value = match.group(name)
    return value.strip() if value and value.strip() else None


def _classify(text: str, pats: _Patterns) -> _Info:
    """Classify one stripped line; order matters where patterns overlap."""
    if not text:
        return _Info(BLANK)
    # A list marker is stripped before header patterns so they see "mikael says".
    rest, item, item_number = text, False, None
    item_match = next((m for m in (p.match(text) for p in pats.item) if m), None)
    if item_match:
        rest, item, item_number = text[item_match.end():].strip(), True, _group(item_match, "number")
    if len(text) > MAX_FRAME_CHARS:
        return _Info(TEXT, number=item_number, item=item)

    match = _first_match(pats.signature, text)
    if match:
        return _Info(SIGNATURE, _group(match, "author"), _group(match, "number"), _group(match, "posted"))
    # A line that is only a date is a date line, whatever header pattern it also fits.
    match = _first_match(pats.date, text)
    if match:
        return _Info(DATE, posted=_group(match, "posted") or text)
    match = _first_match(pats.header, rest) if rest else None
    if match:
        number = _group(match, "number") or item_number
        return _Info(HEADER, _group(match, "author"), number, _group(match, "posted"), item)
    for kind, patterns in ((END, pats.end), (REPLY, pats.reply), (PAGINATION, pats.pagination),
                           (WIDGET, pats.widget), (HEADING, pats.heading)):
        if _first_match(patterns, text):
            return _Info(kind)
    match = _first_match(pats.pre, text)
    if match:
        return _Info(PRE, number=_group(match, "number"))
    if _first_match(pats.byline, text):
        return _Info(BYLINE)
    return _Info(TEXT, number=item_number, item=item)


# --- signatures: drop quoted ones ---------------------------------------------

_SHAPE_DIGITS = re.compile(r"\d+")
_SHAPE_LETTERS = re.compile(r"[^\W\d_]+")


def _shape(posted: str | None) -> str:
    """A date's layout with its values erased: "Dec 12 2016 14:48 utc" -> "a 9 9 9:9 a"."""
    return _SHAPE_LETTERS.sub("a", _SHAPE_DIGITS.sub("9", posted or ""))


def _longest_increasing(values: Sequence[int]) -> set[int]:
    """Indexes of one longest strictly increasing subsequence (patience sorting, n log n)."""
    tails: list[int] = []  # value at the end of the best run of each length
    tail_index: list[int] = []
    previous = [-1] * len(values)
    for i, value in enumerate(values):
        k = bisect.bisect_left(tails, value)
        if k == len(tails):
            tails.append(value)
            tail_index.append(i)
        else:
            tails[k] = value
            tail_index[k] = i
        previous[i] = tail_index[k - 1] if k else -1
    keep: set[int] = set()
    i = tail_index[-1] if tail_index else -1
    while i != -1:
        keep.add(i)
        i = previous[i]
    return keep


def _reject_quoted_signatures(infos: list[_Info]) -> list[_Info]:
    """Turn signatures quoted inside bodies back into text.

    A quoted signature ("Posted by: ALberto | Dec 12, 2016 10:54:53 AM | 12"
    inside comment 54) shows a date layout the page does not use, or a number
    out of the running sequence; real ones share one layout and count up.
    """
    sig_rows = [i for i, info in enumerate(infos) if info.kind == SIGNATURE]
    if len(sig_rows) < 2:
        return infos
    shapes = Counter(_shape(infos[i].posted) for i in sig_rows)
    main_shape, main_count = shapes.most_common(1)[0]
    rejected: set[int] = set()
    if main_count * 2 > len(sig_rows):
        rejected = {i for i in sig_rows if _shape(infos[i].posted) != main_shape}
    numbered = [i for i in sig_rows if i not in rejected and infos[i].number is not None]
    if len(numbered) * 2 > len(sig_rows):
        keep = _longest_increasing([int(infos[i].number or 0) for i in numbered])
        rejected |= {row for k, row in enumerate(numbered) if k not in keep}
    if not rejected:
        return infos
    return [_Info(TEXT) if i in rejected else info for i, info in enumerate(infos)]


# --- anchors and clusters ----------------------------------------------------


@dataclass(frozen=True)
class _Anchor:
    """Where one comment is framed: its first line, anchor line and header lines."""

    first: int  # first line of the comment (pre-header included)
    line: int  # the header / signature / item line itself
    header: tuple[int, ...]  # indexes of header lines (empty for a bare item)
    body_from: int  # first line after the header (header formats)
    author: str | None
    number: str | None
    posted: str | None


def _next_nonblank(infos: Sequence[_Info], i: int, step: int) -> int | None:
    """Index of the next non-blank line from i (exclusive) in direction step."""
    i += step
    while 0 <= i < len(infos):
        if infos[i].kind != BLANK:
            return i
        i += step
    return None


def _is_name_like(text: str) -> bool:
    """A short line that could be a commenter's name (not a sentence)."""
    words = text.split()
    # "Mita B." ends with an initial, not a full stop.
    initial = len(text) > 2 and text[-1] == "." and text[-2].isupper() and not text[-3].isalnum()
    return (
        0 < len(words) <= MAX_NAME_WORDS
        and len(text) <= MAX_NAME_CHARS
        and (initial or text[-1] not in ".!?;:,\"”")
        and text[0] not in "[(<{"  # "[Online]", "(video)": labels, not names
    )


def _header_anchor(infos: Sequence[_Info], i: int, floor: int, date_before: bool) -> _Anchor:
    """Frame an explicit header line: number/score lines above, date/reply lines below."""
    info = infos[i]
    first, header, number, posted = i, [i], info.number, info.posted
    above = _next_nonblank(infos, i, -1)
    for _ in range(2):  # at most a number line and a subject line
        if above is None or above <= floor:
            break
        kind = infos[above].kind
        if kind == PRE or (kind == DATE and date_before):
            header.insert(0, above)
            first = above
            number = number or infos[above].number
            posted = posted or infos[above].posted
            above = _next_nonblank(infos, above, -1)
        else:
            break
    below = _next_nonblank(infos, i, 1)
    took_date = date_before
    while below is not None and (infos[below].kind == REPLY or (infos[below].kind == DATE and not took_date)):
        if infos[below].kind == DATE:
            took_date = True
            posted = posted or infos[below].posted
        header.append(below)
        below = _next_nonblank(infos, below, 1)
    body_from = header[-1] + 1
    return _Anchor(first, i, tuple(header), body_from, info.author, number, posted)


def _header_anchors(infos: Sequence[_Info], lines: Sequence[Line]) -> tuple[list[_Anchor], bool]:
    """Anchors of explicit header lines (plus bare list items when the thread is indented)."""
    rows = [i for i, info in enumerate(infos) if info.kind == HEADER]
    if not rows:
        return [], False
    # Most headers preceded by a date line means the page puts dates first.
    dated_above = sum(1 for i in rows if (j := _next_nonblank(infos, i, -1)) is not None and infos[j].kind == DATE)
    date_before = dated_above * 2 > len(rows)
    # Headers at several indents: the thread is nested by indentation.
    threaded = len({lines[i].indent for i in rows}) > 1
    # If most headers also carry list markers ("1.", "•"), a marked line with no
    # header is a comment too (its author line is missing), at the headers' indents or deeper.
    item_rows = [i for i in rows if infos[i].item]
    if threaded and len(item_rows) * 2 > len(rows):
        base = min(lines[i].indent for i in item_rows)
        rows = sorted(set(rows) | {
            i for i, info in enumerate(infos) if info.kind == TEXT and info.item and lines[i].indent >= base
        })
    anchors: list[_Anchor] = []
    floor = -1
    for i in rows:
        if infos[i].kind == HEADER:
            anchor = _header_anchor(infos, i, floor, date_before)
        else:  # a bare item: its own line is the first body line
            anchor = _Anchor(i, i, (), i, None, infos[i].number, None)
        if anchors and anchor.first <= floor:
            continue  # already taken as part of the previous header
        anchors.append(anchor)
        floor = anchor.header[-1] if anchor.header else anchor.line
    return anchors, threaded


def _pair_anchors(infos: Sequence[_Info], lines: Sequence[Line]) -> list[_Anchor]:
    """Anchors of a short name line next to a date line, followed by text.

    Either "Name / date [/ time]" or, when no name is above the date,
    "date / Name". A date line followed by another header or a form is
    Blogger's footer, not a header, and makes no anchor.
    """
    anchors: list[_Anchor] = []
    for i, info in enumerate(infos):
        if info.kind != DATE or not _CALENDAR.search(info.posted or ""):
            continue
        above = _next_nonblank(infos, i, -1)
        below = _next_nonblank(infos, i, 1)
        date_rows = [i]
        if below is not None and infos[below].kind == DATE:  # "November 6th, 2012 / 10:11 am"
            date_rows.append(below)
            below = _next_nonblank(infos, below, 1)
        if above is not None and infos[above].kind == TEXT and _is_name_like(lines[above].stripped):
            name, header = above, [above, *date_rows]
        elif (below is not None and infos[below].kind == TEXT and _is_name_like(lines[below].stripped)
              and (after := _next_nonblank(infos, below, 1)) is not None and infos[after].kind == TEXT):
            name, header = below, [*date_rows, below]
            below = after
        else:
            continue
        if below is None or infos[below].kind not in (TEXT, REPLY):
            continue
        if anchors and header[0] <= anchors[-1].header[-1]:
            continue  # overlaps the previous pair
        while below is not None and infos[below].kind == REPLY:
            header.append(below)
            below = _next_nonblank(infos, below, 1)
        number = None
        pre = _next_nonblank(infos, header[0], -1)
        if pre is not None and infos[pre].kind == PRE and (not anchors or pre > anchors[-1].header[-1]):
            number = infos[pre].number
            header.insert(0, pre)
        # A date and a time on two lines are shown as one stamp.
        posted = " ".join(infos[j].posted or "" for j in date_rows)
        anchors.append(_Anchor(header[0], name, tuple(header), header[-1] + 1,
                               lines[name].stripped, number, posted))
    return anchors


def _is_bare_name(text: str) -> bool:
    """A line that can only be a name: a few words, no sentence punctuation."""
    words = text.split()
    return (0 < len(words) <= MAX_BARE_NAME_WORDS and len(text) <= MAX_BARE_NAME_CHARS
            and text[-1] not in ".!?;:,\"”)" and not text.isdigit() and words[0].lower() != "by")


def _bare_name_anchors(infos: Sequence[_Info], lines: Sequence[Line]) -> list[_Anchor]:
    """Anchors of a name alone on its line, followed by prose (threads with no dates).

    Only trusted under a comments heading (see `_is_thread`): an article's
    subheadings have the same shape.
    """
    anchors: list[_Anchor] = []
    for i, info in enumerate(infos):
        if info.kind != TEXT or not _is_bare_name(lines[i].stripped):
            continue
        below = _next_nonblank(infos, i, 1)
        above = _next_nonblank(infos, i, -1)
        if below is None or infos[below].kind != TEXT or not _is_prose(lines[below].stripped):
            continue
        if above is not None and infos[above].kind == TEXT and _is_bare_name(lines[above].stripped):
            continue  # one of a list of short lines, or a sign-off above a name
        anchors.append(_Anchor(i, i, (i,), i + 1, lines[i].stripped, None, None))
    return anchors


def _signature_anchors(infos: Sequence[_Info]) -> list[_Anchor]:
    """Anchors of signature lines, each with the reply links right below it."""
    anchors: list[_Anchor] = []
    for i, info in enumerate(infos):
        if info.kind != SIGNATURE:
            continue
        header = [i]
        below = _next_nonblank(infos, i, 1)
        while below is not None and infos[below].kind == REPLY:
            header.append(below)
            below = _next_nonblank(infos, below, 1)
        anchors.append(_Anchor(i, i, tuple(header), header[-1] + 1, info.author, info.number, info.posted))
    return anchors


def _clusters(anchors: Sequence[_Anchor], infos: Sequence[_Info]) -> list[list[_Anchor]]:
    """Split anchors where a long gap, a heading or a section end lies between them."""
    clusters: list[list[_Anchor]] = []
    for anchor in anchors:
        if clusters:
            previous = clusters[-1][-1]
            between = range(previous.line + 1, anchor.first)
            gap = sum(1 for j in between if infos[j].kind != BLANK)
            broken = any(infos[j].kind in (HEADING, END) for j in between)
            if gap <= MAX_GAP and not broken:
                clusters[-1].append(anchor)
                continue
        clusters.append([anchor])
    return clusters


def _cluster_top(cluster: Sequence[_Anchor], infos: Sequence[_Info]) -> int:
    """First line of a cluster's first comment: for a signature, the top of the
    text run above it (its body), else the first header line."""
    top = cluster[0].first
    if infos[cluster[0].line].kind != SIGNATURE:
        return top
    j = top - 1
    while j >= 0 and infos[j].kind in (TEXT, BLANK, DATE) and top - j <= MAX_GAP:
        if infos[j].kind != BLANK:
            top = j
        j -= 1
    return top


def _heading_before(first: int, infos: Sequence[_Info], marker_reasons: dict[int, str]) -> bool:
    """Whether a comments heading (or a removed one) sits just above line `first`."""
    i, seen = first, 0
    while i >= 0 and seen <= HEADING_WINDOW:
        if marker_reasons.get(i) in _SECTION_MARKER_REASONS:
            return True
        i -= 1
        if i < 0:
            break
        kind = infos[i].kind
        if kind == HEADING:
            return True
        if kind != BLANK:
            seen += 1
    return False


def _counted_heading_above(first: int, infos: Sequence[_Info], lines: Sequence[Line],
                           marker_reasons: dict[int, str]) -> bool:
    """Whether a heading counting one or more comments ("19 Responses",
    "{ 131 comments }") is directly above line `first`, widgets aside; a
    removed heading (marker) counts too. Sidebars have bare "Comments" tabs."""
    j = first
    while j >= 0:
        if marker_reasons.get(j) in _SECTION_MARKER_REASONS:
            return True
        j -= 1
        if j >= 0 and infos[j].kind == HEADING:
            count = _HEADING_COUNT.match(lines[j].stripped)
            return count is not None and count.group(1) != "0"
        if j < 0 or infos[j].kind not in (BLANK, WIDGET, PAGINATION):
            return False
    return False


def _is_prose(text: str) -> bool:
    """Whether a line reads as running text rather than a title or a label.

    Running text closes a sentence after a lowercase word, or is long and
    mostly lowercase; headlines are Title Case and rarely end with a period.
    """
    if _SENTENCE_END.search(text):
        return True
    words = text.split()
    capitalised = sum(1 for w in words if w[0].isupper())
    return len(words) >= PROSE_WORDS and capitalised * 2 < len(words)


def _mostly_prose(cluster: Sequence[_Anchor], infos: Sequence[_Info], lines: Sequence[Line]) -> bool:
    """Whether most comments of a cluster open with prose.

    Comments are written text; lists of headlines with dates, which share the
    name + date layout, are not. For each anchor the first few text lines of
    its body are looked at (above a signature, below a header).
    """
    with_prose = 0
    for k, anchor in enumerate(cluster):
        if infos[anchor.line].kind == SIGNATURE:
            low = cluster[k - 1].header[-1] + 1 if k else max(0, anchor.line - OPENING_LINES)
            rows: Sequence[int] = range(anchor.line - 1, low - 1, -1)
        else:
            high = cluster[k + 1].first if k + 1 < len(cluster) else len(lines)
            rows = range(anchor.body_from, high)
        seen = 0
        for j in rows:  # stops after a few text lines: linear over the page
            if infos[j].kind != TEXT:
                continue
            if _is_prose(lines[j].stripped):
                with_prose += 1
                break
            seen += 1
            if seen >= OPENING_LINES:
                break
    # Half is enough for a real thread; a pair of anchors must both open with prose.
    return with_prose * 2 > len(cluster) if len(cluster) <= 2 else with_prose * 2 >= len(cluster)


def _is_thread(cluster: Sequence[_Anchor], infos: Sequence[_Info], lines: Sequence[Line],
               marker_reasons: dict[int, str], threaded: bool, bare: bool) -> bool:
    """Evidence that a cluster is a comment thread, not article lines that look alike."""
    heading = _heading_before(_cluster_top(cluster, infos), infos, marker_reasons)
    if bare:  # bare names: only a heading right above tells them from subheadings
        return (_counted_heading_above(cluster[0].first, infos, lines, marker_reasons)
                and len(cluster) >= 2 and _mostly_prose(cluster, infos, lines))
    # Under a comments heading short bodies ("Thanko") are fine; elsewhere
    # the bodies must read as prose to tell comments from dated link lists.
    if not heading and not _mostly_prose(cluster, infos, lines):
        return False
    count = len(cluster)
    dated = any(a.posted for a in cluster)
    # Comment stamps carry a clock time; lists of dated headlines do not.
    timed = any(_CLOCK.search(a.posted or "") for a in cluster)
    span = range(cluster[0].first, min(cluster[-1].body_from + 1, len(infos)))
    replies = any(infos[j].kind == REPLY for j in span)
    if threaded and count >= 2:
        return True
    if count >= MIN_PLAIN_ANCHORS and not dated:
        return True  # a long run of "Name says" headers
    if count >= 2:
        return timed or heading or replies
    # One comment: a heading above it, and a stamp with a clock time, a reply
    # link, a signature, or a "Name says" header (which carries no date).
    lone_frame = timed or replies or not dated or infos[cluster[0].line].kind == SIGNATURE
    return (heading and lone_frame) or (replies and timed)


def _best_cluster(anchors: Sequence[_Anchor], infos: Sequence[_Info], lines: Sequence[Line],
                  marker_reasons: dict[int, str], threaded: bool = False, bare: bool = False) -> list[_Anchor]:
    """The largest cluster that passes `_is_thread` (the later one on ties)."""
    best: list[_Anchor] = []
    for cluster in _clusters(anchors, infos):
        if len(cluster) >= len(best) and _is_thread(cluster, infos, lines, marker_reasons, threaded, bare):
            best = cluster
    return best


# --- turning a cluster into comments -----------------------------------------


@dataclass(frozen=True)
class _Draft:
    """A comment before positions are resolved: line indexes of its parts."""

    anchor: _Anchor
    header: tuple[int, ...]
    body: tuple[int, ...]
    posted: str | None  # the anchor's, or a date footer's (Blogger)


def _split_region(rows: range, infos: Sequence[_Info], other: list[tuple[int, str]],
                  footer_dates: bool) -> tuple[list[int], list[int]]:
    """Sort a comment's region into header lines (links, dates) and body lines.

    Widgets, headings and pagination inside go to `other`. A date line is a
    header only as the region's last line (Blogger's footer) when the page
    puts dates there.
    """
    nonblank = [j for j in rows if infos[j].kind != BLANK]
    last = nonblank[-1] if nonblank else None
    header: list[int] = []
    body: list[int] = []
    for j in nonblank:
        kind = infos[j].kind
        if kind == REPLY or (kind == DATE and j == last and footer_dates):
            header.append(j)
        elif kind in OTHER_REASONS:
            other.append((j, OTHER_REASONS[kind]))
        else:
            body.append(j)
    return header, body


def _ends_with_date(rows: range, infos: Sequence[_Info]) -> bool:
    """Whether the last non-blank line of a region is a date line."""
    for j in reversed(rows):
        if infos[j].kind != BLANK:
            return infos[j].kind == DATE
    return False


def _has_reply(rows: range, infos: Sequence[_Info]) -> bool:
    return any(infos[j].kind == REPLY for j in rows)


def _last_region_end(anchor: _Anchor, infos: Sequence[_Info], lines: Sequence[Line],
                     marker_rows: set[int], cap: int, stop_after_reply: bool,
                     stop_after_date: bool, base_indent: int | None) -> int:
    """Where the last comment of a header format ends.

    Nothing frames it from below, so it stops at the first frame line,
    removed-line marker, dedent below the thread, after its reply link or
    date footer when the page ends comments so, before a run of short
    non-prose lines (navigation), or after `cap` body lines. Short lines
    before a stop are kept: sign-offs ("Cheers,", "Rosa") look like that.
    """
    end = anchor.body_from
    count = 0
    pending: list[int] = []  # short non-prose lines since the last sure line
    for j in range(anchor.body_from, len(lines)):
        info = infos[j]
        if j in marker_rows and count:
            break  # a removed widget stood here (checked first: it may sit on a blank line)
        if info.kind == BLANK:
            continue
        if info.kind in _FRAME_KINDS or info.kind in (HEADER, SIGNATURE):
            break
        if base_indent is not None and lines[j].indent < base_indent:
            break
        count += info.kind not in (REPLY, DATE)
        if info.kind == TEXT and not _is_prose(lines[j].stripped):
            pending.append(j)
            if len(pending) >= LAST_BODY_LIST_RUN:
                return end  # a list of links or labels: the comment ended before it
        else:
            pending.clear()
            end = j + 1
        if (info.kind == REPLY and stop_after_reply) or (info.kind == DATE and stop_after_date):
            break
        if count >= cap:
            break
    return pending[-1] + 1 if pending else end


def _header_drafts(cluster: Sequence[_Anchor], infos: Sequence[_Info], lines: Sequence[Line],
                   marker_rows: set[int], threaded: bool,
                   other: list[tuple[int, str]]) -> list[_Draft]:
    """Comments of a header-before-body cluster."""
    regions = [range(a.body_from, b.first) for a, b in zip(cluster, cluster[1:], strict=False)]
    # How the page ends a comment tells where the last one ends.
    with_reply = sum(1 for r in regions if _has_reply(r, infos))
    with_date = sum(1 for r in regions if _ends_with_date(r, infos))
    # A lone comment has no others to learn from: a reply link under it ends it.
    stop_after_reply = not regions or with_reply * 2 >= len(regions)
    footer_dates = bool(regions) and with_date * 2 >= len(regions)
    longest = max((sum(1 for j in r if infos[j].kind == TEXT) for r in regions), default=0)
    base_indent = min(lines[a.line].indent for a in cluster) if threaded else None
    last_end = _last_region_end(cluster[-1], infos, lines, marker_rows, max(MIN_LAST_BODY_CAP, 2 * longest),
                                stop_after_reply, footer_dates, base_indent)
    regions.append(range(cluster[-1].body_from, last_end))
    drafts = []
    for anchor, region in zip(cluster, regions, strict=True):
        header, body = _split_region(region, infos, other, footer_dates)
        footer = next((infos[j].posted for j in header if infos[j].kind == DATE), None)
        drafts.append(_Draft(anchor, anchor.header + tuple(header), tuple(body), anchor.posted or footer))
    return drafts


def _first_body_start(first_sig: _Anchor, infos: Sequence[_Info], marker_rows: set[int], cap: int) -> int:
    """Where the first body of a signature format starts.

    The article ends with a frame line (byline, heading, pagination, share
    bar) or a removed-line marker: the body starts after the nearest one
    within MAX_GAP lines. With none that near, the body takes at most `cap`
    lines (the others' median), to leave the article alone.
    """
    rows: list[int] = []  # non-blank lines above the signature, nearest first
    j = first_sig.line - 1
    while j >= 0 and len(rows) < MAX_GAP:
        if j + 1 in marker_rows:
            return rows[-1] if rows else first_sig.line  # a removed line stood just before j + 1
        kind = infos[j].kind
        if kind in _FRAME_KINDS or kind in (SIGNATURE, HEADER):
            return rows[-1] if rows else first_sig.line
        if kind != BLANK:
            rows.append(j)
        j -= 1
    kept = rows[:cap]
    return kept[-1] if kept else first_sig.line


def _signature_drafts(cluster: Sequence[_Anchor], infos: Sequence[_Info], marker_rows: set[int],
                      other: list[tuple[int, str]]) -> list[_Draft]:
    """Comments of a signature-after-body cluster."""
    regions = [range(a.header[-1] + 1, b.line) for a, b in zip(cluster, cluster[1:], strict=False)]
    lengths = sorted(sum(1 for j in r if infos[j].kind != BLANK) for r in regions)
    cap = max(1, lengths[len(lengths) // 2]) if lengths else LONE_FIRST_BODY_CAP
    start = _first_body_start(cluster[0], infos, marker_rows, cap)
    regions.insert(0, range(start, cluster[0].line))
    drafts = []
    for anchor, region in zip(cluster, regions, strict=True):
        header, body = _split_region(region, infos, other, footer_dates=False)
        drafts.append(_Draft(anchor, tuple(header) + anchor.header, tuple(body), anchor.posted))
    return drafts


def _nesting(drafts: Sequence[_Draft], lines: Sequence[Line], threaded: bool) -> list[tuple[int, int | None]]:
    """(depth, parent position) per comment, from the indentation of its anchor line.

    Open comments are kept on a stack by indent; a comment's parent is the
    nearest open one indented less. The least-indented anchors are top level;
    a comment indented deeper with no open parent (its parent was on an earlier
    page) gets the depth of its indent level and no parent.
    """
    if not threaded:
        return [(0, None)] * len(drafts)
    indents = [lines[d.anchor.line].indent for d in drafts]
    levels = sorted(set(indents))
    stack: list[tuple[int, int, int]] = []  # (indent, position, depth)
    result: list[tuple[int, int | None]] = []
    for position, indent in enumerate(indents):
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if stack:
            depth, parent = stack[-1][2] + 1, stack[-1][1]
        else:
            depth, parent = levels.index(indent), None
        stack.append((indent, position, depth))
        result.append((depth, parent))
    return result


def _mentions(first_line: str, pats: _Patterns) -> list[tuple[str | None, str | None]]:
    """(number, name) pairs a comment's opening line addresses."""
    found: list[tuple[str | None, str | None]] = []
    for pattern in pats.mention:
        for match in pattern.finditer(first_line):
            found.append((_group(match, "number"), _group(match, "name")))
    return found


def _resolve_replies(drafts: Sequence[_Draft], lines: Sequence[Line], pats: _Patterns) -> list[tuple[int, ...]]:
    """Positions each comment replies to by "@NN" / "@name" in its first body line.

    Only the opening line counts: that is where a reply addresses its target;
    "@19" further down is usually a citation. A number resolves to the latest
    earlier comment showing it, a name to the latest earlier comment by that author.
    """
    by_number: dict[str, int] = {}
    by_author: dict[str, int] = {}
    result: list[tuple[int, ...]] = []
    for position, draft in enumerate(drafts):
        targets: list[int] = []
        opening = next((lines[j].stripped for j in draft.body if not lines[j].is_blank), "")
        for number, name in _mentions(opening, pats):
            target = by_number.get(number) if number else None
            if target is None and name:
                target = by_author.get(name.casefold())
            if target is not None and target not in targets:
                targets.append(target)
        result.append(tuple(targets))
        if draft.anchor.number:
            by_number[draft.anchor.number] = position
        if draft.anchor.author:
            by_author[draft.anchor.author.casefold()] = position
    return result


def _body_lines(rows: Sequence[int], lines: Sequence[Line]) -> tuple[Line, ...]:
    """Body rows plus the blank lines between them (paragraph breaks), in order."""
    if not rows:
        return ()
    wanted = set(rows)
    return tuple(lines[j] for j in range(rows[0], rows[-1] + 1) if j in wanted or lines[j].is_blank)


def _edge_other(start: int, end: int, infos: Sequence[_Info], other: list[tuple[int, str]]) -> tuple[int, int]:
    """Widen [start, end) over adjacent headings/pagination/widgets (before) and
    section ends/pagination/widgets (after), recording them in `other`."""
    j = start - 1
    while j >= 0 and infos[j].kind in (BLANK, HEADING, PAGINATION, WIDGET):
        if infos[j].kind != BLANK:
            other.append((j, OTHER_REASONS[infos[j].kind]))
            start = j
        j -= 1
    j = end
    while j < len(infos) and infos[j].kind in (BLANK, END, PAGINATION, WIDGET):
        if infos[j].kind != BLANK:
            other.append((j, OTHER_REASONS[infos[j].kind]))
            end = j + 1
        j += 1
    return start, end


# --- entry point -------------------------------------------------------------


def find_comment_section(
    lines: Sequence[Line],
    markers: Sequence[tuple[int, str]] = (),
    formats: CommentFormats = DEFAULT_FORMATS,
    min_comments: int = 1,
) -> CommentSection | None:
    """Find the comment section of a page's lines and split it into comments.

    `markers` are `(line_index, reason)` of lines the boilerplate stage removed
    just before `line_index`; they bound the section like the lines they stood
    for. Returns None when no thread of at least `min_comments` comments is found.
    """
    pats = _compile(formats)
    infos = _reject_quoted_signatures([_classify(line.stripped, pats) for line in lines])
    marker_reasons = {index: reason for index, reason in markers}
    marker_rows = set(marker_reasons)

    header_anchors, threaded = _header_anchors(infos, lines)
    candidates = [
        (_best_cluster(header_anchors, infos, lines, marker_reasons, threaded), "header", threaded),
        (_best_cluster(_signature_anchors(infos), infos, lines, marker_reasons), "signature", False),
        (_best_cluster(_pair_anchors(infos, lines), infos, lines, marker_reasons), "header", False),
    ]
    # The frame kind that explains most comments wins; earlier kinds win ties.
    cluster, mode, threaded = max(candidates, key=lambda c: len(c[0]))
    if not cluster:  # last resort: names alone on their lines, under a heading
        cluster = _best_cluster(_bare_name_anchors(infos, lines), infos, lines, marker_reasons, bare=True)
        mode, threaded = "header", False
    if len(cluster) < max(1, min_comments):
        return None

    other: list[tuple[int, str]] = []
    if mode == "signature":
        drafts = _signature_drafts(cluster, infos, marker_rows, other)
    else:
        drafts = _header_drafts(cluster, infos, lines, marker_rows, threaded, other)

    nesting = _nesting(drafts, lines, threaded)
    replies = _resolve_replies(drafts, lines, pats)
    comments = tuple(
        Comment(
            position=position,
            number=draft.anchor.number,
            author=draft.anchor.author,
            posted_raw=draft.posted,
            depth=nesting[position][0],
            parent=nesting[position][1],
            reply_to=replies[position],
            body=_body_lines(draft.body, lines),
            header=tuple(lines[j] for j in sorted(draft.header)),
        )
        for position, draft in enumerate(drafts)
    )
    used = [j for d in drafts for j in (*d.header, *d.body)] + [j for j, _ in other]
    start, end = _edge_other(min(used), max(used) + 1, infos, other)
    return CommentSection(
        start=start,
        end=end,
        comments=comments,
        other=tuple((lines[j], reason) for j, reason in sorted(set(other))),
    )
