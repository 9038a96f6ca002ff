"""Find the reader-comment section of a page and split it into comments.

A page arrives as `Line`s (one block per line) after the boilerplate stage has
removed widget lines, leaving markers `(line_index, reason[, text])` where it
did; a removed line's text tells whether a removed heading counts comments
("19 Responses", not a bare "Comments" tab), heads trackbacks, or was a reply
link. Each line is classified once by the configured patterns (configs/comments/formats.yaml:
headers, signatures, date lines, reply links, headings, widgets, ...). Comments
are then found from the lines that frame them, in four kinds of "anchor":

* a header line BEFORE the body ("mikael says", "Anna — July 18th, 2012,
  4:09 pm"), possibly nested by indentation with list markers
  ("  1. mikael says", "    • BigB says"); where headers carry no date
  ("http://twitter.com/x Name"), bare names between them open comments too;
* a short name line next to a date line ("Barry Joseph" / "September 27th,
  2012 at 11:01 pm"), or below it, whichever way most of the page's date
  lines read;
* a signature AFTER the body ("Posted by: NAME | Dec 12 2016 14:48 utc | 12"),
  read as a header when the page's reply links sit just above these lines;
* as a last resort, a name alone on its line (or a header with no date) under
  a heading counting comments; under a bare "Comments" heading or a comment
  form only when a name comes back and every later name follows the end of a
  comment (prose or a link), not a headline as a feed's bylines do.

Anchors close together (however long the prose bodies between them) form
clusters, split where a heading, a section end, a removed counted heading or a
removed feed header lies between them; a cluster must show evidence of being a
thread (clock times, a comments heading, reply links shown or removed, prose
bodies, or many anchors) and not sit under a trackback heading, and the largest
valid cluster wins. Bodies lie between anchors; the
first body of a signature format is bounded by the article's last frame line
(byline, heading, pagination) or a marker, the last body of a header format by
the first frame line, marker, reply link or list of short lines after it.

Every step is a pass or a few passes over the lines, and each pattern is
applied to one line of at most MAX_FRAME_CHARS characters, so the work is
linear in the size of the page. Blank lines are skipped, never counted, and a
removed line's marker is read at the next non-blank line: a page reads the same
whether its blocks are written a line each or with a blank line between them.

A page with no comment (a lone "Leave a Reply" form, a heading with no
thread) gives None: a `CommentSection` always holds at least one comment.
"""

from __future__ import annotations

import bisect
import functools
import re
import re._parser as re_parser  # Python 3.11+: reads the formats' patterns (see _Rule)
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

from pipeline.document import Line
from pipeline.extract.dates import folded
from pipeline.io import load_yaml
from pipeline.patterns import compile_once, compile_pattern, forget_parse_trees, parse_once

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
    "trackback_patterns",
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
# Markers of a removed comments heading (a removed "Reply" widget is no heading).
_HEADING_MARKER_REASONS = frozenset({"comments_heading"})
_FEED_MARKER_REASONS = frozenset({"feed_header"})
# Removed page chrome that never sits inside a thread of bare names (which has no other frame).
_CHROME_MARKER_REASONS = frozenset({"legal", "site_header", "navigation", "pagination"})
_PERMALINKS = frozenset({"permalink", "#"})
_MAX_TRACKBACK_CHARS = 80  # a trackback heading is short: "3 Trackbacks", "Pingbacks/Trackbacks"

# A posted text with a calendar date in it (a year, d/m/y digits, or a word
# next to a number), and one with a clock time in it. A name line above a date
# line with no calendar date ("Headline / 4:19 PM ET") is a ticker, not a header.
# A month name is tried from the start of its word only: a long run of letters costs linear time.
_CALENDAR = re.compile(r"\d{4}|\d{1,2}[./-]\d{1,2}[./-]\d{2}|(?<![^\W\d_])[^\W\d_]{3,}\.?\s?\d|\d\s[^\W\d_]{3,}")
_CLOCK = re.compile(r"\d{1,2}[:.h]\d\d")
_AGE = re.compile(r"\d\s(?:seconds?|minutes?|mins?|hours?)\sago")  # as precise as a clock

# A web address alone on its line (the "://" or "www." of a link a comment ends with).
_LINK = re.compile(r"(?:https?://|www\.)\S+$")

# A line of prose, as comment bodies have and headline lists do not: a
# lowercase word closed by sentence punctuation, or a long run of words.
_SENTENCE_END = re.compile(r"[a-z\u00e0-\u00ff](?:[.!?…][\"”')]*(?:\s|$)|:$)")
PROSE_WORDS = 10
# How many text lines at a body's opening are looked at for prose.
OPENING_LINES = 3

# A comment cut off by a widget ("Great post, I think th...", "…"), and the excerpt a pingback
# quotes from the linking post ("[...] as this post says [...]", "[…]"): neither is a reader's
# comment as written. Any site, any language: the marks are typographic.
_CUT_OFF = re.compile(r"(?:\.\.\.|…)$")
_EXCERPT = re.compile(r"\[(?:\.\.\.|…)\]")

# The count a comments heading starts with ("19 Responses", "{ 131 comments }").
_PARENTHESISED_COUNT = re.compile(r"\((\d{1,5})\)")
_HEADING_COUNT = re.compile(r"(?i)\W{0,3}(\d{1,5}|one|two|three|four|five|six|seven|eight|nine|ten)\b")

# Lines longer than this are prose: no header, signature or widget is this long.
MAX_FRAME_CHARS = 200
# A name line (of a name + date-line header) has at most this many words/chars.
MAX_NAME_WORDS = 6
MAX_NAME_CHARS = 60
# Two anchors with more non-blank lines than this between them start new clusters; prose lines
# are not counted there (a reader's essay runs past 60 paragraphs, a menu or a feed is not prose).
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
    trackback_patterns: tuple[str, ...] = ()  # headings over trackbacks/pingbacks: no reader comments below


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
    """Compile one pattern so a bad regex fails at load time with its file (kept compiled:
    `_compile` does not compile it again)."""
    try:
        compile_once(expanded)
    except re.error as err:
        raise ValueError(f"{path}: invalid pattern {original!r}: {err}") from err


def load_formats(path: Path) -> CommentFormats:
    """Read a formats YAML file (six required lists, optional lists, macros) and validate it.

    The file is read on every call, but parsed once per content: the split stage asks
    for its formats once per page.
    """
    return _formats_from_text(f"{path}", Path(path).read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=16)
def _formats_from_text(path: str, text: str) -> CommentFormats:
    """The formats a file named `path` with content `text` defines (errors name `path`)."""
    data: Any = load_yaml(text)
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
        groups = compile_once(pattern).groupindex
        if "number" not in groups and "name" not in groups:
            raise ValueError(f"{path}: invalid pattern {pattern!r}: needs a 'number' or 'name' group")
    return CommentFormats(**lists)


DEFAULT_FORMATS_PATH = Path(__file__).resolve().parents[2] / "configs" / "comments" / "formats.yaml"


def default_formats() -> CommentFormats:
    """The shipped formats, loaded on first use rather than at import: validating them
    compiles every pattern (0.2 s), which a process that reads no comments (the CLI's
    `--help`, `verify`) need not pay, and the split stage loads its configured file anyway."""
    return load_formats(DEFAULT_FORMATS_PATH)


# --- compiled patterns and their prefilters ----------------------------------
#
# Classifying a line tries up to ~45 patterns with fullmatch, and most lines (prose,
# headlines) match none. Each pattern therefore carries cheap necessary conditions,
# read from its parsed form (re's parser), that a line must meet before the regex is
# run: its length within the pattern's (min, max) width; its first and last characters
# (_AFFIX_LEN of them) among those the pattern's matches can start and end with; strings
# of which every match holds one ("says"/"said", "Posted", a digit); and for a pattern
# with no such strings but a mandatory part that starts with a digit or a sign (a clock
# time), a match of that part somewhere in the line. They only skip patterns that cannot
# match, so the classification is exactly that of trying every pattern in order. (A
# pattern the prefilters cannot read gets none and is always tried.)


