"""Split the head and tail of one article segment from its body: title, dek, bylines, dates, bio.

The segment is one article's lines after boilerplate and comments were removed. The
head is what comes before the first body paragraph; explicit byline and dateline
patterns decide first, then the title is the title-like line right above a byline, else
the first title-like line (lines above it are site header; a date ending its line goes to
the date) and a phrase right after it is the dek. At the end, a "Posted by ..."
byline and an author bio are recognised. Anything not recognised stays in the body: a
paragraph-long line is only taken out when a byline or dateline below it proves it is
a dek, when it is an author bio, or when it is a site blurb right above the title. A
paragraph at the very top with no byline or dateline above it does not end the head
when one follows it closely ("blurb / title / date / By X / body", "dek / By X / body").
"""

from __future__ import annotations

import bisect
import functools
import itertools
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pipeline.document import Line
from pipeline.extract.bylines import CONFIG as BYLINE_CONFIG
from pipeline.extract.bylines import Byline, BylineConfig, looks_like_name, parse_byline
from pipeline.extract.comments import literal_needs
from pipeline.extract.dates import (
    WEEKDAYS,
    WRAPPING_CHARS,
    find_date,
    find_date_at_start,
    folded,
    parse_date,
    strip_weekday,
)
from pipeline.io import load_yaml
from pipeline.patterns import compile_pattern

# The shipped site-widget patterns; find_site takes others as an argument.
SITES_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "metadata" / "sites.yaml"

# A body paragraph: at least this many words and sentence-final punctuation. Titles of
# 12+ words exist (seed 003's has 12) but they do not end in a period.
BODY_MIN_WORDS = 12
# Only this many non-blank lines are searched for the first body paragraph; a head is short.
HEAD_MAX_LINES = 12
# A long first paragraph followed within this many lines by a byline or dateline is a dek.
# Stubs of at most STUB_MAX_WORDS words between them ("Published", "on", a site name left
# from a widget) do not count, up to DEK_MAX_STUBS of them.
DEK_LOOKAHEAD = 3
STUB_MAX_WORDS = 2
DEK_MAX_STUBS = 4
# A dek is written as a sentence: more than this share of its words (after the first) in lower
# case; a headline in title case keeps at most its short function words in lower case.
DEK_LOWER_SHARE = 0.5
# A title has a few words at least ("Latest" or "World" are section labels) ...
TITLE_MIN_WORDS = 3
# ... and is not a paragraph.
TITLE_MAX_WORDS = 40
# Of several title-like lines in the head, the first stands unless the body does not talk
# about it (under TITLE_FOREIGN_OVERLAP of its content words in the body: "Moon of Alabama
# Brecht quote", a site header, shares none); then the title is the next line that shares at
# least TITLE_MIN_BODY_OVERLAP. Content words have TITLE_WORD_MIN_CHARS letters or more; the
# body is read for TITLE_BODY_WORDS words. On dragnet-train the rule changes the title of
# 10 of 965 pages (8 better; 2 worse: a photo caption, an "About the author" label).
TITLE_FOREIGN_OVERLAP = 0.1
TITLE_MIN_BODY_OVERLAP = 0.25
TITLE_WORD_MIN_CHARS = 4
TITLE_BODY_WORDS = 400
# An all-capitals line this short is a section label ("HEALTH INDUSTRY"), not a headline.
LABEL_MAX_WORDS = 4
# Separators of menus and metadata rows ("Home | World", "Nov 12 · 0 comments").
LABEL_SEPARATORS = ("|", " · ", " • ")
# A dek is a phrase or sentence, not a label ("Share", "Photo: AP").
SUBTITLE_MIN_WORDS = 5
# A subtitle is never longer than a short paragraph.
SUBTITLE_MAX_WORDS = 60
# A dateline is a date with a few label words ("Updated", "Published on", "| 3 comments").
DATELINE_MAX_EXTRA_WORDS = 4
# The most words a date of pipeline/extract/dates.py spans, counted as runs of letters and
# digits: "Tuesday 12th of December 2016 at 14:18:00 p. m. UTC+05:30" has 14 (weekday, day,
# "of", month, year, "at", hours, minutes, seconds, "p", "m", zone, offset hours and minutes);
# a little more for safety. Taking a date out of a line leaves at least its words less this
# many, so a line of DATELINE_MAX_EXTRA_WORDS + MAX_DATE_WORDS + 1 words (a paragraph) is no
# dateline: it is not searched for dates.
MAX_DATE_WORDS = 16
# The tail byline and the bio are among the last few lines of the segment.
TAIL_WINDOW = 3
# Below them, up to TAIL_MAX_STUBS short widget lines of at most TAIL_STUB_MAX_WORDS words, or
# label rows, may be left ("Permalink", "Trackback Pings", "digg this | reddit"): passed over.
TAIL_MAX_STUBS = 4
TAIL_STUB_MAX_WORDS = 3
# What separates a date below the article from a widget after it ("05 Nov 2012 / tweet this").
TAIL_DATE_SEPARATORS = "|-–—/·•"
# A bio says something about the author: "X is a journalist." has five words.
BIO_MIN_WORDS = 5

