"""Quality gate on reader comments: the pipeline's comment F1 and false-section rate on the
dragnet-train dev set, pinned within a tolerance (issue #4).

The pages go through ingest, clean, boilerplate (learn, then each page), split and metadata
in this process, once per test session (`pipeline.eval.boilerplate_devset`); dedup, langid
and export are left out to keep the run short: they only drop pages, and move the figures
below by less than 0.001 (`python -m pipeline.eval.devset` runs them all). The dev set is
evaluation data: it is read where it lies, and the test skips when it is absent.

When a change moves a figure out of its band on purpose, re-measure and update the pin
with the figures of `python -m pipeline.eval.devset` and of
`python -m pipeline.eval.boilerplate_devset --no-timing` (line (b)) in the commit message.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from pipeline.eval import boilerplate_devset as bd
from pipeline.eval.devset import DEVSET
from pipeline.stages import boilerplate

# Pinned on 2026-11-21 (issue #4): comment F1 0.8843, false sections 12 of 666 pages (1.80%),
# main-article F1 0.8820 on the pages with comments (before: 0.8042, 15 pages, 0.8591). Then
# threads of bare names under a bare comments heading where a commenter comes back, and the
# page's "date / Name" layout: comment F1 0.8999, false sections 12 (1.80%), main-article F1
# 0.8867 on the pages with comments. With the main-region changes of the same session (a
# region no longer runs on past the article's chrome into one thread the parser missed):
# comment F1 0.8967, false sections 12 (1.80%), main-article F1 0.8905 on the pages with
# comments. Then framed blocks apart from the main text that the comment parser puts in no
# thread go in the boilerplate stage (region_parsed_comments), and blog footer lines ("This entry
# was posted in ...") as navigation: comment F1 0.8967, false sections 11 (1.65%), main-article
# F1 0.9011 on the pages with comments. Then comment headers of a name and a date with no
# time or separator, a reply link shown just under a lone comment's opening lines, and date
# lines with no year: comment F1 0.9100, false sections 11 (1.65%), main-article F1 0.9008 on
# the pages with comments. Then weekdays spelled out word by word in the comment formats
# (names such as "Monica" or "marcel" no longer open a date) and prose bodies not counted in
# the gap that splits a thread (a reader's essay of more than 60 paragraphs cut one in two):
# comment F1 0.9107 (full pipeline, `pipeline.eval.devset`: 0.9101, before 0.9094), false
# sections 11 (1.65%), main-article F1 0.9019 on the pages with comments (unchanged).
# Then removal markers read the same whatever the layout (one on a blank line is read at the
# next non-blank line; a counted heading heads its thread with up to two removed lines of its own
# after it; the removed heading nearest a thread says whether it is one of trackbacks), excerpt
# lists (pingbacks, "recent comments" cut off with "...") and dated headline lists are no thread,
# and a removed reply link above a cluster is not its own: comment F1 0.9134, false sections 11
# (1.65%; one more real thread the gold leaves out, one headline list fewer), main-article F1
# 0.9051 on the pages with comments; the same with a blank line between blocks (--render blank:
# before 0.9111, 18 pages, 2.70%).
# A drop below the band is a regression; a rise above it is a gain to pin.
COMMENT_F1 = 0.9134
COMMENT_F1_TOLERANCE = 0.01
FALSE_SECTION_SHARE = 0.0165
FALSE_SECTION_TOLERANCE = 0.0075  # five pages of 666
FALSE_SECTION_MAX = 0.02  # the bar
ARTICLE_F1_ON_COMMENT_PAGES_MIN = 0.85  # comments must not be won at the article's expense


@dataclass(frozen=True)
class DevsetScores:
    comment_f1: float
    false_section_share: float
    article_f1_on_comment_pages: float
    pages_with_comments: int


@pytest.fixture(scope="module")
def scores() -> DevsetScores:
    if not DEVSET.is_dir():
        pytest.skip(f"dev set not found at {DEVSET}: the comment quality gate needs it")
    records, gold = bd.load_devset(DEVSET)
    main, comments = bd.split_pages(bd.run_stage(records, boilerplate.Config()))
    with_comments = [page for page in sorted(gold) if gold[page].get("comments")]
    without = [page for page in sorted(gold) if not gold[page].get("comments")]
    comment_f1 = [bd.score_page(page, comments.get(page, ""), str(gold[page]["comments"])).f1
                  for page in with_comments]
    article_f1 = [bd.score_page(page, main.get(page, ""), str(gold[page].get("article") or "")).f1
                  for page in with_comments]
    return DevsetScores(
        comment_f1=bd.mean(comment_f1),
        false_section_share=sum(1 for page in without if comments.get(page)) / max(len(without), 1),
        article_f1_on_comment_pages=bd.mean(article_f1),
        pages_with_comments=len(with_comments),
    )


def test_comment_f1_is_pinned(scores: DevsetScores) -> None:
    assert scores.pages_with_comments == 299
    assert abs(scores.comment_f1 - COMMENT_F1) <= COMMENT_F1_TOLERANCE, scores


def test_false_sections_are_pinned(scores: DevsetScores) -> None:
    assert scores.false_section_share <= FALSE_SECTION_MAX, scores
    assert abs(scores.false_section_share - FALSE_SECTION_SHARE) <= FALSE_SECTION_TOLERANCE, scores


def test_comments_leave_the_article_whole(scores: DevsetScores) -> None:
    assert scores.article_f1_on_comment_pages >= ARTICLE_F1_ON_COMMENT_PAGES_MIN, scores