_REPEATS = (re_parser.MAX_REPEAT, re_parser.MIN_REPEAT, re_parser.POSSESSIVE_REPEAT)
_ZERO_WIDTH = (re_parser.AT, re_parser.ASSERT, re_parser.ASSERT_NOT)
_CATEGORY_CLASSES = {
    re_parser.CATEGORY_DIGIT: r"\d", re_parser.CATEGORY_NOT_DIGIT: r"\D",
    re_parser.CATEGORY_SPACE: r"\s", re_parser.CATEGORY_NOT_SPACE: r"\S",
    re_parser.CATEGORY_WORD: r"\w", re_parser.CATEGORY_NOT_WORD: r"\W",
}
# Flags as plain ints: `int & re.IGNORECASE` goes through enum.Flag's Python-level operators,
# and reading the patterns tests flags some ten thousand times.
_IGNORECASE, _DOTALL, _MULTILINE, _ASCII = (int(f) for f in (re.IGNORECASE, re.DOTALL, re.MULTILINE, re.ASCII))
_FLAG_LETTERS = ((_IGNORECASE, "i"), (_ASCII, "a"))
_DIGIT: Any = object()  # in a need: met by any character \d matches (not only 0-9)
_HAS_DIGIT = re.compile(r"\d")
_MAX_EXPANSION = 8  # "[Oo]n" gives "On" and "on"; larger products are not spelled out
_MAX_NEEDS = 3  # needs checked per pattern, cheapest first
_AFFIX_LEN = 2  # how many first (last) characters of a line are checked
_MAX_AFFIXES = 5000  # more possible openings than this: no affix check
_SEARCH_MIN_WIDTH = 3  # a mandatory part searched for is at least this long
_WORDLIKE = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ "


class _Unknown(Exception):
    """A regex construct the prefilters do not read: that pattern gets no prefilter."""


def _with_flags(text: str, flags: int) -> str:
    letters = "".join(letter for flag, letter in _FLAG_LETTERS if flags & flag)
    return f"(?{letters}:{text})" if letters else text


def _char_class(op: Any, av: Any, flags: int) -> str:
    """One character-consuming item as a regex matching the same single characters."""
    key = (op, tuple(av) if isinstance(av, list) else av, flags)
    text = _CHAR_CLASSES.get(key)
    if text is None:
        text = _CHAR_CLASSES[key] = _char_class_text(op, av, flags)
    return text


_CHAR_CLASSES: dict[tuple[Any, Any, int], str] = {}


def _char_class_text(op: Any, av: Any, flags: int) -> str:
    if op is re_parser.LITERAL:
        text = re.escape(chr(av))
    elif op is re_parser.NOT_LITERAL:
        text = "[^" + re.escape(chr(av)) + "]"
    elif op is re_parser.IN:
        parts = []
        for item_op, item in av:
            if item_op is re_parser.NEGATE:
                parts.insert(0, "^")
            elif item_op is re_parser.LITERAL:
                parts.append(re.escape(chr(item)))
            elif item_op is re_parser.RANGE:
                parts.append(re.escape(chr(item[0])) + "-" + re.escape(chr(item[1])))
            elif item_op is re_parser.CATEGORY and item in _CATEGORY_CLASSES:
                parts.append(_CATEGORY_CLASSES[item])
            else:
                raise _Unknown(item_op)
        text = "[" + "".join(parts) + "]"
    elif op is re_parser.ANY:
        return "(?s:.)" if flags & _DOTALL else "(?-s:.)"
    else:
        raise _Unknown(op)
    return _with_flags(text, flags)


def _affixes(items: Any, flags: int, from_end: bool, size: int = _AFFIX_LEN) -> set[tuple[str, ...]]:
    """The class sequences of the first (from_end: last, read backwards) `size`
    characters, or all of them if fewer, of the strings `items` matches."""
    done: set[tuple[str, ...]] = set()  # sequences already _AFFIX_LEN long
    open_: set[tuple[str, ...]] = {()}  # sequences the next items extend
    for op, av in (reversed(list(items)) if from_end else items):
        if not open_:
            break
        tails = _item_affixes(op, av, flags, from_end, size)
        extended: set[tuple[str, ...]] = set()
        for head in open_:
            room = size - len(head)
            for tail in tails:
                sequence = head + tail[:room]
                (done if len(sequence) == size else extended).add(sequence)
        open_ = extended
        if len(done) + len(open_) > _MAX_AFFIXES:
            raise _Unknown("too many affixes")
    return done | open_


def _item_affixes(op: Any, av: Any, flags: int, from_end: bool, size: int) -> set[tuple[str, ...]]:
    if op in _ZERO_WIDTH:
        return {()}  # anchors and lookarounds consume nothing; ignoring them only widens
    if op is re_parser.SUBPATTERN:
        return _affixes(av[-1], (flags | av[1]) & ~av[2], from_end, size)
    if op is re_parser.ATOMIC_GROUP:
        return _affixes(av, flags, from_end, size)
    if op is re_parser.BRANCH:
        return set().union(*(_affixes(alternative, flags, from_end, size) for alternative in av[1]))
    if op in _REPEATS:
        low, high, sub = av
        once = _affixes(sub, flags, from_end, size)
        found: set[tuple[str, ...]] = set()
        # Copies past `size` add nothing: a copy that matches anything adds a character.
        sequences: set[tuple[str, ...]] = {()}
        for copies in range(0, min(high, size) + 1):
            if copies >= min(low, size):
                found |= sequences
            sequences = {(head + tail)[:size] for head in sequences for tail in once}
            if len(sequences) > _MAX_AFFIXES:
                raise _Unknown("too many affixes")
        return found
    return {(_char_class(op, av, flags),)}


def _affix_check(parsed: Any, flags: int, from_end: bool,
                 prefix: bool = False) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
    """Regexes that the first (from_end: last) character, and the first (last)
    _AFFIX_LEN characters, of a non-empty line must fullmatch for the pattern to fullmatch
    the line; with `prefix` (a pattern used with re.match), that the first characters must
    match. None when every line qualifies."""
    sequences = _affixes(parsed, flags, from_end)
    if prefix and () in sequences:
        return None, None  # an empty match: every line has it
    sequences.discard(())  # a fullmatch of a non-empty line is not empty
    anything = _char_class(re_parser.ANY, None, flags)
    if not sequences or all(set(s) == {anything} for s in sequences):
        return None, None
    edges = sorted({s[0] for s in sequences})
    texts = sorted("".join(reversed(s) if from_end else s) for s in sequences)
    return (None if anything in edges else re.compile("|".join(edges)),
            re.compile("|".join(f"(?:{text})" for text in texts)))


_AT_TEXTS = {
    re_parser.AT_BEGINNING: "^", re_parser.AT_END: "$", re_parser.AT_BEGINNING_STRING: r"\A",
    re_parser.AT_END_STRING: r"\Z", re_parser.AT_BOUNDARY: r"\b", re_parser.AT_NON_BOUNDARY: r"\B",
}


def _unparse(items: Any, flags: int) -> str:
    """A regex matching what the parsed `items` match, every flag spelled out locally."""
    out: list[str] = []
    for op, av in items:
        if op in (re_parser.LITERAL, re_parser.NOT_LITERAL, re_parser.IN, re_parser.ANY):
            out.append(_char_class(op, av, flags))
        elif op is re_parser.AT and av in _AT_TEXTS:
            text = _AT_TEXTS[av]
            if av in (re_parser.AT_BEGINNING, re_parser.AT_END):
                text = f"(?m:{text})" if flags & _MULTILINE else f"(?-m:{text})"
            elif av in (re_parser.AT_BOUNDARY, re_parser.AT_NON_BOUNDARY) and flags & _ASCII:
                text = f"(?a:{text})"
            out.append(text)
        elif op is re_parser.SUBPATTERN:
            out.append("(?:" + _unparse(av[-1], (flags | av[1]) & ~av[2]) + ")")
        elif op is re_parser.ATOMIC_GROUP:
            out.append("(?>" + _unparse(av, flags) + ")")
        elif op is re_parser.BRANCH:
            out.append("(?:" + "|".join(_unparse(alternative, flags) for alternative in av[1]) + ")")
        elif op in _REPEATS:
            low, high, sub = av
            bounds = f"{{{low},}}" if high == re_parser.MAXREPEAT else f"{{{low},{high}}}"
            lazy = "?" if op is re_parser.MIN_REPEAT else "+" if op is re_parser.POSSESSIVE_REPEAT else ""
            out.append("(?:" + _unparse(sub, flags) + ")" + bounds + lazy)
        elif op in (re_parser.ASSERT, re_parser.ASSERT_NOT):
            direction, sub = av
            opener = ("(?=" if direction == 1 else "(?<=") if op is re_parser.ASSERT else \
                ("(?!" if direction == 1 else "(?<!")
            out.append(opener + _unparse(sub, flags) + ")")
        else:
            raise _Unknown(op)
    return "".join(out)