# What may stand between a title and the date that ends its line ("Harbour reopens | 6 March
# 2018", "Harbour reopens (6 March 2018)"); not periods, which a teaser title ends with.
TITLE_DATE_SEPARATORS = " \t,;|-–—·•(["
# Characters that may follow the sentence-final mark ("... said.”", "(see map).)").
CLOSING_CHARS = "\"'”’»)]*"
SENTENCE_END = ".!?:…"
# Punctuation around a word (quotes, brackets) that does not make it another word.
_WORD_EDGES = "\"'“”‘’«»()[]¿¡.,;:!?…"
# A line starting with a dash attributes a quote ("— W. H. Auden").
ATTRIBUTION_DASHES = "-–—~"
# Arrows that point a link to the previous or next post ("« Older post", "Newer post ›").
NAV_OPENERS = ("«", "‹", "<<", "←")
NAV_CLOSERS = ("»", "›", ">>", "→")
ROLE_TITLE = "title"
ROLE_SUBTITLE = "subtitle"
ROLE_BYLINE = "byline"
ROLE_DATELINE = "dateline"
ROLE_SITE_HEADER = "site_header"
ROLE_BIO = "bio"

_WORD = re.compile(r"[^\W_]+(?:['’.\-][^\W_]+)*")
_LETTER_WORD = re.compile(r"(?<![\w])[^\W\d_][\w'’.\-]*")
_URL = re.compile(r"https?:|www\.|\.(?:com|org|net|html?)\b", re.IGNORECASE)
# After the author's name, a bio goes on with a verb or an apposition.
_BIO_CONTINUATION = re.compile(
    r"^(?:,|\s+(?:is|was|has|had|writes|wrote|teaches|lives|works|covers|est|a|était|vit|enseigne)\b)"
)
_GENERIC_BIO = re.compile(
    r"^(?P<name>[^\W\d_][\w'’.\-]*(?:\s+[^\W\d_][\w'’.\-]*){1,3}),?\s+(?:is|was|est)\s+"
    r"(?:a|an|the|un|une|le|la)\s"
)


@dataclass(frozen=True)
class ArticleParts:
    """What the head and tail of one article segment say, and which lines leave the body."""

    title: Line | None
    subtitle: Line | None
    authors: tuple[str, ...]
    published: str | None
    via: str | None
    roles: dict[int, str] = field(default_factory=dict)
    body_start: int | None = None
    body_end: int | None = None


@functools.lru_cache(maxsize=8192)
def word_count(text: str) -> int:
    return len(_WORD.findall(text))


def _ends_sentence(text: str) -> bool:
    stripped = text.rstrip().rstrip(CLOSING_CHARS)
    return bool(stripped) and stripped[-1] in SENTENCE_END


@functools.lru_cache(maxsize=4096)
def is_dateline(text: str) -> bool:
    """A line that is a date, possibly with a label or a widget ("Updated July 23, 2012").
    Kept per text: the head is read several times over."""
    if _has_words(text, DATELINE_MAX_EXTRA_WORDS + MAX_DATE_WORDS + 1):
        return False  # see MAX_DATE_WORDS
    if parse_date(text) is not None:
        return True
    found = find_date(text)
    if found is None:
        return False
    _, start, end = found
    if word_count(text[:start] + " " + text[end:]) > DATELINE_MAX_EXTRA_WORDS:
        return False
    # "On July 23, 2012 it rained." is a sentence; "Updated July 23, 2012." is not.
    after = text[end:]
    return word_count(after) == 0 or not _ends_sentence(after)


# A paragraph's words are counted in its first this many characters (up to a space) first:
# that is enough to tell most paragraphs have BODY_MIN_WORDS words.
_PREFIX_CHARS = 200


def _has_words(text: str, at_least: int) -> bool:
    """word_count(text) >= at_least, without reading all of a long paragraph when its
    opening has that many words already (no word holds a space)."""
    cut = text.find(" ", _PREFIX_CHARS)
    if cut != -1 and len(_WORD.findall(text, 0, cut)) >= at_least:
        return True
    return word_count(text) >= at_least


