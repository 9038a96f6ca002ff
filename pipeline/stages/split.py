"""Split: one page becomes its main article, its related articles and its comments.

Sections are found from two kinds of evidence: the comment parser's headers and
signatures (pipeline/extract/comments.py), and the markers the boilerplate
stage left where it removed structural lines (feed headers such as "Latest"
separate related articles; pagination such as "Continue Reading" ends one).

Every output record lists, in `origin`, the [start, end) ranges of this stage's
input text its `text` is made of (the records' texts join those pieces with
line breaks); every other character is a span with a reason, blank lines and
indentation included ("layout"). So the page can be rebuilt from the records
plus the spans, exactly.
It also lists, in `line_numbers`, the line of the original file each of its
lines comes from (1-based), which export turns into provenance offsets.
"""

from __future__ import annotations

import bisect
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pipeline.document import Line, Span, split_lines
from pipeline.extract.comments import Comment, CommentFormats, compile_formats, find_comment_section, load_formats
from pipeline.extract.dates import parse_date
from pipeline.stage import ConfigPath, Outcome, Record, StageConfig
from pipeline.textstats import count_words

NAME = "split"
REASONS = frozenset(
    {
        "comment_header",  # author/number/date/signature/"Reply" lines: they become comment fields
        "comment_section",  # headings, widgets and pagination inside the comment section
        "thread_markup",  # indentation and bullets of a threaded comment
        "feed_item",  # a short item of a related-articles feed (headline lists), not an article
        "related_dropped",  # a related article, dropped because split.related is "drop"
        "no_article",  # nothing of the page looks like an article
        "layout",  # blank lines, indentation and line breaks between the pieces of the records
    }
)

_START = operator.attrgetter("start")
BULLET = re.compile(r"^\s*(?:\d{1,4}[.)]|[•·*▪◦‣●○■□–-])?\s*")


class Config(StageConfig):
    comments: bool = True  # find reader comments; off treats comment text as article text
    comment_formats: ConfigPath = Path("comments/formats.yaml")  # header and signature patterns
    min_comments: int = 1  # fewer comments than this is not a comment section
    related: Literal["keep", "drop"] = "keep"  # related articles as records, or dropped
    feed_reasons: tuple[str, ...] = ("feed_header",)  # marker reasons that open a feed
    end_reasons: tuple[str, ...] = ("pagination", "donation", "comment_widget")  # markers that end a feed item
    # Calibrated on seed 004: its three feed articles have 180-900 words, its feed stubs none;
    # headline lists in the dragnet dev pages stay well under 40 words per item.
    related_min_words: int = 60  # a feed item with fewer words is a headline stub, not an article


@dataclass(frozen=True)
class Segment:
    """A run of lines destined for one record."""

    lines: list[Line]
    after_feed: bool  # the segment follows a feed header


def warm(config: Config) -> None:
    """Compile the comment formats before the run's workers fork (see pipeline.stage)."""
    compile_formats(_formats(config.comment_formats))