def _mandatory_sequences(items: Any, flags: int) -> list[tuple[Any, int]]:
    """Sequences every match of `items` holds a match of: `items`, and the contents of its
    groups and of its repeats of at least one (re's parser inlines plain groups "(?:...)")."""
    found: list[tuple[Any, int]] = [(items, flags)]
    for op, av in items:
        if op is re_parser.SUBPATTERN:
            found.extend(_mandatory_sequences(av[-1], (flags | av[1]) & ~av[2]))
        elif op is re_parser.ATOMIC_GROUP:
            found.extend(_mandatory_sequences(av, flags))
        elif op in _REPEATS and av[0] >= 1:
            found.extend(_mandatory_sequences(av[2], flags))
    return found


def _search_need(parsed: Any, flags: int) -> re.Pattern[str] | None:
    """A mandatory part of the pattern that starts with a digit or a sign, not a letter or
    a space (a clock time, say), as a regex to search the line for: the widest tail of a
    mandatory sequence that starts so."""
    best: tuple[int, Any, int] | None = None
    for sequence, sequence_flags in _mandatory_sequences(parsed, flags):
        for start in range(1 if sequence is parsed else 0, len(sequence)):
            tail = sequence[start:]
            width = tail.getwidth()[0]
            if width < _SEARCH_MIN_WIDTH or (best is not None and width <= best[0]):
                continue
            openings = _affixes(tail, sequence_flags, from_end=False, size=1)
            if not openings or any(not s for s in openings):
                continue
            first = re.compile("|".join(sorted({s[0] for s in openings})))
            if any(first.fullmatch(c) for c in _WORDLIKE):
                continue
            best = (width, tail, sequence_flags)
    return None if best is None else re.compile(_unparse(best[1], best[2]))


def _strings(op: Any, av: Any, flags: int) -> set[tuple[str, bool]] | None:
    """The strings one item matches, when it is a literal or a small set: (text, ci)
    pairs, ci for an ASCII string matched case-insensitively (then lower-cased)."""
    ci = bool(flags & _IGNORECASE)
    if op is re_parser.LITERAL:
        chars = {chr(av)}
    elif op is re_parser.IN and len(av) <= _MAX_EXPANSION:
        chars = set()
        for item_op, item in av:
            if item_op is re_parser.LITERAL:
                chars.add(chr(item))
            elif item_op is re_parser.RANGE and item[1] - item[0] < _MAX_EXPANSION:
                chars.update(map(chr, range(item[0], item[1] + 1)))
            else:
                return None
        if len(chars) > _MAX_EXPANSION:
            return None
    else:
        return None
    if ci:
        # Under IGNORECASE only ASCII, Latin-1 letters and uncased characters ("©") are
        # spelled out: see folded().
        if not all(c.isascii() or "\u00c0" <= c <= "\u00ff" or c.lower() == c.upper() == c.casefold() == c
                   for c in chars):
            return None
        chars = {c.lower() for c in chars}
    return {(c, ci) for c in chars}


def literal_needs(pattern: re.Pattern[str]) -> tuple[tuple[tuple[str, ...], ...], tuple[tuple[str, ...], ...]]:
    """Strings every match of `pattern` holds: (needs, folded_needs). Each need is a tuple
    of strings one of which a match holds; a folded need's strings are lower-cased and are
    to be looked for in folded(text). Empty when nothing can be shown."""
    if not _PARSER_AS_EXPECTED:
        return (), ()
    try:
        needs = _needs(parse_once(pattern.pattern, pattern.flags), pattern.flags)
    except Exception:  # noqa: BLE001 - re's parser is private: any surprise means no needs
        return (), ()
    plain = tuple(tuple(sorted(t for t, _ in need)) for need in set(needs)
                  if all(not ci and t is not _DIGIT for t, ci in need))
    ci_needs = tuple(tuple(sorted(t for t, _ in need)) for need in set(needs) if all(ci for _t, ci in need))
    return tuple(sorted(plain)), tuple(sorted(ci_needs))


_Need = frozenset[tuple[Any, bool]]  # (text or _DIGIT, case-insensitive): one must occur
_DIGIT_NEED: _Need = frozenset({(_DIGIT, False)})


def _need_cost(need: _Need) -> int:
    """How often a need is met by ordinary text, roughly: a lower cost filters more."""
    cost = 0
    for text, _ci in need:
        if text is _DIGIT:
            cost += 30
        elif len(text) == 1:
            cost += 30 if text.isalnum() or text.isspace() else 8
        else:
            cost += 5 if len(text) == 2 else 2 if len(text) == 3 else 1
    return cost


def _needs(items: Any, flags: int) -> list[_Need]:
    """Needs of `items`: sets of strings of which every match contains one."""
    needs: list[_Need] = []
    run: set[tuple[str, bool]] | None = None  # strings spelled by the current run of literal items

    def close_run() -> None:
        nonlocal run
        if run:
            needs.append(frozenset(run))
        run = None

    for op, av in items:
        strings = _strings(op, av, flags)
        if strings is not None:
            # Items of one sequence share its flags, so a run is all ci or all not.
            if run is None:
                run = strings
            elif len(run) * len(strings) <= _MAX_EXPANSION:
                run = {(a + b, ci) for a, ci in run for b, _ in strings}
            else:
                close_run()
                run = strings
            continue
        close_run()
        if op is re_parser.IN and av == [(re_parser.CATEGORY, re_parser.CATEGORY_DIGIT)]:
            needs.append(_DIGIT_NEED)
        elif op is re_parser.SUBPATTERN:
            needs.extend(_needs(av[-1], (flags | av[1]) & ~av[2]))
        elif op is re_parser.ATOMIC_GROUP:
            needs.extend(_needs(av, flags))
        elif op in _REPEATS and av[0] >= 1:
            needs.extend(_needs(av[2], flags))
        elif op is re_parser.BRANCH:
            per_alternative = [_needs(alternative, flags) for alternative in av[1]]
            if all(per_alternative):
                # One need per alternative, cheapest first: their union is a need.
                needs.append(frozenset().union(*(min(n, key=_need_cost) for n in per_alternative)))
                if all(_DIGIT_NEED in n for n in per_alternative):
                    needs.append(_DIGIT_NEED)
    close_run()
    return needs


@dataclass(frozen=True)
class _Rule:
    """One pattern with the necessary conditions a line must meet to fullmatch it."""

    pattern: re.Pattern[str]
    kind: str = ""
    min_len: int = 0
    max_len: int = 1 << 62
    first: re.Pattern[str] | None = None  # the line's first character must fullmatch this
    prefix: re.Pattern[str] | None = None  # and its first _AFFIX_LEN characters this
    last: re.Pattern[str] | None = None  # the line's last character must fullmatch this
    suffix: re.Pattern[str] | None = None  # and its last _AFFIX_LEN characters this
    needs: tuple[tuple[str, ...], ...] = ()  # one string of each must occur in the line
    ci_needs: tuple[tuple[str, ...], ...] = ()  # the same in folded(line), when it has one
    needs_digit: bool = False
    search: re.Pattern[str] | None = None  # must be found in the line


def _rule(pattern: re.Pattern[str], kind: str = "", prefix_only: bool = False) -> _Rule:
    """The pattern's prefilters; a pattern they cannot read gets none. With `prefix_only`
    (a pattern used with re.match), only its width and opening characters."""
    if not _PARSER_AS_EXPECTED:
        return _Rule(pattern, kind)
    return _derive_rule(pattern, kind, prefix_only)


def _derive_rule(pattern: re.Pattern[str], kind: str, prefix_only: bool) -> _Rule:
    try:
        tree = parse_once(pattern.pattern, pattern.flags)  # (compile_pattern's, for a config pattern)
        flags = pattern.flags
        min_len, max_len = tree.getwidth()
        if prefix_only:
            first, _ = _affix_check(tree, flags, False, prefix=True)
            return _Rule(pattern, kind, min_len, first=first)
        first, prefix = _affix_check(tree, flags, from_end=False)
        last, suffix = _affix_check(tree, flags, from_end=True)
        needs = sorted(set(_needs(tree, flags)), key=_need_cost)[:_MAX_NEEDS]
        # A need mixing the digit with strings, or cased with case-insensitive strings, is dropped.
        plain = [need for need in needs if all(not ci and text is not _DIGIT for text, ci in need)]
        folded = [need for need in needs if all(ci for _text, ci in need)]
        # Searching costs about what a fullmatch does: only for patterns no strings filter.
        search = None if plain or folded else _search_need(tree, flags)
    except Exception:  # noqa: BLE001 - re's parser is private: any surprise means no prefilter
        return _Rule(pattern, kind)
    return _Rule(
        pattern,
        kind,
        min_len,
        max_len,
        first,
        prefix,
        last,
        suffix,
        tuple(tuple(sorted(text for text, _ in need)) for need in plain),
        tuple(tuple(sorted(text for text, _ in need)) for need in folded),
        _DIGIT_NEED in needs,
        search,
    )