def _is_prose(line: Line, config: BylineConfig) -> bool:
    text = line.stripped
    return (
        _ends_sentence(text)  # (the cheapest test first; all are pure)
        and _has_words(text, BODY_MIN_WORDS)
        and parse_byline(text, config=config) is None
        and not is_dateline(text)
    )


def _is_marker(line: Line, config: BylineConfig) -> bool:
    """An explicit byline or a dateline: what proves that the lines around it are a head."""
    return parse_byline(line.stripped, config=config) is not None or is_dateline(line.stripped)


def _head_end(content: Sequence[Line], config: BylineConfig) -> tuple[int, int | None]:
    """Position in `content` of the first body paragraph, and of a long dek before it (if any)."""
    window = min(len(content), HEAD_MAX_LINES)
    for i in range(window):
        if not _is_prose(content[i], config):
            continue
        # "title / long dek / By X / body": the dek is head, not body. Only right under a
        # title-like line, or with no byline or dateline above yet ("site blurb / title /
        # date / By X / body", "dek / By X / body"): a blog's first paragraph under its
        # byline stays body, even with a "Via X" below it.
        dek_shaped = i > 0 and _is_title_like(content[i - 1].stripped) and not _is_marker(content[i - 1], config)
        if dek_shaped or not any(_is_marker(content[k], config) for k in range(i)):
            end = _marker_end(content, i, config)
            following = None if end is None else next(
                (j for j in range(end, min(len(content), end + DEK_LOOKAHEAD)) if _is_prose(content[j], config)), None
            )
            # The body must go on below the byline; a blog post's footer byline proves nothing.
            if following is not None:
                return following, (i if dek_shaped else None)
        return i, None
    # No paragraph near the top: keep only what a byline or dateline vouches for.
    markers = [i for i in range(window) if _is_marker(content[i], config)]
    return (markers[-1] + 1 if markers else 0), None


def _marker_end(content: Sequence[Line], i: int, config: BylineConfig) -> int | None:
    """Just past the bylines and datelines ("By X" then "Nov 13, 2012 11:55 AM") that start
    within DEK_LOOKAHEAD lines after line i (stubs aside), with no prose between."""
    counted = stubs = 0
    for j in range(i + 1, len(content)):
        if _is_marker(content[j], config):
            while j + 1 < len(content) and _is_marker(content[j + 1], config):
                j += 1
            return j + 1
        if _is_prose(content[j], config):
            return None
        if word_count(content[j].stripped) <= STUB_MAX_WORDS and stubs < DEK_MAX_STUBS:
            stubs += 1
            continue
        counted += 1
        if counted >= DEK_LOOKAHEAD:
            return None
    return None


def _is_title_like(text: str, min_words: int = TITLE_MIN_WORDS) -> bool:
    words = word_count(text)
    if not min_words <= words <= TITLE_MAX_WORDS:
        return False
    # Words, not numbers: "7:29pm, EDT" or "24 Jul 2012" are not headlines.
    if len(_LETTER_WORD.findall(text)) < min_words:
        return False
    if text.lstrip()[:1] in ATTRIBUTION_DASHES:
        return False  # "–W. H. Auden": a quote's attribution
    stripped = text.rstrip().rstrip(CLOSING_CHARS)
    # "..." may end a teaser title; a single period or a colon ends a sentence or a label.
    if stripped.endswith((".", ":", ";", ",")) and not stripped.endswith("..."):
        return False
    return not (_URL.search(text) or text.lstrip().startswith(("©", "(c)", "|")))


def _content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.casefold()) if len(w) >= TITLE_WORD_MIN_CHARS]


# A long paragraph is read this many characters at a time (then up to a space).
_WORDS_CHUNK = 2000


def _first_content_words(lines: Sequence[Line], limit: int) -> frozenset[str]:
    """The first `limit` content words of `lines`. A paragraph-long line is read a piece at
    a time, cut at a space (no word holds one), only until there are enough."""
    words: list[str] = []
    for line in lines:
        text = line.text
        start = 0
        while start < len(text):
            end = text.find(" ", start + _WORDS_CHUNK)
            end = len(text) if end == -1 else end
            words.extend(_content_words(text[start:end]))
            if len(words) >= limit:
                return frozenset(words[:limit])
            start = end
    return frozenset(words[:limit])


def _body_overlap(text: str, body_words: frozenset[str]) -> float:
    """Share of a line's content words that the start of the body uses too."""
    words = _content_words(text)
    return sum(w in body_words for w in words) / len(words) if words else 0.0


