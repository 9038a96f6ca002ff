"""Clean: repair the text without changing what it says.

Passes, each recorded as spans over the previous pass's output:
1. line endings (CRLF and lone CR become LF),
2. mojibake (ftfy's encoding repair, per line, explained),
3. markup: HTML entities and scraper artifacts,
4. spaces: control and invisible characters, odd spaces, runs of spaces,
   trailing whitespace — one regex scan,
5. Unicode NFC.
Leading indentation is kept: comment threads use it for nesting.
"""

from __future__ import annotations

import functools
import html
import html.entities
import re
import re._parser as re_parser  # Python 3.11+: reads ftfy's badness regex (see _required_chars)
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any, Literal

import ftfy
from ftfy.badness import BADNESS_RE

from pipeline.document import Span, apply_spans, split_lines
from pipeline.stage import Outcome, Record, StageConfig

NAME = "clean"
REASONS = frozenset(
    {
        "line_ending",  # CRLF or CR turned into LF
        "mojibake",  # text decoded with the wrong encoding, repaired by ftfy
        "html_entity",  # &amp; &#8217; &nbsp; ... left by the scraper
        "scraper_artifact",  # e.g. Cloudflare's "[email protected]" placeholder
        "control_char",  # C0/C1 control characters other than tab and newline
        "invisible_char",  # zero-width characters and soft hyphens
        "odd_space",  # no-break and other Unicode spaces turned into a plain space
        "space_run",  # several spaces inside a line folded to one
        "trailing_space",  # whitespace at the end of a line
        "unicode_nfc",  # Unicode normalisation form C
    }
)

# Cloudflare replaces e-mail addresses with this text when a page is scraped.
ARTIFACT_PATTERNS = (r"\[email\s*(?:&#160;|\xa0| )?protected\]",)

FTFY_CONFIG = ftfy.TextFixerConfig(
    unescape_html=False,  # entities are our own pass, so they are recorded as such
    remove_terminal_escapes=True,
    fix_encoding=True,
    restore_byte_a0=True,
    replace_lossy_sequences=True,
    decode_inconsistent_utf8=True,
    fix_c1_controls=True,
    fix_latin_ligatures=False,  # ligatures are not errors
    fix_character_width=False,  # full-width forms are legitimate in CJK text
    uncurl_quotes=False,  # curly quotes are the author's
    fix_line_breaks=False,  # our own pass
    fix_surrogates=True,
    remove_control_chars=False,  # our own pass
    normalization=None,  # our own pass
    explain=False,
)


class Config(StageConfig):
    fix_mojibake: bool = True  # ftfy's encoding repair; off for pages known to be clean
    unescape_entities: bool = True
    remove_artifacts: bool = True
    fold_spaces: bool = True  # fold runs of inner spaces; leading indentation is kept
    normalize: Literal["NFC", "NFKC", "NFD", "NFKD", ""] = "NFC"  # "" keeps the text as it is


ENTITY = r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});"
CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"
INVISIBLE = r"[\u200b\u200c\u200d\u2060\ufeff\u00ad]"
ODD_SPACE = r"[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]"


def _markup_pattern(config: Config) -> re.Pattern[str] | None:
    return _markup_patterns(config.remove_artifacts, config.unescape_entities)[0]


@functools.lru_cache(maxsize=None)
def _markup_patterns(artifacts: bool, entities: bool) -> tuple[re.Pattern[str] | None, str | None]:
    """The markup pattern, and the characters its matches can start with ("&[";
    None when that cannot be shown)."""
    parts: list[str] = []
    if artifacts:
        parts.append("(?P<scraper_artifact>" + "|".join(ARTIFACT_PATTERNS) + ")")
    if entities:
        parts.append(f"(?P<html_entity>{ENTITY})")
    if not parts:
        return None, None
    pattern = re.compile("|".join(parts))
    return pattern, _first_chars(pattern) if _PARSER_AS_EXPECTED else None


def _space_pattern(config: Config) -> re.Pattern[str]:
    return _space_patterns(config.fold_spaces)


