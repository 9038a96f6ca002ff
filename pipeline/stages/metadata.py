"""Metadata: title, dek, authors, date and site leave the article text for fields.

The decisions are made by pipeline/extract/head.py (which lines are title,
byline, dateline...), bylines.py, dates.py, the site patterns and the known outlets
(outlets.py); this stage
applies them: those lines become spans with their role as the reason.
Comments pass through unchanged.
"""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.document import apply_spans, line_span, split_lines
from pipeline.extract.head import ROLE_SITE_HEADER, find_site, read_article_head
from pipeline.extract.outlets import name_site
from pipeline.stage import ConfigPath, Outcome, Record, StageConfig

NAME = "metadata"
REASONS = frozenset(
    {
        "title",  # the headline
        "subtitle",  # the dek under the headline
        "byline",  # author and/or date line
        "dateline",  # a line holding only the publication date
        "site_header",  # the site's name or logo text above the headline
        "bio",  # the author's biography after the article
    }
)

SENTENCE_END = re.compile(r"[.!?…:;\"'”’»)\]]\s*$")


class Config(StageConfig):
    site_patterns: ConfigPath = Path("metadata/sites.yaml")  # phrases that name the site
    # Known outlets: a masthead line or an input folder named after a domain names the site
    # when no widget phrase does.
    outlets: ConfigPath = Path("metadata/outlets.yaml")
    # A scraper that cuts files at a fixed size leaves sizes like 3000 or 4096 bytes.
    round_sizes: tuple[int, ...] = (1000, 1024)  # a file size divisible by one of these is suspect
    min_truncation_bytes: int = 1000  # smaller files are not taken as cut at a round size


def process(record: Record, config: Config) -> Outcome:
    if record.get("kind") != "article":
        return Outcome(records=[record])
    text: str = record["text"]
    lines = split_lines(text)
    parts = read_article_head(lines)
    spans = [line_span(lines[index], text, role) for index, role in sorted(parts.roles.items())]
    body = apply_spans(text, spans)
    marker_lines = [str(m[2]) for m in record.get("page_markers", []) if len(m) > 2]
    site = find_site(marker_lines + [line.text for line in lines], config.site_patterns)
    if site is None:
        masthead = [lines[index].text for index, role in sorted(parts.roles.items()) if role == ROLE_SITE_HEADER]
        site = name_site(masthead, record.get("site_key", ""), config.outlets)
    # The page's removed widget lines were passed along only to name the site: used up here.
    out = {key: value for key, value in record.items() if key not in ("text", "page_markers")}
    if "line_numbers" in record:
        out["line_numbers"] = [n for n, line in zip(record["line_numbers"], lines) if line.index not in parts.roles]
    out.update(
        {
            "title": parts.title.text.strip() if parts.title else None,
            "subtitle": parts.subtitle.text.strip() if parts.subtitle else None,
            "authors": list(parts.authors),
            "published": parts.published,
            "site": site,
            "via": parts.via,
            "truncated": is_truncated(record, body, config),
            "text": body,
        }
    )
    return Outcome(records=[out], spans=spans)


def is_truncated(record: Record, body: str, config: Config) -> bool:
    """Cut mid-way: the file stops at a round byte count, or the text mid-sentence."""
    size = int(record.get("bytes", 0))
    if record.get("role") == "main" and size >= config.min_truncation_bytes and any(
        size % unit == 0 for unit in config.round_sizes
    ):
        return True
    last = body.rstrip().rsplit("\n", 1)[-1]
    return bool(last) and not SENTENCE_END.search(last)