def _choose_title(head: Sequence[Line], markers: set[int], body: Sequence[Line] = (),
                  bylines: frozenset[int] = frozenset(), config: BylineConfig = BYLINE_CONFIG) -> Line | None:
    """The title-like line right above a byline, else the first title-like line of the head
    that the body talks about, skipping labels and lines in lower case; a short one only
    beside a marker.

    The first, not the longest: what follows a title is a dek or a photo caption, both
    often longer and without a final period (measured on dragnet-train, see the report
    of pipeline/eval/head_devset.py). A site header above the title ("Moon of Alabama
    Brecht quote") is title-like too, but its words are not the body's.
    """
    free = [l for l in head if l.index not in markers]
    candidates = [l for l in free if _is_title_like(l.stripped) and not _is_label(l.stripped)
                  and not _is_post_navigation(l.stripped) and not config.widget_phrase.match(l.stripped)]
    # A link row to the previous and next posts sits between a blog's header and its post:
    # a headline below it wins over the header's lines above it.
    navigation = [l.index for l in free if _is_post_navigation(l.stripped)]
    if navigation and any(l.index > navigation[0] for l in candidates):
        candidates = [l for l in candidates if l.index > navigation[0]]
    named = [l for l in candidates if not looks_like_name(l.stripped)]
    # A short title can look like a name ("Syrian Army Advances"): accept it as a last resort.
    pool = named or candidates
    # Headlines start with a capital or a number; a line in lower case is a site's tagline
    # or its tags ("tips and news for bloggers", "election 2012 obama"), unless no other is.
    pool = [l for l in pool if not _starts_lower_case(l.stripped)] or pool
    # Headlines stand right above their byline: that line wins over title-like lines higher
    # up (a site's name or tagline, a widget, the previous post's link), unless it reads as
    # the dek of the first one, right under it ("headline / dek / By X"). On dragnet-train it
    # changes the main article's title on 71 pages: chosen titles among the first three gold
    # lines 572 -> 626 (59 gained, 5 lost); the dek test keeps 4 deks off the title and
    # loses 5 headlines under a widget line.
    if bylines and len(pool) > 1:
        following = {head[k].index: head[k + 1].index for k in range(len(head) - 1)}
        above = next((l for l in pool if following.get(l.index) in bylines), None)
        if above is not None and above is not pool[0] and not (
            following[pool[0].index] == above.index and _reads_as_dek(above.stripped, pool[0].stripped)
        ):
            pool = [above]
    if len(pool) > 1 and body:
        body_words = _first_content_words(body, TITLE_BODY_WORDS)
        if _body_overlap(pool[0].stripped, body_words) < TITLE_FOREIGN_OVERLAP:
            return next((l for l in pool[1:] if _body_overlap(l.stripped, body_words) >= TITLE_MIN_BODY_OVERLAP),
                        pool[0])
        return pool[0]
    if pool:
        return pool[0]
    # A one- or two-word title ("Catharsis", "Old School") is only trusted right next to a
    # byline or dateline; elsewhere such lines are section labels ("Latest", "World").
    for position, line in enumerate(head):
        if line.index in markers or not _is_title_like(line.stripped, min_words=1) or _is_label(line.stripped) \
                or _is_post_navigation(line.stripped) or config.widget_phrase.match(line.stripped):
            continue
        before = head[position - 1].index if position > 0 else None
        after = head[position + 1].index if position + 1 < len(head) else None
        if before in markers or after in markers:
            return line
    return None


def _is_post_navigation(text: str) -> bool:
    """A link to the previous or next post ("« Older post", "Next post ›", "« A | Main | B »"):
    an arrow at one end without its pair, or a row of links between a pair. A French
    quotation ("« Je ne regrette rien »") has the pair and no separator."""
    text = text.strip()
    opens, closes = text.startswith(NAV_OPENERS), text.endswith(NAV_CLOSERS)
    if opens and closes:
        return any(sep in text for sep in LABEL_SEPARATORS)
    if opens:
        return not any(c in text for c in NAV_CLOSERS)
    return closes and not any(c in text for c in NAV_OPENERS)


def _reads_as_dek(text: str, title: str) -> bool:
    """Longer than the title and in sentence case (most words after the first in lower case):
    the dek under a headline, not a headline."""
    if word_count(text) <= word_count(title):
        return False
    words = _LETTER_WORD.findall(text)[1:]
    return bool(words) and sum(w[0].islower() for w in words) > len(words) * DEK_LOWER_SHARE