@functools.lru_cache(maxsize=None)
def _space_patterns(fold_spaces: bool) -> re.Pattern[str]:
    parts = [f"(?P<control_char>{CONTROL}+)"]
    parts.append(f"(?P<invisible_char>{INVISIBLE}+)")
    # Trailing whitespace first, so a run of spaces at the end of a line is one span.
    # Tried only where a run starts: from inside a run it can only fail, and scanning to the
    # run's end from every position made a deep indentation quadratic (1,200 spaces: seconds).
    parts.append(r"(?<![ \t\u00a0])(?P<trailing_space>[ \t\u00a0]+(?=\n|\Z))")
    parts.append(f"(?P<odd_space>{ODD_SPACE})")
    if fold_spaces:
        parts.append(r"(?<=\S)(?P<space_run>  +|\t+)(?=\S)")
    return re.compile("|".join(parts))


def _replacement(reason: str, match: str) -> str | None:
    """The replacement for one token; None when the token is fine as it is."""
    if reason == "html_entity":
        if not match.startswith("&#") and match[1:] not in html.entities.html5:
            return None  # "&notanentity;" is text, though html.unescape would read "&not"
        fixed = html.unescape(match)
        if re.fullmatch(ODD_SPACE, fixed):
            return " "
        return None if fixed == match else fixed
    if reason in ("odd_space", "space_run"):
        return " "
    return ""


# ftfy only ever changes a line (with FTFY_CONFIG) in these cases: its encoding repair
# when the line is not ASCII and ftfy.badness.is_bad() finds a mojibake sequence in it,
# C1 controls (fix_c1_controls), lone surrogates (fix_surrogates), and ANSI escapes
# (remove_terminal_escapes, which needs ESC). Every alternative of is_bad's regex needs at
# least one of a few hundred characters (derived from the regex itself by
# _required_chars), so a line with none of those characters, no C1 control, surrogate or
# ESC is returned by ftfy unchanged and is not handed to it: most pages have no such line.
_FTFY_STEPS_ON = ("fix_encoding", "fix_c1_controls", "fix_surrogates", "remove_terminal_escapes")
_FTFY_STEPS_OFF = ("unescape_html", "fix_latin_ligatures", "fix_character_width", "uncurl_quotes",
                   "fix_line_breaks", "remove_control_chars", "normalization")


def _set_chars(op: object, av: object) -> set[str] | None:
    """The characters one parsed regex item matches, or None when it is not a plain set."""
    if op is re_parser.LITERAL:
        return {chr(av)}  # type: ignore[arg-type]
    if op is re_parser.IN:
        chars: set[str] = set()
        for item_op, item in av:  # type: ignore[attr-defined]
            if item_op is re_parser.LITERAL:
                chars.add(chr(item))
            elif item_op is re_parser.RANGE:
                chars.update(map(chr, range(item[0], item[1] + 1)))
            else:
                return None  # NEGATE, CATEGORY (\w, \s): too wide to be a prefilter
        return chars
    return None


# Characters that clean text has often: a prefilter set avoids them when it can.
_FREQUENT = {**dict.fromkeys("’‘“”", 1000), **dict.fromkeys("\xa0\xad–—…•·©®™«»°é", 100)}
_REPEATS = (re_parser.MAX_REPEAT, re_parser.MIN_REPEAT, re_parser.POSSESSIVE_REPEAT)


def _cost(chars: set[str]) -> int:
    return sum(1_000_000 if c.isascii() else _FREQUENT.get(c, 1) for c in chars)


def _required_in(items: Any) -> set[str] | None:
    """A set of characters every match of the parsed sequence `items` holds one of (the
    cheapest such set found), or None when none can be shown."""
    options: list[set[str]] = []
    for op, av in items:
        if op is re_parser.SUBPATTERN:
            if av[1] & re.IGNORECASE:
                return None  # "(?i:...)": its letters match in either case
            chars = _required_in(av[-1])
        elif op is re_parser.BRANCH:
            alternatives = [_required_in(alt) for alt in av[1]]
            chars = None if any(a is None for a in alternatives) else set().union(*alternatives)
        elif op in _REPEATS:
            chars = _required_in(av[2]) if av[0] >= 1 else None
        else:
            chars = _set_chars(op, av)  # assertions, anchors, "." and the like need nothing
        if chars:
            options.append(chars)
    return min(options, key=_cost) if options else None


def _first_in(items: Any) -> set[str] | None:
    """The characters a match of the parsed sequence `items` can start with, or None
    when it is not shown to start with one character of a plain set."""
    if not items:
        return None
    op, av = items[0]
    if op is re_parser.SUBPATTERN:
        return None if av[1] & re.IGNORECASE else _first_in(av[-1])
    if op is re_parser.BRANCH:
        alternatives = [_first_in(alt) for alt in av[1]]
        return None if any(a is None for a in alternatives) else set().union(*alternatives)
    if op in _REPEATS:
        return _first_in(av[2]) if av[0] >= 1 else None
    return _set_chars(op, av)