def process(record: Record, config: Config) -> Outcome:
    text: str = record["text"]
    lines = split_lines(text)
    # [index, reason, text] each; the removed lines' texts tell the comment parser whether a
    # removed heading counts comments or heads trackbacks, and whether a removed line was a
    # reply link. (Both readers take the fields as int, str, str.)
    markers = record.get("markers", [])
    spans: list[Span] = []
    comments: list[Comment] = []
    in_section = range(0)
    if config.comments:
        section = find_comment_section(lines, markers, _formats(config.comment_formats),
                                       config.min_comments)
        if section is not None:
            comments = list(section.comments)
            in_section = range(section.start, section.end)
            for line, _reason in section.other:
                if not line.is_blank:
                    spans.append(_whole(line, "comment_section"))

    segments = _segments([ln for ln in lines if ln.index not in in_section], markers, config)
    main_index = next(
        (i for i, seg in enumerate(segments) if _has_words(seg, config.related_min_words)),
        next((i for i, seg in enumerate(segments) if _has_words(seg, 1)), None),
    )
    if main_index is None:
        # Nothing to attach comments to: the whole page goes, every line with a reason.
        taken = {span.start for span in spans}
        spans.extend(_whole(ln, "no_article") for ln in lines if not ln.is_blank and ln.start not in taken)
        return Outcome(records=[], spans=_with_layout(text, spans, []), drop_reason="no_article")

    page_id = record["id"]
    original_line = _original_line_numbers(record.get("markers", []))
    main_lines = list(segments[main_index].lines)
    related: list[list[Line]] = []
    for i, segment in enumerate(segments):
        if i == main_index:
            continue
        if i > main_index and segment.after_feed:
            if _has_words(segment, config.related_min_words):
                related.append(segment.lines)
            else:
                spans.extend(_whole(ln, "feed_item") for ln in segment.lines)
        else:
            main_lines.extend(segment.lines)
    main_lines.sort(key=lambda ln: ln.index)

    common = {k: record[k] for k in ("source", "source_sha256", "site_key", "bytes", "encoding") if k in record}
    page_markers = record.get("markers", [])
    out: list[Record] = [_article(page_id, page_id, "main", main_lines, common, page_markers, original_line)]
    for k, lines_k in enumerate(related, 1):
        if config.related == "drop":
            spans.extend(_whole(ln, "related_dropped") for ln in lines_k)
        else:
            out.append(_article(f"{page_id}#r{k}", page_id, "related", lines_k, common, page_markers,
                                original_line))
    comment_records, comment_spans = _comments_out(page_id, comments, common, original_line)
    out.extend(comment_records)
    spans.extend(comment_spans)
    return Outcome(records=out, spans=_with_layout(text, spans, out))


def _with_layout(text: str, spans: list[Span], records: Sequence[Record]) -> list[Span]:
    """`spans` sorted, plus a "layout" span for every stretch (blank lines, indentation,
    line breaks) that is in no record's origin and no other span: every character of
    the page is then accounted for."""
    taken = [(s.start, s.end) for s in spans]
    for record in records:
        taken.extend(map(tuple, record["origin"]))
    taken.sort()
    layout: list[Span] = []
    cursor = 0
    for start, end in taken:
        if start > cursor:
            layout.append(Span(cursor, start, "layout", text[cursor:start]))
        if end > cursor:
            cursor = end
    if cursor < len(text):
        layout.append(Span(cursor, len(text), "layout", text[cursor:]))
    return sorted(spans + layout, key=_START)


# The formats per file, with the (size, mtime, inode) they were read at: a page costs a
# stat of the file, not a read of it.
_FORMATS: dict[Path, tuple[tuple[int, int, int], CommentFormats]] = {}


def _formats(path: Path) -> CommentFormats:
    stat = path.stat()
    version = (stat.st_size, stat.st_mtime_ns, stat.st_ino)
    known = _FORMATS.get(path)
    if known is None or known[0] != version:
        if len(_FORMATS) >= 16:
            _FORMATS.clear()
        known = _FORMATS[path] = (version, load_formats(path))
    return known[1]


def _segments(lines: Sequence[Line], markers: Sequence[Sequence[object]], config: Config) -> list[Segment]:
    """Cut the non-blank, non-comment lines at feed markers; end markers close a feed item.

    A marker stands before line `index`, which may be blank: it applies to the
    first non-blank line at or after that index.
    """
    feed_at = sorted(int(m[0]) for m in markers if str(m[1]) in config.feed_reasons)
    if not feed_at:  # one segment: end markers only close the items of a feed
        current = [line for line in lines if line.text.strip()]
        return [Segment(current, False)] if current else []
    end_at = sorted(int(m[0]) for m in markers if str(m[1]) in config.end_reasons)
    segments: list[Segment] = []
    current: list[Line] = []
    after_feed = False
    # Is a marker in (previous line's index, this line's index]? Lines come in order, so the
    # markers up to the previous line are counted off as the lines go (f and e of them).
    f, e = bisect.bisect_right(feed_at, -1), bisect.bisect_right(end_at, -1)
    for line in lines:
        if not line.text.strip():
            continue
        index = line.index
        feed = f < len(feed_at) and feed_at[f] <= index
        end = after_feed and e < len(end_at) and end_at[e] <= index
        while f < len(feed_at) and feed_at[f] <= index:
            f += 1
        while e < len(end_at) and end_at[e] <= index:
            e += 1
        if feed or end:
            if current:
                segments.append(Segment(current, after_feed))
            current = []
            after_feed = after_feed or feed
        current.append(line)
    if current:
        segments.append(Segment(current, after_feed))
    return segments