def _starts_lower_case(text: str) -> bool:
    """Whether the first word is a word of letters in lower case ("tips and news", "“quoted");
    "iPhone", "x86", "2012's" and "«Le" are not."""
    first = text.split(None, 1)[0].strip(_WORD_EDGES) if text.strip() else ""
    return first.islower() and first.replace("'", "").replace("’", "").replace("-", "").isalpha()


def _byline_between(start: int, end: int, roles: dict[int, str]) -> bool:
    """Whether a byline lies between lines `start` and `end`.

    A paragraph above the title is the page's header (a site blurb) when nothing but
    widgets and datelines ("blurb / date / title / By X / body") lie between them. With a
    byline between them ("dek / By X / label / body") it is the article's dek, and the line
    taken for title is a label under the byline (headlines stand above bylines): the
    paragraph stays body.
    """
    return any(start < index < end and role == ROLE_BYLINE for index, role in roles.items())


def _is_subtitle_like(text: str, config: BylineConfig) -> bool:
    """A phrase or sentence that can stand under a title: not a name, label or metadata line."""
    return (
        SUBTITLE_MIN_WORDS <= word_count(text) <= SUBTITLE_MAX_WORDS
        and not looks_like_name(text, config)
        and not _is_label(text)
        and not config.meta_label.match(text)
        and find_date(text) is None
    )


def _is_label(text: str) -> bool:
    """A section or widget label rather than a headline: "FDA NEWS RELEASE", "Home | World"."""
    if any(sep in text for sep in LABEL_SEPARATORS):
        return True
    if word_count(text) > LABEL_MAX_WORDS:
        return False  # (before listing the letters: a long line has many)
    letters = [ch for ch in text if ch.isalpha()]
    return bool(letters) and all(ch.isupper() for ch in letters)


def _strip_honorific(text: str, config: BylineConfig) -> str:
    first, _, rest = text.partition(" ")
    return rest if first.rstrip(".").lower() in config.honorifics and rest else text


def _bio_name(text: str, authors: Sequence[str], config: BylineConfig) -> str | None:
    """The name an author bio starts with: a known author, or (with none known) 'X is a <role>'."""
    if not _has_words(text, BIO_MIN_WORDS):
        return None
    body = _strip_honorific(text.strip(), config)
    for author in authors:
        surname = author.split()[-1]
        for name in (author, surname) if len(author.split()) > 1 else (author,):
            if body.startswith(name) and _BIO_CONTINUATION.match(body[len(name):]):
                return author
    if authors:
        return None  # the last paragraph is about someone else
    m = _GENERIC_BIO.match(body)
    if m is None or not looks_like_name(m.group("name"), config):
        return None
    # Only a bio when it says what the person does ("journalist", "professor", "author").
    words = {w.lower() for w in _WORD.findall(body)}
    return m.group("name") if words & config.role_words else None


def _split_title_date(title: Line, config: BylineConfig) -> tuple[Line, str | None]:
    """A title line ending in its date ("Harbour reopens 6 March, 2018", "Harbour reopens
    Updated March 6, 2018"): the title without the date (and its label), and the date. Not
    when the date belongs to the headline's sentence ("Tide Tables For March 6, 2018"). (A
    line with few words besides a date is a dateline, never a title.)"""
    found = find_date(title.text)
    if found is None or title.text[found[2]:].strip(WRAPPING_CHARS):
        return title, None
    words = title.text[: found[1]].rstrip(TITLE_DATE_SEPARATORS)
    before, _, last = words.rpartition(" ")
    last = last.lower()
    if last in config.date_prepositions or last.rstrip(".,") in WEEKDAYS:
        return title, None  # "For March 6, 2018", "on Tuesday March 6, 2018"
    if config.date_label.fullmatch(last):
        words = before.rstrip(TITLE_DATE_SEPARATORS)  # "Updated March 6, 2018" goes as a whole
    return replace(title, text=words, end=title.start + len(words)), found[0]


def _without_count_suffix(title: Line, config: BylineConfig) -> Line:
    """A title without the comment count run into its end ("Our Next Step 153 Comments"),
    when a title's words are left."""
    m = config.title_count_suffix.search(title.text)
    if m is None or word_count(title.text[: m.start()]) < TITLE_MIN_WORDS:
        return title
    return replace(title, text=title.text[: m.start()], end=title.start + m.start())


def _bare_date(text: str, config: BylineConfig) -> str | None:
    """The date of a line that is only a date, or a date after a publication label ("Posted on
    July 19th, 2012"), possibly with a widget after a separator ("05 Nov 2012 / tweet this",
    "Published on Nov 1st, 2012 - 4 Comments"). Below an article a date with another label
    is a trackback's or a comment's ("Tracked on Sep 12, 2007"): not the article's."""
    label = config.date_label.match(text)
    rest = strip_weekday(text[label.end():] if label else text)
    found = find_date_at_start(rest)
    if found is None:
        return None
    after = rest[found[2]:].strip()
    if after and not (after[0] in TAIL_DATE_SEPARATORS and word_count(after) <= DATELINE_MAX_EXTRA_WORDS):
        return None
    return found[0]


