"""Measure how often read_article_head takes gold article text out of the body, on dragnet-train.

Each page is turned into an article segment the way the pipeline would hand it over: the
page lines that align (in order) with the gold article's lines, i.e. perfect boilerplate
removal. Dragnet's gold keeps titles, bylines and dates inside the article text, so any
removed line is "in gold"; what matters is how many removed lines look like body
paragraphs (>= BODY_LIKE_WORDS words). A second run uses the whole span from the first
to the last aligned line, boilerplate in between included, as a noisier segment.

Run: .venv/bin/python -m pipeline.eval.head_devset [--devset DIR] [--show N]
"""

from __future__ import annotations

import argparse
import difflib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.document import Line, split_lines
from pipeline.extract.head import SENTENCE_END, CLOSING_CHARS, read_article_head, word_count

DEFAULT_DEVSET = Path("/work/shared/devsets/dragnet-train")
# The threshold the brief uses for a line that reads like a body paragraph.
BODY_LIKE_WORDS = 12
# Gold title proxy: a chosen title among the first few gold article lines is probably right.
TITLE_PROXY_LINES = 3


def _norm(text: str) -> str:
    return " ".join(text.split())


@dataclass
class Tally:
    """Counts over one variant of the segments."""

    pages: int = 0
    lines: int = 0
    removed: Counter[str] = field(default_factory=Counter)
    body_like_removed: Counter[str] = field(default_factory=Counter)
    paragraph_removed: Counter[str] = field(default_factory=Counter)
    pages_with_body_like_removed: int = 0
    titles: int = 0
    titles_near_top: int = 0
    authors: int = 0
    published: int = 0
    examples: list[tuple[str, str, str]] = field(default_factory=list)


def aligned_lines(page: Sequence[Line], gold_article: str) -> list[Line]:
    """Page lines that match gold article lines, in order (difflib on whole normalised lines)."""
    gold = [_norm(l) for l in gold_article.split("\n") if l.strip()]
    candidates = [l for l in page if not l.is_blank]
    matcher = difflib.SequenceMatcher(None, [_norm(l.text) for l in candidates], gold, autojunk=False)
    return [candidates[b.a + k] for b in matcher.get_matching_blocks() for k in range(b.size)]


def _measure(tally: Tally, page_id: str, segment: Sequence[Line], gold_top: set[str], in_gold: set[int]) -> None:
    """Run the head reader on one segment; only removed lines that are gold article text count."""
    if not segment:
        return
    parts = read_article_head(segment)
    tally.pages += 1
    tally.lines += len(segment)
    by_index = {l.index: l for l in segment}
    body_like = 0
    for index, role in parts.roles.items():
        tally.removed[role] += 1
        text = by_index[index].stripped
        if index in in_gold and word_count(text) >= BODY_LIKE_WORDS:
            body_like += 1
            tally.body_like_removed[role] += 1
            if text.rstrip(CLOSING_CHARS)[-1:] in SENTENCE_END:
                # Shaped like a paragraph too (a sentence end), not a long headline.
                tally.paragraph_removed[role] += 1
                tally.examples.append((page_id, role, text))
    tally.pages_with_body_like_removed += body_like > 0
    if parts.title is not None:
        tally.titles += 1
        tally.titles_near_top += _norm(parts.title.text) in gold_top
    tally.authors += bool(parts.authors)
    tally.published += parts.published is not None


def _report(name: str, tally: Tally, show: int) -> None:
    print(f"== {name}: {tally.pages} pages, {tally.lines} non-blank segment lines")
    print(f"   lines removed from body: {sum(tally.removed.values())} {dict(tally.removed)}")
    print(
        f"   body-like (>= {BODY_LIKE_WORDS} words) gold lines removed: {sum(tally.body_like_removed.values())} "
        f"{dict(tally.body_like_removed)} on {tally.pages_with_body_like_removed} pages"
    )
    print(
        f"   of which end like a paragraph (sentence mark): {sum(tally.paragraph_removed.values())} "
        f"{dict(tally.paragraph_removed)}"
    )
    print(
        f"   title found on {tally.titles} pages, {tally.titles_near_top} of them among the first "
        f"{TITLE_PROXY_LINES} gold lines; authors on {tally.authors}; published on {tally.published}"
    )
    for page_id, role, text in tally.examples[:show]:
        print(f"   [{page_id}] {role}: {text[:150]}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devset", type=Path, default=DEFAULT_DEVSET)
    parser.add_argument("--show", type=int, default=20, help="paragraph-like removed lines to print")
    args = parser.parse_args(argv)
    aligned, spans = Tally(), Tally()
    for gold_path in sorted(args.devset.glob("*.gold.json")):
        page_id = gold_path.name.removesuffix(".gold.json")
        article = json.loads(gold_path.read_text(encoding="utf-8")).get("article") or ""
        page = split_lines((args.devset / f"{page_id}.txt").read_text(encoding="utf-8", errors="replace"))
        segment = aligned_lines(page, article)
        gold_top = {_norm(l) for l in [l for l in article.split("\n") if l.strip()][:TITLE_PROXY_LINES]}
        in_gold = {l.index for l in segment}
        _measure(aligned, page_id, segment, gold_top, in_gold)
        if segment:
            span = [l for l in page if segment[0].index <= l.index <= segment[-1].index]
            _measure(spans, page_id, span, gold_top, in_gold)
    _report("aligned gold lines (clean segment)", aligned, args.show)
    _report("first-to-last aligned span (boilerplate inside)", spans, args.show)


if __name__ == "__main__":
    main()
