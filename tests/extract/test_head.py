"""Tests of pipeline.extract.head: the seeds against their gold, and table cases in cases/head.yaml."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.document import Line, split_lines
from pipeline.extract.head import (
    SITES_CONFIG,
    ArticleParts,
    find_site,
    load_site_config,
    read_article_head,
)

ROOT = Path(__file__).resolve().parents[2]
GOLD = sorted((ROOT / "tests" / "gold").glob("*.json"))
CASES: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parent / "cases" / "head.yaml").read_text(encoding="utf-8")
)
# Gold labels of lines that are not in the main article segment the metadata stage sees.
NOT_IN_SEGMENT = {"boilerplate", "comment", "comment_header", "related"}
# Gold labels that read_article_head gives as roles; caption and embed stay in the body.
ROLES = {"title", "subtitle", "byline", "dateline", "bio"}
# Widget lines inside seed 004's related articles that the boilerplate stage removes.
RELATED_WIDGETS = {"Published", "on", "Continue Reading"}
RELATED_WIDGET_PREFIX = "Liked it?"


def _gold(path: Path) -> tuple[dict[str, Any], list[Line]]:
    gold = json.loads(path.read_text(encoding="utf-8"))
    return gold, split_lines((ROOT / "seeds" / gold["source"]).read_text(encoding="utf-8"))


def _main_segment(gold: dict[str, Any], lines: list[Line]) -> list[Line]:
    dropped = {entry["n"] - 1 for entry in gold["lines"] if entry["label"] in NOT_IN_SEGMENT}
    return [line for line in lines if line.index not in dropped]


def _text(line: Line | None) -> str | None:
    return line.stripped if line is not None else None


@pytest.mark.parametrize("path", GOLD, ids=[p.stem for p in GOLD])
def test_seed_main_article_metadata(path: Path) -> None:
    gold, lines = _gold(path)
    parts = read_article_head(_main_segment(gold, lines))
    meta = gold["metadata"]
    assert _text(parts.title) == meta["title"]
    assert parts.authors == ((meta["author"],) if meta["author"] else ())
    assert parts.published == meta["published"]


@pytest.mark.parametrize("path", GOLD, ids=[p.stem for p in GOLD])
def test_seed_roles_match_gold_labels(path: Path) -> None:
    gold, lines = _gold(path)
    segment = _main_segment(gold, lines)
    in_segment = {line.index for line in segment}
    expected = {
        entry["n"] - 1: entry["label"]
        for entry in gold["lines"]
        if entry["label"] in ROLES and entry["n"] - 1 in in_segment
    }
    assert read_article_head(segment).roles == expected


# 002's gold site comes only from the masthead line "Moon of Alabama Brecht quote" (a logo's
# alt text glued to the name): no widget phrase names it; the known-outlets list does
# (tests/extract/test_outlets.py and the end-to-end test).
NAMED_BY_OUTLETS = {"002_ab9f896ab881ce26"}


@pytest.mark.parametrize("path", GOLD, ids=[p.stem for p in GOLD])
def test_seed_site_from_widget_phrases(path: Path) -> None:
    gold, lines = _gold(path)
    expected = None if path.stem in NAMED_BY_OUTLETS else gold["metadata"]["site"]
    assert find_site([line.text for line in lines]) == expected


def _related_cases() -> list[Any]:
    cases = []
    for path in GOLD:
        gold, _ = _gold(path)
        for number, related in enumerate(gold["related_articles"], 1):
            for keep_site_line in (True, False):
                case_id = f"{path.stem}-{number}-{'with' if keep_site_line else 'without'}-site-line"
                cases.append(pytest.param(path, related, keep_site_line, id=case_id))
    return cases


@pytest.mark.parametrize(("path", "related", "keep_site_line"), _related_cases())
def test_seed_related_articles(path: Path, related: dict[str, Any], keep_site_line: bool) -> None:
    _, lines = _gold(path)
    segment = [
        line
        for line in lines[related["first_line"] - 1 : related["last_line"]]
        if line.stripped not in RELATED_WIDGETS
        and not line.stripped.startswith(RELATED_WIDGET_PREFIX)
        and (keep_site_line or line.stripped != "The Duran")
    ]
    parts = read_article_head(segment)
    assert _text(parts.title) == related["title"]
    assert parts.authors == ((related["author"],) if related["author"] else ())
    assert parts.via == related.get("via")


def _case_lines(case: dict[str, Any]) -> list[Line]:
    return split_lines("\n".join(case["lines"]) + "\n")


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_head_case(case: dict[str, Any]) -> None:
    parts = read_article_head(_case_lines(case))
    assert _text(parts.title) == case["title"]
    assert _text(parts.subtitle) == case["subtitle"]
    assert parts.authors == tuple(case["authors"])
    assert parts.published == case["published"]
    assert parts.via == case["via"]
    assert {index + 1: role for index, role in parts.roles.items()} == case["roles"]
    first, last = case["body"]
    assert (parts.body_start, parts.body_end) == (first - 1, last - 1)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_long_paragraphs_never_leave_the_body_except_as_dek_bio_or_blurb(case: dict[str, Any]) -> None:
    parts = read_article_head(_case_lines(case))
    for line in _case_lines(case):
        role = parts.roles.get(line.index)
        if len(line.stripped.split()) >= 12 and line.stripped.endswith("."):
            # A site blurb above the title is site header (head.py, _byline_between).
            above_title = parts.title is not None and line.index < parts.title.index
            assert role in (None, "subtitle", "bio") or (role == "site_header" and above_title), line.stripped


def test_empty_segment() -> None:
    assert read_article_head([]) == ArticleParts(None, None, (), None, None, {}, None, None)
    assert read_article_head(split_lines("\n\n  \n")) == ArticleParts(None, None, (), None, None, {}, None, None)


SITE_LINES: list[tuple[list[str], str | None]] = [
    (["Liked it? Take a second to support The Duran on Patreon!"], "The Duran"),
    (["© 2016 The Duran. All rights reserved."], "The Duran"),
    (["Copyright © 2001-2012 Softpedia. Contact us"], "Softpedia"),
    (["©2012 About.com. All rights reserved."], "About.com"),
    (["Donate to Moon of Alabama"], "Moon of Alabama"),
    (["Please support Global Research"], "Global Research"),
    # a photo credit, a copyright line with no name, news text and pronouns name no site
    (["© Abdalrhman Ismail / Reuters"], None),
    (["Copyright © 2011–2012"], None),
    (["Top CEOs donate to Romney over Obama by 4-1 margin"], None),
    (["Donate to us", "support our work on Patreon"], None),
    # the name given most often wins
    (["© 2016 Some Host Inc.", "support The Duran on Patreon", "support The Duran on Patreon"], "The Duran"),
]


@pytest.mark.parametrize(("lines", "site"), SITE_LINES, ids=[" / ".join(l)[:50] for l, _ in SITE_LINES])
def test_find_site(lines: list[str], site: str | None) -> None:
    assert find_site(lines) == site


def test_find_site_takes_a_config_path() -> None:
    assert find_site(["support The Duran on Patreon"], SITES_CONFIG) == "The Duran"
    assert find_site(["support The Duran on Patreon"], str(SITES_CONFIG)) == "The Duran"


def test_bad_site_pattern_names_file_and_pattern(tmp_path: Path) -> None:
    path = tmp_path / "sites.yaml"
    path.write_text("patterns:\n  - 'support (?P<site>.+ on patreon'\nmax_words: 6\n", encoding="utf-8")
    with pytest.raises(ValueError) as error:
        load_site_config(path)
    assert str(path) in str(error.value)
    assert "'support (?P<site>.+ on patreon'" in str(error.value)


def test_site_pattern_without_group_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "sites.yaml"
    path.write_text("patterns:\n  - 'support (.+) on patreon'\nmax_words: 6\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no named group 'site'"):
        load_site_config(path)