def _has_words(segment: Segment, at_least: int) -> bool:
    """Whether the segment's lines hold `at_least` words. Lines are counted one by one, only
    until there are that many (a main article is long), and the count so far is kept: `process`
    asks up to three times per segment. The sum per line is the count of the joined lines (a
    word never spans a newline)."""
    counted, words = segment.__dict__.get("words", (0, 0))
    lines = segment.lines
    while words < at_least and counted < len(lines):
        words += count_words(lines[counted].text)
        counted += 1
    segment.__dict__["words"] = (counted, words)  # a frozen dataclass: the memo goes around __setattr__
    return words >= at_least


def _whole(line: Line, reason: str) -> Span:
    return Span(line.start, line.end, reason, line.text)


def _original_line_numbers(markers: Sequence[Sequence[object]]) -> Callable[[int], int]:
    """Line index here -> 1-based line of the original file.

    The clean stage keeps every line (it only turns CR and CRLF into LF), and the
    boilerplate stage leaves one marker per removed line, placed at the index of
    the next kept line; so the lines removed before line k are the markers at <= k.
    """
    positions = sorted(int(marker[0]) for marker in markers)
    return lambda index: index + bisect.bisect_right(positions, index) + 1


def _article(article_id: str, page_id: str, role: str, lines: Sequence[Line],
             common: dict[str, object], page_markers: object,
             original_line: Callable[[int], int]) -> Record:
    texts: list[str] = []
    origin: list[list[int]] = []
    for line in lines:
        text = line.text
        stripped = text.strip()
        texts.append(stripped)
        lead = len(text) - len(text.lstrip())
        # The line without its indentation and trailing spaces ([end, start) for an all-blank one).
        origin.append([line.start + lead, line.start + lead + len(stripped)] if stripped
                      else [line.end, line.start])
    return {
        "id": article_id,
        "kind": "article",
        "page_id": page_id,
        **common,
        "role": role,
        "text": "\n".join(texts),
        "origin": origin,
        "line_numbers": [original_line(line.index) for line in lines],
        "page_markers": page_markers,
    }


def _comments_out(page_id: str, comments: Sequence[Comment], common: dict[str, object],
                  original_line: Callable[[int], int]) -> tuple[list[Record], list[Span]]:
    """The comment records, and their spans: header lines, and the indentation and bullets
    cut from body lines. One pass over each comment's lines."""
    ids = {c.position: f"{page_id}#c{c.position + 1}" for c in comments}
    records: list[Record] = []
    spans: list[Span] = []
    for comment in comments:
        spans.extend(Span(line.start, line.end, "comment_header", line.text) for line in comment.header
                     if line.text.strip())
        texts: list[str] = []
        origin: list[list[int]] = []
        line_numbers: list[int] = []
        first = True
        for line in comment.body:
            text = line.text
            if first:  # the first line without its bullet and indentation
                first = False
                lead = BULLET.match(text).end()  # type: ignore[union-attr]
                start, end = line.start + lead, line.end - (len(text) - len(text.rstrip()))
                if lead and text[:lead].strip():
                    spans.append(Span(line.start, start, "thread_markup", text[:lead]))
                if end > start:
                    texts.append(text[lead:end - line.start])
                    origin.append([start, end])
                    line_numbers.append(original_line(line.index))
                continue
            # The others without their indentation; a blank one is a paragraph break (layout).
            unindented = text.lstrip()
            if unindented:
                start = line.start + len(text) - len(unindented)
                content = unindented.rstrip()
                texts.append(content)
                origin.append([start, start + len(content)])
                line_numbers.append(original_line(line.index))
        records.append({
            "id": ids[comment.position],
            "kind": "comment",
            "page_id": page_id,
            **common,
            "article_id": page_id,
            "parent_id": ids.get(comment.parent) if comment.parent is not None else None,
            "depth": comment.depth,
            "position": comment.position,
            "number": comment.number,
            "author": comment.author,
            "posted": parse_date(comment.posted_raw) if comment.posted_raw else None,
            "posted_raw": comment.posted_raw,
            "reply_to": [ids[p] for p in comment.reply_to if p in ids],
            "text": "\n".join(texts),
            "origin": origin,
            "line_numbers": line_numbers,
        })
    return records, spans