def _refine(published: str | None, candidate: str | None) -> str | None:
    """Keep the first date found, unless a later one is the same day with a time."""
    if published is None:
        return candidate
    if candidate and len(candidate) > len(published) and candidate.startswith(published):
        return candidate
    return published


def read_article_head(lines: Sequence[Line], config: BylineConfig = BYLINE_CONFIG) -> ArticleParts:
    """Title, dek, authors, date, via, and the role of every line that leaves the body."""
    content = [l for l in lines if l.text.strip()]  # (not l.is_blank, without a property call per line)
    end, dek = _head_end(content, config)
    head = content[:end]
    roles: dict[int, str] = {}
    bylines: dict[int, Byline] = {}
    datelines: set[int] = set()
    dates: list[str] = []
    for line in head:
        byline = parse_byline(line.stripped, config=config)
        if byline is not None:
            bylines[line.index] = byline
            roles[line.index] = ROLE_BYLINE
            if byline.published:
                dates.append(byline.published)
        elif is_dateline(line.stripped):
            datelines.add(line.index)
            roles[line.index] = ROLE_DATELINE
            found = find_date(line.stripped)
            if found:
                dates.append(found[0])

    title = _choose_title(head, set(bylines) | datelines, content[end:],
                          frozenset(i for i, b in bylines.items() if b.authors), config)
    subtitle: Line | None = None
    lone_name: str | None = None
    if title is not None:
        roles[title.index] = ROLE_TITLE
        title = _without_count_suffix(title, config)
        title, title_date = _split_title_date(title, config)
        if title_date:
            dates.append(title_date)
        for line in head:
            if line.index < title.index and line.index not in roles and (
                not _is_prose(line, config) or not _byline_between(line.index, title.index, roles)
            ):
                roles[line.index] = ROLE_SITE_HEADER
        after = [l for l in head if l.index > title.index and l.index not in roles]
        # The dek is the line right after the title (bylines and datelines may sit between);
        # a paragraph-long one only when a byline or dateline below proved it is head.
        nxt = after[0] if after else None
        if nxt is not None and _is_subtitle_like(nxt.stripped, config) and (
            word_count(nxt.stripped) < BODY_MIN_WORDS or (dek is not None and nxt is content[dek])
        ):
            subtitle = nxt
            roles[nxt.index] = ROLE_SUBTITLE
        if not any(b.authors for b in bylines.values()):
            for line in after:
                if line.index not in roles and looks_like_name(line.stripped, config):
                    lone_name = " ".join(line.stripped.split())
                    roles[line.index] = ROLE_BYLINE
                    break

    authors: list[str] = [a for b in bylines.values() for a in b.authors]
    via = next((b.via for b in bylines.values() if b.via), None)
    if not authors and lone_name:
        authors.append(lone_name)

    # Tail: a closing "Posted by ..." byline, a dateline and an author bio, read from the end,
    # passing over a few widget lines left below them (see TAIL_MAX_STUBS).
    head_indices = {l.index for l in head}
    tail_dates: list[str] = []
    bio_author: str | None = None
    taken = stubs = 0
    for line in reversed(content):
        if taken >= TAIL_WINDOW or line.index in head_indices or line.index in roles:
            break
        byline = parse_byline(line.stripped, config=config)
        name = None if byline is not None else _bio_name(line.stripped, authors, config)
        if byline is not None:
            roles[line.index] = ROLE_BYLINE
            if not authors:
                authors.extend(byline.authors)
            via = via or byline.via
            if byline.published:
                tail_dates.append(byline.published)
        elif name is not None:
            roles[line.index] = ROLE_BIO
            bio_author = bio_author or name
        elif (tail_date := _bare_date(line.stripped, config)) is not None:
            roles[line.index] = ROLE_DATELINE
            tail_dates.append(tail_date)
        elif stubs < TAIL_MAX_STUBS and (
            not _has_words(line.stripped, TAIL_STUB_MAX_WORDS + 1) or _is_label(line.stripped)
        ):
            stubs += 1
            continue
        else:
            break
        taken += 1
    if not authors and bio_author:
        authors.append(bio_author)

    published: str | None = None
    # The tail's dates were read from the bottom up: the one nearest the body first.
    for iso in dates + tail_dates[::-1]:
        published = _refine(published, iso)

    body = [l.index for l in content if l.index not in roles]
    return ArticleParts(
        title=title,
        subtitle=subtitle,
        authors=tuple(dict.fromkeys(authors)),
        published=published,
        via=via,
        roles=roles,
        body_start=body[0] if body else None,
        body_end=body[-1] if body else None,
    )