def _parser_as_expected() -> bool:
    """Whether re's parser (a private module) still gives what the prefilters read: they
    are derived for a sample pattern and compared with what was worked out by hand. If
    not, no prefilter is used (every pattern is tried, as before them)."""
    sample = r"^(?P<a>[Oo]n\s)?(?i:says|said)(?:x|yz)\d{1,2}[:.]\d\d+?(?>\s*+)(?=z)(?<![q])[^a-c\W].{0,3}$"
    try:
        rule = _derive_rule(re.compile(sample), "k", False)
        item = _derive_rule(re.compile(r"^#?(?P<n>\d{1,4})\s+"), "", True)
        clock = _search_need(re_parser.parse(r"^\w+ (?:at )?\d{1,2}:\d\d(?= ?[ap]m)", 0), 0)
        found = (
            rule.min_len, rule.max_len, rule.first and rule.first.pattern, rule.prefix and rule.prefix.pattern,
            rule.last and rule.last.pattern, rule.suffix and rule.suffix.pattern, rule.needs, rule.ci_needs,
            rule.needs_digit, rule.search and rule.search.pattern, item.min_len, item.first and item.first.pattern,
            clock and clock.pattern,
        )
    except Exception:  # noqa: BLE001
        return False
    return found == (
        10, re_parser.MAXWIDTH, "(?i:s)|[Oo]", "(?:(?i:s)(?i:a))|(?:[Oo]n)", None,
        "(?:(?-s:.)(?-s:.))|(?:[\\d][^a-c\\W])|(?:[\\s][^a-c\\W])|(?:[^a-c\\W](?-s:.))",
        ((".", ":"),), (("sa",), ("id", "ys")), False, None, 2, "[\\d]|\\#",
        "(?:[\\d]){1,2}:[\\d][\\d](?=(?:\\ ){0,1}[ap]m)",
    )


_PARSER_AS_EXPECTED = _parser_as_expected()


@functools.lru_cache(maxsize=256)
def prefix_rule(pattern: re.Pattern[str]) -> _Rule:
    """The prefilters of a pattern used with re.match: its min_len, and its `first`
    (None: any character), which the first character of a text it matches fullmatches
    (when min_len > 0)."""
    return _rule(pattern, prefix_only=True)


class _Rules:
    """The fullmatch pattern lists, in the order _classify tries them, with their prefilters.

    Which rules a line's first character, last character and length admit is kept as a
    bit mask per character and per length, and the rules of each combined mask as a
    tuple, all cached: a line costs a few dictionary look-ups, then only the admitted
    rules' needs are checked and their patterns run.
    """

    def __init__(self, rules: Sequence[_Rule], on_rest: Sequence[bool]) -> None:
        self.rules = tuple(rules)
        self.on_rest = tuple(on_rest)  # header rules see the line without its list marker
        self.rest_bits = sum(1 << bit for bit, flag in enumerate(self.on_rest) if flag)
        self._firsts: dict[str, int] = {}
        self._lasts: dict[str, int] = {}
        self._prefixes: dict[str, int] = {}
        self._suffixes: dict[str, int] = {}
        self._sizes: dict[int, int] = {}
        # (pattern, kind, on_rest, needs, ci_needs, needs_digit, search) of the rules of a mask
        self._by_mask: dict[int, tuple[tuple[Any, ...], ...]] = {}

    def _char_mask(self, char: str, last: bool) -> int:
        """The rules whose patterns can start (last: end) with `char`."""
        cache = self._lasts if last else self._firsts
        mask = cache.get(char)
        if mask is None:
            mask = 0
            for bit, rule in enumerate(self.rules):
                check = rule.last if last else rule.first
                if check is None or check.fullmatch(char) is not None:
                    mask |= 1 << bit
            if len(cache) < 100_000:
                cache[char] = mask
        return mask

    def _affix_mask(self, cache: dict[str, int], affix: str, last: bool) -> int:
        """The rules whose patterns can start (last: end) with `affix`, the first (last)
        _AFFIX_LEN characters of a line; its edge character narrows them first."""
        mask = cache.get(affix)
        if mask is None:
            mask = self._char_mask(affix[-1] if last else affix[0], last)
            for bit, rule in enumerate(self.rules):
                if mask >> bit & 1:
                    check = rule.suffix if last else rule.prefix
                    if check is not None and check.fullmatch(affix) is None:
                        mask &= ~(1 << bit)
            if len(cache) < 200_000:
                cache[affix] = mask
        return mask

    def _size_mask(self, size: int) -> int:
        mask = self._sizes.get(size)
        if mask is None:
            mask = sum(1 << bit for bit, rule in enumerate(self.rules) if rule.min_len <= size <= rule.max_len)
            if len(self._sizes) < 100_000:
                self._sizes[size] = mask
        return mask

    def mask(self, text: str) -> int:
        """The rules non-empty `text` may fullmatch by its first and last characters and length."""
        return (self._affix_mask(self._prefixes, text[:_AFFIX_LEN], False)
                & self._affix_mask(self._suffixes, text[-_AFFIX_LEN:], True)
                & self._size_mask(len(text)))

    def first_match(self, text: str, rest: str) -> tuple[str, re.Match[str]] | None:
        """(kind, match) of the first rule whose pattern matches the whole of its line:
        `rest` (the line without its list marker) for header rules, else `text`."""
        # self.mask(text), spelled out: this runs once per line.
        prefix, suffix = text[:_AFFIX_LEN], text[-_AFFIX_LEN:]
        mask = self._prefixes.get(prefix)
        if mask is None:
            mask = self._affix_mask(self._prefixes, prefix, False)
        last = self._suffixes.get(suffix)
        if last is None:
            last = self._affix_mask(self._suffixes, suffix, True)
        size = self._sizes.get(len(text))
        if size is None:
            size = self._size_mask(len(text))
        mask &= last & size
        if rest is not text:
            mask = (mask & ~self.rest_bits) | (self.mask(rest) & self.rest_bits if rest else 0)
        rules = self._by_mask.get(mask)
        if rules is None:
            rules = tuple((rule.pattern, rule.kind, self.on_rest[bit], rule.needs, rule.ci_needs,
                           rule.needs_digit, rule.search)
                          for bit, rule in enumerate(self.rules) if mask >> bit & 1)
            if len(self._by_mask) < 100_000:
                self._by_mask[mask] = rules
        # Needs are looked for in `text`, which holds `rest`: a superset, so still necessary
        # (not a search regex: its lookarounds might see past the ends of `rest`).
        lower: str | None = None
        digit: bool | None = None
        for pattern, kind, on_rest, needs, ci_needs, needs_digit, search in rules:
            if needs and not _meets(needs, text):
                continue
            if ci_needs:
                if lower is None:
                    lower = folded(text) or ""
                if lower and not _meets(ci_needs, lower):
                    continue
            if needs_digit:
                if digit is None:
                    digit = _HAS_DIGIT.search(text) is not None
                if not digit:
                    continue
            subject = rest if on_rest else text
            if search is not None and search.search(subject) is None:
                continue
            match = pattern.fullmatch(subject)
            if match:
                return kind, match
        return None


def _meets(needs: tuple[tuple[str, ...], ...], text: str) -> bool:
    """Whether `text` holds one string of every need."""
    for need in needs:
        for part in need:
            if part in text:
                break
        else:
            return False
    return True


@dataclass(frozen=True)
class _Patterns:
    """The formats compiled once per formats (see _compile)."""

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
    trackback: tuple[re.Pattern[str], ...]
    # The fullmatch patterns with their prefilters, in the order _classify tries them;
    # each rule carries the kind its match gives.
    rules: _Rules
    # List-marker patterns (re.match, not fullmatch), and those a first character admits.
    item_rules: tuple[_Rule, ...]
    item_by_first: dict[str, tuple[re.Pattern[str], ...]]
    classified: dict[str, _Info]  # see _classify
    # The reply-link patterns alone: a removed line is a reply link only if one matches it.
    reply_rules: _Rules
    marker_flags: dict[str, tuple[bool, bool]]  # see _marker_flags
    # The mention patterns with the strings every match holds (literal_needs): a comment's
    # opening line without them is not searched.
    mention_needs: tuple[tuple[re.Pattern[str], tuple[tuple[str, ...], ...], tuple[tuple[str, ...], ...]], ...]


def _compile(formats: CommentFormats) -> _Patterns:
    """Compile every pattern list of `formats` (once per formats: _compile_cached)."""
    return _compile_cached(formats)