def _first_chars(pattern: re.Pattern[str]) -> str | None:
    """The characters every match of `pattern` starts with, or None."""
    if pattern.flags & re.IGNORECASE:
        return None
    try:
        chars = _first_in(re_parser.parse(pattern.pattern, pattern.flags))
    except Exception:  # noqa: BLE001 - a private module: any surprise means no prefilter
        return None
    return "".join(sorted(chars)) if chars else None


def _required_chars(pattern: re.Pattern[str]) -> str | None:
    """A regex class of characters of which every match of `pattern` holds at least one,
    or None when that cannot be shown from the parsed pattern."""
    if pattern.flags & re.IGNORECASE:
        return None
    try:
        chars = _required_in(re_parser.parse(pattern.pattern, pattern.flags))
    except Exception:  # noqa: BLE001 - a private module: any surprise means no prefilter
        return None
    return None if chars is None else "[" + "".join(re.escape(c) for c in sorted(chars)) + "]"


def _parser_as_expected() -> bool:
    """Whether re's parser (a private module) still gives what _required_chars and
    _first_chars read: checked on samples worked out by hand. If not, they are not used."""
    try:
        return (_required_in(re_parser.parse("a[\xe9\xe8]|(?:b|\xe0)\u20ac", 0)) == {"\xe9", "\xe8", "\u20ac"}
                and _first_in(re_parser.parse(r"(?P<x>&#?\w+;)|\[e", 0)) == {"&", "["}
                and _first_in(re_parser.parse(r"x?y", 0)) is None)
    except Exception:  # noqa: BLE001
        return False


_PARSER_AS_EXPECTED = _parser_as_expected()


def _mojibake_trigger() -> re.Pattern[str] | None:
    """A character class every line ftfy would change contains; None: call ftfy on every line."""
    if ftfy.__version__ != "6.3.1" or not _PARSER_AS_EXPECTED:  # the analysis above is of this version's fix_text
        return None
    if not all(getattr(FTFY_CONFIG, name) for name in _FTFY_STEPS_ON[1:]) or any(
        getattr(FTFY_CONFIG, name) for name in _FTFY_STEPS_OFF
    ):
        return None
    bad = _required_chars(BADNESS_RE) if FTFY_CONFIG.fix_encoding else "[\\x80-\\x9f]"
    if bad is None:
        return None
    return re.compile(f"{bad}|[\\x1b\\x80-\\x9f\\ud800-\\udfff]")


_MOJIBAKE_TRIGGER = _mojibake_trigger()
_LINE_ENDING = re.compile(r"\r\n?")


def fix_line_endings(text: str) -> list[Span]:
    if "\r" not in text:
        return []
    return [
        Span(m.start(), m.end(), "line_ending", m.group(), "\n")
        for m in _LINE_ENDING.finditer(text)
    ]


def fix_mojibake(text: str) -> list[Span]:
    """One span per repaired line, trimmed to the part that changed."""
    spans: list[Span] = []
    if _MOJIBAKE_TRIGGER is None:
        for line in split_lines(text):
            fixed = ftfy.fix_text(line.text, FTFY_CONFIG)
            if fixed != line.text:
                spans.append(_changed_region(line.start, line.text, fixed, "mojibake"))
        return spans
    # Only the lines holding a trigger character can change.
    found = _MOJIBAKE_TRIGGER.search(text)
    while found is not None:
        start = text.rfind("\n", 0, found.start()) + 1
        end = text.find("\n", found.end())
        if end == -1:
            end = len(text)
        line = text[start:end]
        fixed = ftfy.fix_text(line, FTFY_CONFIG)
        if fixed != line:
            spans.append(_changed_region(start, line, fixed, "mojibake"))
        found = _MOJIBAKE_TRIGGER.search(text, end + 1)
    return spans


def fix_markup(text: str, config: Config) -> list[Span]:
    """Entities and scraper artifacts."""
    pattern, starts = _markup_patterns(config.remove_artifacts, config.unescape_entities)
    if pattern is None:
        return []
    if starts is None:
        return _token_spans(text, pattern)
    return _token_spans_at(text, pattern, _positions(text, starts))  # "&" or "[" starts every token