@dataclass(frozen=True, eq=False)
class SiteConfig:
    """Compiled widget patterns that name a site, with the names to ignore. Hashed by
    identity: hashing the compiled patterns on each page's look-ups costs more."""

    patterns: tuple[re.Pattern[str], ...]
    not_sites: frozenset[str]
    max_words: int
    # (rank, name) of the pattern that names the site in a line, None if none, by line
    # (see _line_site): a site's widget lines come back on each of its pages.
    named: dict[str, tuple[int, str] | None] = field(default_factory=dict, repr=False)


def load_site_config(path: Path = SITES_CONFIG) -> SiteConfig:
    """Load and validate a sites.yaml; every error names the file and the bad entry."""
    data: Any = load_yaml(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("patterns"), list):
        raise ValueError(f"{path}: expected a mapping with a 'patterns' list")
    compiled: list[re.Pattern[str]] = []
    for pattern in data["patterns"]:
        if not isinstance(pattern, str):
            raise ValueError(f"{path}: patterns: each pattern must be a string, got {pattern!r}")
        regex = compile_pattern(pattern, f"{path}: patterns", re.IGNORECASE)  # bounded if its shape is risky
        if "site" not in regex.groupindex:
            raise ValueError(f"{path}: patterns: {pattern!r} has no named group 'site'")
        compiled.append(regex)
    not_sites = data.get("not_sites", [])
    max_words = data.get("max_words")
    if not isinstance(not_sites, list) or not all(isinstance(s, str) for s in not_sites):
        raise ValueError(f"{path}: 'not_sites' must be a list of strings")
    if not isinstance(max_words, int) or max_words < 1:
        raise ValueError(f"{path}: 'max_words' must be a positive integer")
    return SiteConfig(tuple(compiled), frozenset(s.lower() for s in not_sites), max_words)


SITE_CONFIG = load_site_config()


@functools.lru_cache(maxsize=8)
def _cached_site_config(path: Path) -> SiteConfig:
    return load_site_config(path)


# By the path as given: resolving it costs a system call. The shipped file is known from
# import on (worker processes forked later find it loaded).
_SITE_CONFIGS: dict[Path | str, SiteConfig] = {SITES_CONFIG: SITE_CONFIG}


def _site_config(patterns: SiteConfig | Path | str) -> SiteConfig:
    if isinstance(patterns, SiteConfig):
        return patterns
    config = _SITE_CONFIGS.get(patterns)
    if config is None:
        config = _cached_site_config(Path(patterns).resolve())
        if len(_SITE_CONFIGS) < 64:
            _SITE_CONFIGS[patterns] = config
    return config


_Needs = tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class _SiteNeeds:
    """What a line must hold for one site pattern to match in it (see _site_needs)."""

    plain: _Needs  # one string of each, as is
    folded: _Needs  # one string of each, in the folded line
    rarest_plain: tuple[str, ...] | None  # the plain need to look for on the page
    rarest: tuple[tuple[str, ...], bool] | None  # the need to look for on a folded page, folded?


@functools.lru_cache(maxsize=8)
def _site_needs(config: SiteConfig) -> tuple[_SiteNeeds, ...]:
    """Per pattern, strings one of each of which a line must hold for it to match: as they
    are, and lower-cased (to look for in the folded line) for case-insensitive parts. None
    with a space: lines are looked at with their spaces normalised."""
    found = []
    for pattern in config.patterns:
        plain, folded_needs = (
            tuple(need for need in needs if not any(ch.isspace() for text in need for ch in text))
            for needs in literal_needs(pattern)
        )
        either = [(need, False) for need in plain] + [(need, True) for need in folded_needs]
        found.append(_SiteNeeds(
            plain,
            folded_needs,
            min(plain, key=_commonness) if plain else None,
            min(either, key=lambda nf: _commonness(nf[0])) if either else None,
        ))
    return tuple(found)


