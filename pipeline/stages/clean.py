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

import html
import html.entities
import re
import unicodedata
from collections.abc import Callable
from typing import Literal

import ftfy

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
    parts: list[str] = []
    if config.remove_artifacts:
        parts.append("(?P<scraper_artifact>" + "|".join(ARTIFACT_PATTERNS) + ")")
    if config.unescape_entities:
        parts.append(f"(?P<html_entity>{ENTITY})")
    return re.compile("|".join(parts)) if parts else None


def _space_pattern(config: Config) -> re.Pattern[str]:
    parts = [f"(?P<control_char>{CONTROL}+)"]
    parts.append(f"(?P<invisible_char>{INVISIBLE}+)")
    # Trailing whitespace first, so a run of spaces at the end of a line is one span.
    parts.append(rf"(?P<trailing_space>[ \t\u00a0]+(?=\n|\Z))")
    parts.append(f"(?P<odd_space>{ODD_SPACE})")
    if config.fold_spaces:
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


def fix_line_endings(text: str) -> list[Span]:
    return [
        Span(m.start(), m.end(), "line_ending", m.group(), "\n")
        for m in re.finditer(r"\r\n?", text)
    ]


def fix_mojibake(text: str) -> list[Span]:
    """One span per repaired line, trimmed to the part that changed."""
    spans: list[Span] = []
    for line in split_lines(text):
        fixed = ftfy.fix_text(line.text, FTFY_CONFIG)
        if fixed != line.text:
            spans.append(_changed_region(line.start, line.text, fixed, "mojibake"))
    return spans


def fix_markup(text: str, config: Config) -> list[Span]:
    """Entities and scraper artifacts."""
    pattern = _markup_pattern(config)
    return _token_spans(text, pattern) if pattern else []


def fix_spaces(text: str, config: Config) -> list[Span]:
    """Control and invisible characters, odd spaces, runs and trailing spaces."""
    return _token_spans(text, _space_pattern(config))


def _token_spans(text: str, pattern: re.Pattern[str]) -> list[Span]:
    spans: list[Span] = []
    for match in pattern.finditer(text):
        reason = match.lastgroup or ""
        replacement = _replacement(reason, match.group())
        if replacement is not None and replacement != match.group():
            spans.append(Span(match.start(), match.end(), reason, match.group(), replacement))
    return spans


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