@functools.lru_cache(maxsize=16)
def _compile_cached(formats: CommentFormats) -> _Patterns:
    names = [f.name for f in fields(CommentFormats)]
    # Risky shapes run under a time bound (pipeline.patterns); `.pattern`/`.flags` are `re`'s for _rule.
    compiled = {name: tuple(compile_pattern(p, f"comment formats: {name}") for p in getattr(formats, name))
                for name in names}

    # The order of _classify: signature, date line, header (on the line without its
    # list marker), end, reply link, pagination, widget, heading, pre-header, byline.
    order = [(SIGNATURE, "signature_patterns"), (DATE, "date_line_patterns"), (HEADER, "header_patterns"),
             (END, "end_patterns"), (REPLY, "reply_link_patterns"), (PAGINATION, "pagination_patterns"),
             (WIDGET, "widget_patterns"), (HEADING, "heading_patterns"), (PRE, "pre_header_patterns"),
             (BYLINE, "byline_patterns")]
    listed = [(kind, p) for kind, name in order for p in compiled[name]]
    rules = [_rule(p, kind) for kind, p in listed]
    replies = [rule for rule in rules if rule.kind == REPLY]  # (in the order of reply_link_patterns)
    item_rules = tuple(_rule(p, prefix_only=True) for p in compiled["item_patterns"])
    mention_needs = tuple((p, *literal_needs(p)) for p in compiled["mention_patterns"])
    # The patterns' parse trees (compile_pattern's, read again by the prefilters) are done with.
    forget_parse_trees()

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
        trackback=compiled["trackback_patterns"],
        rules=_Rules(rules, [kind == HEADER for kind, _ in listed]),
        item_rules=item_rules,
        item_by_first={},
        classified={},
        reply_rules=_Rules(replies, [False] * len(replies)),
        marker_flags={},
        mention_needs=mention_needs,
    )


def compile_formats(formats: CommentFormats) -> None:
    """Compile `formats` now rather than on the first page that needs them (`split.warm`:
    the run's worker processes, forked afterwards, inherit them compiled)."""
    _compile(formats)


def _item_patterns(pats: _Patterns, first: str) -> tuple[re.Pattern[str], ...]:
    """The list-marker patterns a line starting with the character `first` may match (re.match)."""
    found = pats.item_by_first.get(first)
    if found is None:
        found = tuple(rule.pattern for rule in pats.item_rules
                      if rule.first is None or rule.first.fullmatch(first) is not None)
        if len(pats.item_by_first) < 100_000:
            pats.item_by_first[first] = found
    return found


class _Info(NamedTuple):
    """What one line is, and the fields its pattern captured. (Tuples: pages make thousands
    of these records, and a tuple is built several times faster than a frozen dataclass.)"""

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


_BLANK_INFO = _Info(BLANK)
_TEXT_INFO = _Info(TEXT)


_MAX_CLASSIFIED = 200_000  # lines whose class is kept per formats (a page's repeated lines, a site's widgets)


def _classify(text: str, pats: _Patterns) -> _Info:
    """Classify one stripped line; order matters where patterns overlap.

    The order: signature, date line, header (on the line without its list marker),
    section end, reply link, pagination, widget, heading, pre-header, byline; the
    first pattern of the first kind that matches the whole line decides. A line's
    class depends on its text alone, so it is kept for the next time the line is seen.
    """
    info = pats.classified.get(text)
    if info is None:
        info = _classify_line(text, pats)
        if len(text) <= MAX_FRAME_CHARS:
            if len(pats.classified) >= _MAX_CLASSIFIED:
                pats.classified.clear()
            pats.classified[text] = info
    return info


def _classify_line(text: str, pats: _Patterns) -> _Info:
    if not text:
        return _BLANK_INFO
    # A list marker is stripped before header patterns so they see "mikael says".
    rest, item, item_number = text, False, None
    item_match = None
    for pattern in _item_patterns(pats, text[0]):
        item_match = pattern.match(text)
        if item_match:
            break
    if item_match:
        rest, item, item_number = text[item_match.end():].strip(), True, _group(item_match, "number")
    if len(text) > MAX_FRAME_CHARS:
        return _Info(TEXT, number=item_number, item=item) if item else _TEXT_INFO

    found = pats.rules.first_match(text, rest)
    if found is None:
        return _Info(TEXT, number=item_number, item=item) if item else _TEXT_INFO
    kind, match = found
    if kind == HEADER:
        number = _group(match, "number") or item_number
        return _Info(HEADER, _group(match, "author"), number, _group(match, "posted"), item)
    if kind == SIGNATURE:
        return _Info(SIGNATURE, _group(match, "author"), _group(match, "number"), _group(match, "posted"))
    if kind == DATE:
        # A line that is only a date is a date line, whatever header pattern it also fits.
        return _Info(DATE, posted=_group(match, "posted") or text)
    if kind == PRE:
        return _Info(PRE, number=_group(match, "number"))
    return _Info(kind)


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
    shape_of = {i: _shape(infos[i].posted) for i in sig_rows}
    shapes = Counter(shape_of.values())
    main_shape, main_count = shapes.most_common(1)[0]
    rejected: set[int] = set()
    if main_count * 2 > len(sig_rows):
        rejected = {i for i in sig_rows if shape_of[i] != main_shape}
    numbered = [i for i in sig_rows if i not in rejected and infos[i].number is not None]
    if len(numbered) * 2 > len(sig_rows):
        keep = _longest_increasing([int(infos[i].number or 0) for i in numbered])
        rejected |= {row for k, row in enumerate(numbered) if k not in keep}
    if not rejected:
        return infos
    return [_Info(TEXT) if i in rejected else info for i, info in enumerate(infos)]


# --- removed lines -------------------------------------------------------------


@dataclass(frozen=True)
class _Marks:
    """What the boilerplate stage's markers tell: a reason per marked line index."""

    reasons: dict[int, str]
    rows: set[int]
    # Indexes whose run of removed lines ends with a comments heading or form, each with
    # whether that line counts comments; a heading that counts them may have up to
    # HEADING_WINDOW other removed lines after it (the thread's own chrome: a count, a sort menu).
    sections: dict[int, bool]
    breaks: list[int]  # sorted indexes of removed headings counting comments (any, if texts are unknown)
    counted: frozenset[int] | None  # indexes of removed headings counting comments; None: texts unknown
    chrome_breaks: list[int]  # `breaks`, any removed heading and page chrome (footer, menu): bare names stop
    trackbacks: frozenset[int]  # indexes of removed headings over trackbacks ("One Trackback")
    trackback_line: Callable[[int], bool]  # whether a line is such a heading (asked of a few lines only)
    replies: list[int]  # sorted indexes of removed reply links ("Reply", "Log in to Reply")


def _read_markers(markers: Sequence[tuple[int, str] | tuple[int, str, str]], pats: _Patterns,
                  texts: Sequence[str] = ()) -> _Marks:
    """The markers (and trackback headings among the stripped lines `texts`) as the cluster
    checks read them. (Pages have a hundred markers or more: they are read in one pass,
    each text looked up once.)

    The counted-heading test needs every marker's text: with any text missing, every
    removed heading counts, as before texts were passed.

    A marker on a blank line is read at the next non-blank one: with a blank line between
    blocks, each removed line leaves its own blank line behind, and a page must read the same
    in both layouts (else the checks that skip blank lines look through any number of removed
    lines, up to a comment form far above a sidebar feed).
    """
    # Lines removed in a row share an index: the one nearest it (the last) wins.
    reasons: dict[int, str] = {}
    sections: dict[int, bool] = {}
    after: dict[int, int] = {}  # per index: removed lines after its nearest comments heading or form
    size = len(texts)
    lo = hi = 0  # the last run of blank lines walked over, [lo, hi): read at line hi
    settled: dict[int, int] = {}  # a blank line's index -> the next non-blank line's (or the end)
    feeds: set[int] = set()
    headings: set[int] = set()  # removed comments headings, wherever they lie in their run
    chrome_rows: set[int] = set()
    counting: set[int] = set()  # removed headings whose text counts comments
    trackbacks: set[int] = set()
    replies: set[int] = set()
    all_texts = bool(markers)
    known = pats.marker_flags
    for marker in markers:
        index, reason = int(marker[0]), str(marker[1])
        if index < size and not texts[index]:
            if lo <= index < hi:
                index = hi
            elif index in settled:
                index = settled[index]
            else:
                row = index
                while row < size and not texts[row]:
                    row += 1
                if index < lo:  # out of order (the stage writes them in order): walked twice at most
                    settled.update(dict.fromkeys(range(index, row), row))
                lo, hi, index = index, row, row
        reasons[index] = reason
        heading = reason in _HEADING_MARKER_REASONS
        counts = heading and len(marker) > 2 and _counts_comments(str(marker[2]), pats)
        if reason in _SECTION_MARKER_REASONS:
            trackbacks.discard(index)  # the heading nearest the line wins ("Trackbacks | 7 Comments")
            sections[index] = counts
            if counts:
                after[index] = 0
            else:
                after.pop(index, None)
        elif index in sections:
            if index in after and after[index] < HEADING_WINDOW:
                after[index] += 1
            else:
                after.pop(index, None)
                del sections[index]
        if reason in _FEED_MARKER_REASONS:
            feeds.add(index)
        if heading:
            headings.add(index)
            chrome_rows.add(index)
            if counts:
                counting.add(index)
        elif reason in _CHROME_MARKER_REASONS:
            chrome_rows.add(index)
        if len(marker) < 3:
            all_texts = False
            continue
        text = str(marker[2])
        flags = known.get(text) or _marker_flags(text, pats)
        if flags is not _NO_FLAGS:
            if flags[0]:
                trackbacks.add(index)
            if flags[1]:
                replies.add(index)
    counted = frozenset(counting) if all_texts else None
    # A removed heading between two comments separates them whatever was removed after it ("1").
    breaks = sorted(feeds | (headings if counted is None else counting))
    return _Marks(reasons, set(reasons), sections, breaks, counted, sorted(chrome_rows.union(breaks)),
                  frozenset(trackbacks), lambda i: i < len(texts) and _is_trackback_heading(texts[i], pats),
                  sorted(replies))