def find_site(lines: Sequence[str], patterns: SiteConfig | Path | str = SITE_CONFIG) -> str | None:
    """The site name that the page's widgets give most often ("support X on Patreon", "© 2016 X").

    `patterns` is a loaded SiteConfig or the path of a sites.yaml (loaded once, then cached).
    """
    patterns = _site_config(patterns)
    site_needs = _site_needs(patterns)
    # Only lines holding some pattern's literal strings are read (see _site_candidates).
    candidates = _site_candidates(lines, site_needs)
    if None in candidates.values():
        line_numbers: Sequence[int] = range(len(lines))
    else:
        line_numbers = sorted(set().union(*candidates.values()))  # type: ignore[arg-type]
    votes: Counter[str] = Counter()
    first_seen: dict[str, tuple[int, int]] = {}
    named = patterns.named
    for line_no in line_numbers:
        line = lines[line_no]
        found = named.get(line, _UNSEEN)
        if found is _UNSEEN:
            found = _line_site(line, patterns, site_needs)
            if len(line) <= _MAX_REMEMBERED_CHARS:
                if len(named) >= _MAX_REMEMBERED_LINES:
                    named.clear()
                named[line] = found
        if found is not None:
            rank, name = found
            votes[name] += 1
            first_seen.setdefault(name, (rank, line_no))
    if not votes:
        return None
    return max(votes, key=lambda n: (votes[n], tuple(-x for x in first_seen[n])))


_UNSEEN: Any = object()
_MAX_REMEMBERED_CHARS = 300  # widget lines are short; a paragraph is rarely seen twice
_MAX_REMEMBERED_LINES = 100_000


def _line_site(line: str, patterns: SiteConfig, site_needs: Sequence[_SiteNeeds]) -> tuple[int, str] | None:
    """(rank, name) of the first pattern that names a site in `line`. The needs only skip
    patterns that cannot match, so this is the same whichever page the line is on."""
    text = " ".join(line.split())
    text_folded: str | None = None
    for rank, pattern in enumerate(patterns.patterns):
        needs = site_needs[rank]
        if needs.plain and not _holds(text, needs.plain):
            continue
        if needs.folded:
            if text_folded is None:
                text_folded = folded(text) or ""
            if text_folded and not _holds(text_folded, needs.folded):
                continue
        m = pattern.search(text)
        if m is None:
            continue
        name = m.group("site").strip(" \t-–—|·•\"“”'")
        words = name.split()
        if not words or len(words) > patterns.max_words or name.lower() in patterns.not_sites:
            continue
        if not name[0].isupper() or sum(ch.isalpha() for ch in name) < 2:
            continue
        return rank, name  # one name per line: the earlier pattern is the more specific one
    return None


def _site_candidates(lines: Sequence[str], site_needs: Sequence[_SiteNeeds]) -> dict[int, set[int] | None]:
    """For each pattern (by rank) that may match a line of the page, the lines that may
    hold a match (None: any line): those holding one string of its rarest need. A
    pattern none of whose lines can match is left out. Lines are not split on their
    own: the page is searched once for each need."""
    page = "\n".join(lines)
    page_folded = folded(page)
    # A line's number is the count of newlines before a position on the page, unless a
    # line holds a newline itself: then line starts are listed.
    starts: list[int] | None = None if page.count("\n") == len(lines) - 1 else \
        list(itertools.accumulate((len(line) + 1 for line in lines), initial=0))
    candidates: dict[int, set[int] | None] = {}
    for rank, needs in enumerate(site_needs):
        if page_folded is not None and needs.rarest is not None:
            rarest, in_folded = needs.rarest
            text = page_folded if in_folded else page
        elif needs.rarest_plain is not None:
            rarest, text = needs.rarest_plain, page
        else:
            candidates[rank] = None
            continue
        found: set[int] = set()
        for part in rarest:
            at = text.find(part)
            line_no, counted_to = 0, 0  # newlines before `counted_to`, counted as the finds go on
            while at != -1:
                # A need holds no space, so no newline: it lies within one line.
                if starts is None:
                    line_no += page.count("\n", counted_to, at)
                    counted_to = at
                    found.add(line_no)
                else:
                    found.add(bisect.bisect_right(starts, at) - 1)
                at = text.find(part, at + 1)
        if found:
            candidates[rank] = found
    return candidates


def _commonness(need: tuple[str, ...]) -> int:
    """How often ordinary text holds one of `need`'s strings, roughly: numbers and short
    words are everywhere, long words and symbols ("©") are not."""
    cost = 0
    for part in need:
        if part.isdigit():
            cost += 50
        elif len(part) == 1:
            cost += 20 if part.isalnum() else 3
        else:
            cost += 10 if len(part) == 2 else 3 if len(part) == 3 else 1
    return cost


def _holds(text: str, needs: tuple[tuple[str, ...], ...]) -> bool:
    """Whether `text` holds one string of every need."""
    return all(any(part in text for part in need) for need in needs)
