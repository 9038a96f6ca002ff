"""Quality gate on the boilerplate stage: the main-article F1 after split and metadata on the
dragnet-train dev set, pinned within a tolerance (issue #3), as line (b) of
`python -m pipeline.eval.boilerplate_devset --no-timing` prints it.

The quality part of that eval runs once per module (no throughput runs). The dev set is
evaluation data: it is read where it lies, and the test skips when it is absent.

When a change moves a figure out of its band on purpose, re-measure with the command above
and update the pin, with both figures in the commit message.
"""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.eval import boilerplate_devset as bd
from pipeline.stage import Record
from pipeline.stages import boilerplate

# Pinned on 2026-11-22 from line (b): main-article F1 0.8969 (P 0.9046, R 0.9128) over 965 pages,
# the same with a blank line between blocks (`--render blank`), after the comment parser read the
# boilerplate stage's removal markers the same way in both layouts; 0.8956 (P 0.9034, R 0.9123)
# before, with prose lines that read as headlines weighing nothing in the main text (region_headline_share)
# and runs of more than three date lines before it gone (head_frame_run_max): 0.8922 (P 0.8982,
# R 0.9130) before them; 0.8917 (P 0.8960, R 0.9142) with the items of a list after a colon scored as unfinished prose (region_list_share) and the
# lines next to a date line before the main text kept only in the article's own header
# (head_frame_last_only): 0.8873 (P 0.8935, R 0.9097) before them;
# with blog themes' other footer lines as navigation (0.8869, P 0.8925, R 0.9098 before them),
# after the main text ends at a closing line with little prose after it (region_tail_share;
# 0.8862, P 0.8909, R 0.9100 before; (0.8865, P 0.8899, R 0.9123 before the same session's
# metadata and French-quotation changes),
# after framed blocks apart from the main text that the comment parser puts in no thread go
# (region_parsed_comments: 0.8861 with it alone; 0.8784, P 0.8725, R 0.9175 before) and blog
# themes' "This entry was posted in ..." footer lines go as navigation; itself after the main-region
# pass's removed-line cost and unfinished-prose share (issue #3; 0.8658, P 0.8512, R 0.9173
# before them), with the same session's comment-thread and article-head changes (0.8567 before
# the comment-section and pattern changes of issue #4)).
# A drop below the band is a regression; a rise above it is a gain to pin.
ARTICLE_F1 = 0.8969
ARTICLE_F1_TOLERANCE = 0.005  # about five pages going from right to wrong
PAGES = 965
# Line (a): the stage keeps the article (recall) and removes boilerplate (F1 of the kept text).
KEPT_RECALL_MIN = 0.965
KEPT_F1_MIN = 0.70


@pytest.fixture(scope="module")
def devset() -> tuple[list[Record], dict[str, dict[str, Any]]]:
    if not bd.DEFAULT_DEVSET.is_dir():
        pytest.skip(f"dev set not found at {bd.DEFAULT_DEVSET}: the boilerplate quality gate needs it")
    return bd.load_devset(bd.DEFAULT_DEVSET)


@pytest.fixture(scope="module")
def quality(devset: tuple[list[Record], dict[str, dict[str, Any]]]) -> bd.Quality:
    records, gold = devset
    return bd.measure_quality(records, gold, boilerplate.Config())


def test_every_page_is_scored(quality: bd.Quality) -> None:
    assert quality.pages == PAGES and len(quality.main) == PAGES


def test_main_article_f1_is_pinned(quality: bd.Quality) -> None:
    assert quality.article_f1 == pytest.approx(ARTICLE_F1, abs=ARTICLE_F1_TOLERANCE)


def test_the_stage_keeps_the_article(quality: bd.Quality) -> None:
    assert bd.mean(score.recall for score in quality.kept if score.gold_tokens) >= KEPT_RECALL_MIN
    assert bd.mean(score.f1 for score in quality.kept) >= KEPT_F1_MIN


def test_a_warm_pass_classifies_no_line_again(devset: tuple[list[Record], dict[str, dict[str, Any]]],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The line memo holds the dev set's distinct lines: the warm throughput of line (c) is a pass
    that classifies nothing (`boilerplate.MEMO_LINES`)."""
    records, _ = devset
    config = boilerplate.Config()
    boilerplate.clear_caches()
    bd.run_stage(records, config)
    classified: list[str] = []
    context = boilerplate._context(config)
    monkeypatch.setattr(context.cache, "compute", lambda line: classified.append(line) or boilerplate.BLANK)
    monkeypatch.setattr(boilerplate, "_classify_many",
                        lambda lines, _: classified.extend(lines) or [boilerplate.BLANK] * len(lines))
    bd.run_stage(records, config)
    assert classified == []