_NO_FLAGS = (False, False)


def _marker_flags(text: str, pats: _Patterns) -> tuple[bool, bool]:
    """Whether a removed line's text heads trackbacks, and whether it is a reply link (not
    a permalink: articles show those too); both read on the stripped text. Kept per text:
    removed lines repeat across a site's pages."""
    flags = pats.marker_flags.get(text)
    if flags is None:
        stripped = text.strip()
        # Only a text that a reply-link pattern matches can be classified as one (the
        # patterns of the kinds tried before may still claim it). A blank text (a marker
        # written by hand, say) is neither; the rules' index reads a first character.
        reply = (bool(stripped) and pats.reply_rules.first_match(stripped, stripped) is not None
                 and _classify(stripped, pats).kind == REPLY and stripped.casefold() not in _PERMALINKS)
        flags = (_is_trackback_heading(stripped, pats), reply)
        if flags == _NO_FLAGS:
            flags = _NO_FLAGS
        if len(pats.marker_flags) >= _MAX_CLASSIFIED:
            pats.marker_flags.clear()
        pats.marker_flags[text] = flags
    return flags


def _is_trackback_heading(text: str, pats: _Patterns) -> bool:
    """Whether a line heads trackbacks; each names "back", a cheap test before the patterns."""
    return (0 < len(text) <= _MAX_TRACKBACK_CHARS and "back" in text.casefold()
            and _first_match(pats.trackback, text) is not None)


def _counts_comments(text: str, pats: _Patterns) -> bool:
    """Whether a heading line counts one comment or more: "19 Responses", "Comments (3)"."""
    stripped = text.strip()
    if _classify(stripped, pats).kind != HEADING:
        return False
    count = _HEADING_COUNT.match(stripped) or _PARENTHESISED_COUNT.search(stripped)
    return count is not None and count.group(1) != "0"


def _signatures_as_headers(infos: list[_Info]) -> list[_Info]:
    """Read signature lines as headers when the page's reply links sit just above them.

    A "date | name" line closes a comment on some sites and opens one on others. Reply
    links end a comment: when most such lines follow one ("Reply" / "date | name" /
    body / "Reply"), each opens the comment below it.
    """
    rows = [i for i, info in enumerate(infos) if info.kind == SIGNATURE]
    if len(rows) < 2:
        return infos
    above = sum(1 for i in rows if (j := _next_nonblank(infos, i, -1)) is not None and infos[j].kind == REPLY)
    below = sum(1 for i in rows if (j := _next_nonblank(infos, i, 1)) is not None and infos[j].kind == REPLY)
    if above * 2 < len(rows) or above <= below:
        return infos
    converted = list(infos)
    for i in rows:
        converted[i] = _Info(HEADER, infos[i].author, infos[i].number, infos[i].posted)
    return converted


# --- anchors and clusters ----------------------------------------------------