# A character that starts a control, invisible or odd-space token, or a tab: with none of
# these, only runs of plain spaces can match the space pattern ("  " inside a line, or
# spaces before a newline or at the end of the text).
_SPACE_TRIGGER = re.compile(f"[\\t{CONTROL[1:-1]}{INVISIBLE[1:-1]}{ODD_SPACE[1:-1]}]")
# Where a space token can start: at one of those characters, or at a space that more spaces
# (taken as one run: a token starts at most at its first), a tab, a no-break space, a newline
# or the end of the text follow; a lone space between words starts none. The space pattern
# tried at every character cost 0.45 s CPU per 5 MB bench corpus, tried only here 0.06 s.
_SPACE_STARTS = re.compile(f"[ {_SPACE_TRIGGER.pattern[1:-1]}](?:(?<=[^ ])| +|(?=[\\t\\xa0\\n]|\\Z))")


def fix_spaces(text: str, config: Config) -> list[Span]:
    """Control and invisible characters, odd spaces, runs and trailing spaces."""
    if not ("  " in text or " \n" in text or text.endswith(" ") or _SPACE_TRIGGER.search(text)):
        return []
    starts = (found.start() for found in _SPACE_STARTS.finditer(text))
    return _token_spans_at(text, _space_pattern(config), starts)


def _token_spans(text: str, pattern: re.Pattern[str]) -> list[Span]:
    spans: list[Span] = []
    for match in pattern.finditer(text):
        spans.extend(_token_span(match))
    return spans


def _token_spans_at(text: str, pattern: re.Pattern[str], starts: Iterable[int]) -> list[Span]:
    """`_token_spans`, trying the pattern only at `starts`, in order, where tokens can start:
    the same tokens as pattern.finditer (leftmost first, the next one after its end), as
    lookbehinds see the text before the position `match` is given."""
    spans: list[Span] = []
    end = 0
    for start in starts:
        if start < end:
            continue
        match = pattern.match(text, start)
        if match is None:
            continue
        end = match.end()
        spans.extend(_token_span(match))
    return spans


def _positions(text: str, chars: str) -> list[int]:
    """Where any of `chars` is in `text`, in order. str.find skips to them at memory speed;
    a regex class scan took 9 ns a character (80 ms of the 8.8 MB dragnet dev set)."""
    found: list[int] = []
    for char in chars:
        at = text.find(char)
        while at != -1:
            found.append(at)
            at = text.find(char, at + 1)
    return sorted(found)


def _token_span(match: re.Match[str]) -> list[Span]:
    """The span of one token, or none when the token is fine as it is."""
    reason = match.lastgroup or ""
    replacement = _replacement(reason, match.group())
    if replacement is not None and replacement != match.group():
        return [Span(match.start(), match.end(), reason, match.group(), replacement)]
    return []


def normalize_unicode(text: str, form: str) -> list[Span]:
    if not form or unicodedata.is_normalized(form, text):  # type: ignore[arg-type]
        return []
    spans: list[Span] = []
    for line in split_lines(text):
        fixed = unicodedata.normalize(form, line.text)  # type: ignore[arg-type]
        if fixed != line.text:
            spans.append(_changed_region(line.start, line.text, fixed, "unicode_nfc"))
    return spans


def _changed_region(offset: int, old: str, new: str, reason: str) -> Span:
    """The smallest span turning `old` into `new`: common prefix and suffix trimmed."""
    prefix = 0
    limit = min(len(old), len(new))
    while prefix < limit and old[prefix] == new[prefix]:
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and old[-1 - suffix] == new[-1 - suffix]:
        suffix += 1
    return Span(offset + prefix, offset + len(old) - suffix, reason,
                old[prefix:len(old) - suffix], new[prefix:len(new) - suffix])


def process(record: Record, config: Config) -> Outcome:
    passes: list[Callable[[str], list[Span]]] = [fix_line_endings]
    if config.fix_mojibake:
        passes.append(fix_mojibake)
    passes.append(lambda text: fix_markup(text, config))
    passes.append(lambda text: fix_spaces(text, config))
    passes.append(lambda text: normalize_unicode(text, config.normalize))
    text = record["text"]
    recorded: list[list[Span]] = []
    for find in passes:
        spans = find(text)
        if spans:
            recorded.append(spans)
            text = apply_spans(text, spans)
    return Outcome(records=[{**record, "text": text}], passes=recorded)