class _Anchor(NamedTuple):
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
    if len(text) > MAX_NAME_CHARS:
        return False  # (checked below too; first, so that long lines are not split)
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

    Either "Name / date [/ time]" or "date / Name". A page lays out all its
    comments one way: where more date lines can open "date / Name" than
    "Name / date", that reading wins (else a previous comment's short last
    line, "Cheers", would be read as the name above the next date). A date
    line followed by another header or a form is Blogger's footer, not a
    header, and makes no anchor.
    """
    pairs: list[tuple[list[int], int | None, int | None, bool, bool]] = []
    for i in [i for i, info in enumerate(infos) if info.kind == DATE]:
        if not _CALENDAR.search(infos[i].posted or ""):
            continue
        above = _next_nonblank(infos, i, -1)
        below = _next_nonblank(infos, i, 1)
        date_rows = [i]
        if below is not None and infos[below].kind == DATE:  # "November 6th, 2012 / 10:11 am"
            date_rows.append(below)
            below = _next_nonblank(infos, below, 1)
        name_above = above is not None and infos[above].kind == TEXT and _is_name_like(lines[above].stripped)
        name_below = (below is not None and infos[below].kind == TEXT and _is_name_like(lines[below].stripped)
                      and (after := _next_nonblank(infos, below, 1)) is not None and infos[after].kind == TEXT)
        pairs.append((date_rows, above, below, name_above, name_below))
    dates_first = sum(p[4] for p in pairs) > sum(p[3] for p in pairs)
    anchors: list[_Anchor] = []
    for date_rows, above, below, name_above, name_below in pairs:
        if name_above and above is not None and not (dates_first and name_below):
            name, header = above, [above, *date_rows]
        elif name_below and below is not None:
            name, header = below, [*date_rows, below]
            below = _next_nonblank(infos, below, 1)
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
    if len(text) > MAX_BARE_NAME_CHARS:
        return False  # (checked below too; first, so that long lines are not split)
    words = text.split()
    # "Amy D." ends with an initial, not a full stop.
    initial = len(text) > 2 and text[-1] == "." and text[-2].isupper() and text[-3] == " "
    return (0 < len(words) <= MAX_BARE_NAME_WORDS and len(text) <= MAX_BARE_NAME_CHARS
            and (initial or text[-1] not in ".!?;:,\"”)") and words[0].lower() != "by"
            and any(char.isalpha() for char in text)  # "***", "12" are separators and counts
            and not _CLOCK.search(text))  # "6:10am, EDT" is a time stamp


def _bare_name_anchors(infos: Sequence[_Info], lines: Sequence[Line],
                       marker_rows: set[int] | frozenset[int] = frozenset()) -> list[_Anchor]:
    """Anchors of a name alone on its line, followed by prose (threads with no dates).

    Only trusted under a comments heading (see `_is_thread`): an article's
    subheadings have the same shape. A short line above the name makes it one of a
    list, unless a removed line (`marker_rows`) stood between them.
    """
    anchors: list[_Anchor] = []
    sorted_rows = sorted(marker_rows)
    for i, info in enumerate(infos):
        if info.kind != TEXT or not _is_bare_name(lines[i].stripped):
            continue
        below = _next_nonblank(infos, i, 1)
        above = _next_nonblank(infos, i, -1)
        if below is None or infos[below].kind != TEXT or not _is_prose(lines[below].stripped):
            continue
        if (above is not None and infos[above].kind == TEXT and _is_bare_name(lines[above].stripped)
                and not _any_in(sorted_rows, above + 1, i)):
            continue  # one of a list of short lines, or a sign-off above a name
        anchors.append(_Anchor(i, i, (i,), i + 1, lines[i].stripped, None, None))
    return anchors


def _with_unlinked_names(anchors: list[_Anchor], infos: Sequence[_Info], lines: Sequence[Line],
                         marker_rows: set[int]) -> list[_Anchor]:
    """Header anchors plus the bare names of the same thread, when the headers carry no date.

    Where a header is only a name (Disqus shows "http://twitter.com/x Name" for a commenter
    with a profile), a commenter without one shows as the name alone: bare names between
    the headers open comments too, and so do those just above the first header when the
    run of names and prose above it starts right below a non-prose line or a removed one.
    """
    if len(anchors) < 2 or sum(1 for a in anchors if a.posted) * 2 >= len(anchors):
        return anchors
    bare = [a for a in _bare_name_anchors(infos, lines, marker_rows) if not _is_prose(lines[a.line].stripped)]
    if not bare:
        return anchors
    taken = {j for a in anchors for j in range(a.first, a.body_from)}
    inside = [a for a in bare if anchors[0].line < a.line < anchors[-1].line and a.line not in taken]
    names = {a.line: a for a in bare}
    # `below` is the non-blank line under j: a removed line between them is read there.
    j, below, seen, run, framed = anchors[0].first - 1, anchors[0].first, 0, [], False
    while j >= 0 and seen < MAX_GAP:
        kind = infos[j].kind
        if kind == BLANK:
            j -= 1
            continue
        if below in marker_rows or kind != TEXT or (j not in names and not _is_prose(lines[j].stripped)):
            framed = True  # the run starts below this line
            break
        if j in names:
            run.append(names[j])
        below, seen, j = j, seen + 1, j - 1
    # The run must start right below a frame, with a name (else article prose, or the
    # page's title at its top, runs into it).
    top = j + 1
    while top < len(infos) and infos[top].kind == BLANK:
        top += 1
    above = run if framed and run and run[-1].line == top else []
    return sorted([*anchors, *inside, *above], key=lambda a: a.line)


def _signature_anchors(infos: Sequence[_Info]) -> list[_Anchor]:
    """Anchors of signature lines, each with the reply links right below it."""
    anchors: list[_Anchor] = []
    for i in [i for i, info in enumerate(infos) if info.kind == SIGNATURE]:
        info = infos[i]
        header = [i]
        below = _next_nonblank(infos, i, 1)
        while below is not None and infos[below].kind == REPLY:
            header.append(below)
            below = _next_nonblank(infos, below, 1)
        anchors.append(_Anchor(i, i, tuple(header), header[-1] + 1, info.author, info.number, info.posted))
    return anchors


def _clusters(anchors: Sequence[_Anchor], infos: Sequence[_Info], lines: Sequence[Line],
              heading_rows: Sequence[int] = ()) -> list[list[_Anchor]]:
    """Split anchors where a long gap, a heading (or a removed one: `heading_rows`, sorted
    marker positions) or a section end lies between them.

    The gap counts the lines that are not prose: a comment's body may run on for pages,
    while what lies between two threads (menus, headline lists, feeds) is short lines.
    """
    clusters: list[list[_Anchor]] = []
    for anchor in anchors:
        if clusters:
            previous = clusters[-1][-1]
            # One pass over the lines between: it stops at a heading or section end, or
            # past MAX_GAP non-blank lines that are not prose. Prose is only looked for in a
            # gap longer than MAX_GAP lines (rare): the lines seen so far are counted again.
            gap, long_gap = 0, False
            for j in range(previous.line + 1, anchor.first):
                kind = infos[j].kind
                if kind != BLANK:
                    if kind == HEADING or kind == END:
                        break
                    if long_gap and kind == TEXT and _is_prose(lines[j].stripped):
                        continue
                    gap += 1
                    if gap > MAX_GAP and not long_gap:
                        gap, long_gap = _non_prose_lines(range(previous.line + 1, j + 1), infos, lines), True
                    if gap > MAX_GAP:
                        break
            else:
                if not _any_in(heading_rows, previous.line + 1, anchor.first):
                    clusters[-1].append(anchor)
                    continue
        clusters.append([anchor])
    return clusters


def _non_prose_lines(rows: range, infos: Sequence[_Info], lines: Sequence[Line]) -> int:
    """How many lines of `rows` are neither blank nor prose text."""
    return sum(1 for j in rows if infos[j].kind != BLANK
               and not (infos[j].kind == TEXT and _is_prose(lines[j].stripped)))


def _any_in(positions: Sequence[int], low: int, high: int) -> bool:
    """Whether a sorted position lies in [low, high]."""
    i = bisect.bisect_left(positions, low)
    return i < len(positions) and positions[i] <= high


def _nonblank_above(infos: Sequence[_Info], row: int, count: int) -> int:
    """The `count`-th non-blank line above `row` (or line 0 when fewer lie above)."""
    j = row
    while count and j > 0:
        j -= 1
        count -= infos[j].kind != BLANK
    return j


def _after_opening(row: int, infos: Sequence[_Info]) -> int:
    """The non-blank line after the first OPENING_LINES text lines from `row` (or the next
    frame line)."""
    seen = 0
    while row < len(infos) and (seen < OPENING_LINES or infos[row].kind == BLANK):
        kind = infos[row].kind
        if kind not in (BLANK, TEXT):
            break
        seen += kind == TEXT
        row += 1
    return row


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


def _under_trackbacks(first: int, infos: Sequence[_Info], marks: _Marks) -> bool:
    """Whether the nearest heading above line `first` (within HEADING_WINDOW lines) heads
    trackbacks or pingbacks, which link other sites' posts: no reader comments."""
    i, seen = first, 0
    while i >= 0 and seen <= HEADING_WINDOW:
        if i in marks.trackbacks:
            return True
        if marks.reasons.get(i) in _SECTION_MARKER_REASONS:
            return False
        i -= 1
        if i < 0:
            break
        if infos[i].kind != BLANK:
            if marks.trackback_line(i):
                return True
            if infos[i].kind == HEADING:
                return False
            seen += 1
    return False


def _heading_before(first: int, infos: Sequence[_Info], marks: _Marks) -> bool:
    """Whether a comments heading (or a removed one) sits just above line `first`."""
    i, seen = first, 0
    while i >= 0 and seen <= HEADING_WINDOW:
        if i in marks.sections:
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
                           marks: _Marks) -> bool:
    """Whether a heading counting one or more comments ("19 Responses",
    "{ 131 comments }") is directly above line `first`, widgets aside; a
    removed heading (marker) counts too, if its text counts comments (when the
    text is known). Sidebars have bare "Comments" tabs."""
    j = first
    while j >= 0:
        if j in marks.sections and (marks.counted is None or marks.sections[j]):
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
            # The first body has no line above it to stop at: its nearest few non-blank lines.
            low = cluster[k - 1].header[-1] + 1 if k else _nonblank_above(infos, anchor.line, OPENING_LINES)
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


def _is_excerpt_list(cluster: Sequence[_Anchor], infos: Sequence[_Info], lines: Sequence[Line]) -> bool:
    """Whether every comment of a header cluster is an excerpt, not a comment as written: a
    pingback's quote ("[...] text [...]"), or, with two comments or more, one line cut off with
    an ellipsis (a "recent comments" widget: name, date, the first words). Readers end a comment
    so now and then, not every one; a lone comment cut off may be the reader's own "...".
    """
    if infos[cluster[0].line].kind == SIGNATURE:
        return False
    for k, anchor in enumerate(cluster):
        end = cluster[k + 1].first if k + 1 < len(cluster) else len(infos)
        row = _next_nonblank(infos, anchor.body_from - 1, 1)
        if row is None or row >= end or infos[row].kind != TEXT:
            return False
        text = lines[row].stripped
        if _EXCERPT.match(text):
            continue
        if len(cluster) < 2 or not _CUT_OFF.search(text):
            return False
        if k + 1 < len(cluster) and (after := _next_nonblank(infos, row, 1)) is not None and after < end:
            return False  # more than one line: a comment with its own ellipsis
    return True


def _is_dated_list(cluster: Sequence[_Anchor], infos: Sequence[_Info]) -> bool:
    """Whether a header cluster's lines hold at least one item per anchor of the shape "date /
    one line / date": a feed of headlines each with its date ("2 hours ago"), of which only the
    few short enough to pass for names made anchors. In a thread a name line and a body lie
    between two stamps, and a body holds no date line but a footer, whatever the site. The
    lines are read from the first anchor on, while they are text and date lines, up to MAX_GAP
    of them past the last anchor.
    """
    if infos[cluster[0].line].kind == SIGNATURE:
        return False
    items, past = 0, 0
    before, previous = BLANK, BLANK  # the kinds of the two non-blank lines above this one
    for j in range(cluster[0].first, len(infos)):
        kind = infos[j].kind
        if kind == BLANK:
            continue
        if j >= cluster[-1].body_from:
            past += 1
            if past > MAX_GAP or kind not in (TEXT, DATE):
                break
        if kind == DATE and previous == TEXT and before == DATE:
            items += 1
        before, previous = previous, kind
    return items >= len(cluster)


def _is_thread(cluster: Sequence[_Anchor], infos: Sequence[_Info], lines: Sequence[Line],
               marks: _Marks, threaded: bool, bare: bool) -> bool:
    """Whether a cluster is a comment thread: framed as one (`_framed_as_thread`), and not a
    widget's list of excerpts or of dated headlines that is framed alike."""
    return (_framed_as_thread(cluster, infos, lines, marks, threaded, bare)
            and not _is_excerpt_list(cluster, infos, lines) and not _is_dated_list(cluster, infos))


def _framed_as_thread(cluster: Sequence[_Anchor], infos: Sequence[_Info], lines: Sequence[Line],
                      marks: _Marks, threaded: bool, bare: bool) -> bool:
    """Evidence that a cluster is a comment thread, not article lines that look alike."""
    top = _cluster_top(cluster, infos)
    # The first body of a signature format starts after the article's last frame line or
    # removed line; a heading there ("Comments (3)", removed) opens the thread.
    start = _first_body_start(cluster[0], infos, marks.rows, MAX_GAP) \
        if infos[cluster[0].line].kind == SIGNATURE else top
    if _under_trackbacks(start, infos, marks):
        return False
    heading = _heading_before(top, infos, marks) or _heading_before(start, infos, marks)
    if bare:
        # Bare names: only a heading right above tells them from subheadings. One that counts
        # comments is enough; a bare "Comments" heading or a comment form (sites show them over
        # any widget) only with a name coming back, as commenters answer each other.
        return (len(cluster) >= 2 and _mostly_prose(cluster, infos, lines)
                and (_counted_heading_above(cluster[0].first, infos, lines, marks)
                     or (_heading_before(cluster[0].first, infos, marks) and _author_returns(cluster)
                         and _prose_before_names(cluster, infos, lines))))
    # Under a comments heading short bodies ("Thanko") are fine; elsewhere
    # the bodies must read as prose to tell comments from dated link lists.
    if not heading and not _mostly_prose(cluster, infos, lines):
        return False
    count = len(cluster)
    if threaded and count >= 2:
        return True
    dated = any(a.posted for a in cluster)
    if count >= MIN_PLAIN_ANCHORS and not dated:
        return True  # a long run of "Name says" headers
    if count >= 2 and not dated and _author_returns(cluster):
        return True  # undated headers where someone answers back: a conversation
    # Comment stamps carry a clock time; lists of dated headlines do not.
    timed = any(_CLOCK.search(a.posted or "") for a in cluster)
    if count >= 2 and (timed or heading):
        return True
    span = range(cluster[0].first, min(cluster[-1].body_from + 1, len(infos)))
    # A reply link in the headers, or one shown or removed by the boilerplate stage just under
    # the last comment's opening lines (where a lone comment shows its "Reply"); a permalink
    # there is no sign, as articles show them too, nor is one removed just above the first
    # header (the "Reply" of whatever comes before: a thread above a sidebar feed).
    reach = _after_opening(cluster[-1].body_from, infos)
    replies = (any(infos[j].kind == REPLY for j in span)
               or (reach < len(infos) and infos[reach].kind == REPLY
                   and lines[reach].stripped.casefold() not in _PERMALINKS)
               or _any_in(marks.replies, cluster[0].first + 1, reach))
    if count >= 2:
        return replies
    # One comment: a heading above it, and a stamp with a clock time or an age
    # ("15 minutes ago"), a reply link, a signature, or a "Name says" header
    # (which carries no date).
    aged = _AGE.search(cluster[0].posted or "") is not None
    lone_frame = timed or aged or replies or not dated or infos[cluster[0].line].kind == SIGNATURE
    return (heading and lone_frame) or (replies and timed)


def _author_returns(cluster: Sequence[_Anchor]) -> bool:
    """Whether an author of a cluster's explicit headers comes back later in it."""
    seen: set[str] = set()
    for anchor in cluster:
        name = (anchor.author or "").casefold()
        if name in seen:
            return True
        if anchor.header:
            seen.add(name)
    return False


def _prose_before_names(cluster: Sequence[_Anchor], infos: Sequence[_Info], lines: Sequence[Line]) -> bool:
    """Whether every name after the first follows the end of a comment: prose, or a link
    (comments end with one). A feed shows a headline above each byline instead."""
    for anchor in cluster[1:]:
        above = _next_nonblank(infos, anchor.first, -1)
        if above is None or infos[above].kind != TEXT:
            return False
        text = lines[above].stripped
        if not (_is_prose(text) or _LINK.match(text)):
            return False
    return True


def _best_cluster(anchors: Sequence[_Anchor], infos: Sequence[_Info], lines: Sequence[Line],
                  marks: _Marks, threaded: bool = False, bare: bool = False) -> list[_Anchor]:
    """The largest cluster that passes `_is_thread` (the later one on ties)."""
    best: list[_Anchor] = []
    # Bare names need a counted heading right above the first: one in the middle starts the thread.
    for cluster in _clusters(anchors, infos, lines, marks.chrome_breaks if bare else marks.breaks):
        if len(cluster) >= len(best) and _is_thread(cluster, infos, lines, marks, threaded, bare):
            best = cluster
    return best


# --- turning a cluster into comments -----------------------------------------


class _Draft(NamedTuple):
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


def _ends_with_date(kinds: Sequence[str]) -> bool:
    """Whether the last non-blank line of a region (its lines' kinds) is a date line."""
    for kind in reversed(kinds):
        if kind != BLANK:
            return kind == DATE
    return False


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
    region_kinds = [[infos[j].kind for j in r] for r in regions]
    with_reply = sum(1 for kinds in region_kinds if REPLY in kinds)
    with_date = sum(1 for kinds in region_kinds if _ends_with_date(kinds))
    # A lone comment has no others to learn from: a reply link under it ends it.
    stop_after_reply = not regions or with_reply * 2 >= len(regions)
    footer_dates = bool(regions) and with_date * 2 >= len(regions)
    longest = max((kinds.count(TEXT) for kinds in region_kinds), default=0)
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
    for pattern, needs, ci_needs in pats.mention_needs:
        if needs and not _meets(needs, first_line):
            continue
        if ci_needs and (lower := folded(first_line)) and not _meets(ci_needs, lower):
            continue
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
        opening = lines[draft.body[0]].text.strip() if draft.body else ""  # (body rows are never blank)
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


def _body_lines(rows: Sequence[int], lines: Sequence[Line], infos: Sequence[_Info]) -> tuple[Line, ...]:
    """Body rows plus the blank lines between them (paragraph breaks), in order."""
    if not rows:
        return ()
    wanted = set(rows)
    return tuple(lines[j] for j in range(rows[0], rows[-1] + 1) if j in wanted or infos[j].kind == BLANK)


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
    markers: Sequence[tuple[int, str] | tuple[int, str, str]] = (),
    formats: CommentFormats | None = None,
    min_comments: int = 1,
) -> CommentSection | None:
    """Find the comment section of a page's lines and split it into comments.

    `markers` are `(line_index, reason)` or `(line_index, reason, text)` of
    lines the boilerplate stage removed just before `line_index`; they bound
    the section like the lines they stood for (with texts given, a removed
    comments heading opens a thread of bare names only if it counts comments
    or a name comes back, and a removed "Reply" is a reply link). `formats`
    defaults to the shipped ones.
    Returns None when no thread of at least `min_comments` comments is found.
    """
    pats = _compile(default_formats() if formats is None else formats)
    texts = [line.text.strip() for line in lines]
    known = pats.classified  # (_classify's cache, looked up here first: most lines were seen)
    infos = _signatures_as_headers(_reject_quoted_signatures([known.get(text) or _classify(text, pats)
                                                              for text in texts]))
    marks = _read_markers(markers, pats, texts)
    marker_rows = marks.rows

    header_anchors, threaded = _header_anchors(infos, lines)
    if not threaded:
        header_anchors = _with_unlinked_names(header_anchors, infos, lines, marks.rows)
    candidates = [
        (_best_cluster(header_anchors, infos, lines, marks, threaded), "header", threaded),
        (_best_cluster(_signature_anchors(infos), infos, lines, marks), "signature", False),
        (_best_cluster(_pair_anchors(infos, lines), infos, lines, marks), "header", False),
    ]
    # The frame kind that explains most comments wins; earlier kinds win ties.
    cluster, mode, threaded = max(candidates, key=lambda c: len(c[0]))
    if not cluster:
        # Last resort: names alone on their lines, under a heading; headers that carry no
        # date (a profile link and a name) are names of the same thread.
        names = {a.line: a for a in _bare_name_anchors(infos, lines, marker_rows)}
        names.update((a.line, a) for a in header_anchors if not a.posted and a.header)
        cluster = _best_cluster(sorted(names.values()), infos, lines, marks, bare=True)
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
            body=_body_lines(draft.body, lines, infos),
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
