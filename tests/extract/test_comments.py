"""Tests of pipeline.extract.comments: seed pages against their gold, and small pages per format.

Line numbers in gold files and in comment_cases/*.expected.json are 1-based
lines of the text file. A line "removed" by the boilerplate stage is blanked
here (so numbering stays that of the file) and a marker is passed at the
0-based index of the line after it, i.e. "a removed line stood just before it".
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipeline.document import Line, split_lines
from pipeline.extract.comments import (
    DEFAULT_FORMATS_PATH,
    REQUIRED_KEYS,
    CommentFormats,
    CommentSection,
    default_formats,
    find_comment_section,
    load_formats,
)

REPO = Path(__file__).resolve().parents[2]
SEEDS = REPO / "seeds"
GOLD = REPO / "tests" / "gold"
CASES = Path(__file__).resolve().parent / "comment_cases"

# Seed 004's comment widget lines (the boilerplate stage's "comment_widget").
WIDGET_TEXTS = {"Click to comment", "Leave a Reply", "avatar", "Subscribe", "Notify of"}


# --- helpers -----------------------------------------------------------------


def remove_lines(text: str, removed: list[tuple[int, str]]) -> tuple[str, list[tuple[int, str, str]]]:
    """Blank the given 1-based lines and return the markers the boilerplate stage would leave
    (with the removed line's text, as the split stage passes them)."""
    rows = text.split("\n")
    markers = []
    for number, reason in removed:
        markers.append((number, reason, rows[number - 1].strip()))  # 0-based index of the following line
        rows[number - 1] = ""
    return "\n".join(rows), markers


def seed(prefix: str) -> tuple[str, dict[str, Any]]:
    """A seed's text and gold record."""
    text = next(SEEDS.glob(f"{prefix}_*.txt")).read_text(encoding="utf-8")
    gold = json.loads(next(GOLD.glob(f"{prefix}_*.json")).read_text(encoding="utf-8"))
    return text, gold


def seed_without_boilerplate(prefix: str) -> tuple[list[Line], list[tuple[int, str, str]], dict[str, Any]]:
    """A seed's lines with its gold boilerplate lines removed, the markers, and the gold."""
    text, gold = seed(prefix)
    rows = text.split("\n")
    removed = []
    for label in gold["lines"]:
        if label["label"] == "boilerplate":
            stripped = rows[label["n"] - 1].strip()
            reason = "comment_widget" if stripped in WIDGET_TEXTS else "pagination"
            removed.append((label["n"], reason))
    text, markers = remove_lines(text, removed)
    return split_lines(text), markers, gold


def first_last(lines: tuple[Line, ...]) -> list[int] | None:
    """1-based first and last non-blank line numbers, or None."""
    numbers = [line.index + 1 for line in lines if not line.is_blank]
    return [numbers[0], numbers[-1]] if numbers else None


def observed(section: CommentSection | None) -> dict[str, Any] | None:
    """A section in the shape of the expected JSON files."""
    if section is None:
        return None
    return {
        "start_line": section.start + 1,
        "end_line": section.end,
        "other": [[line.index + 1, reason] for line, reason in section.other],
        "comments": [
            {
                "author": c.author,
                "number": c.number,
                "posted": c.posted_raw,
                "depth": c.depth,
                "parent": c.parent,
                "reply_to": list(c.reply_to),
                "header_lines": [line.index + 1 for line in c.header],
                "body_lines": first_last(c.body),
            }
            for c in section.comments
        ],
    }


def assert_partition(lines: list[Line], section: CommentSection) -> None:
    """Every non-blank line of the section is in exactly one comment part or in `other`."""
    owners: dict[int, int] = {}
    for comment in section.comments:
        for line in (*comment.header, *comment.body):
            if not line.is_blank:
                owners[line.index] = owners.get(line.index, 0) + 1
    for line, _ in section.other:
        owners[line.index] = owners.get(line.index, 0) + 1
    for line in lines[section.start:section.end]:
        if not line.is_blank:
            assert owners.get(line.index) == 1, f"line {line.index + 1} owned {owners.get(line.index, 0)} times"
    assert all(section.start <= i < section.end for i in owners)


# --- seeds -------------------------------------------------------------------


def test_seed_000_wordpress_thread_matches_gold() -> None:
    lines, markers, gold = seed_without_boilerplate("000")
    section = find_comment_section(lines, markers)
    assert section is not None
    assert len(section.comments) == 27
    got = [(c.author, c.number, c.parent, c.depth) for c in section.comments]
    # Gold ids are 1-based positions.
    want = [(g["author"], g["number"], None if g["parent"] is None else g["parent"] - 1, g["depth"])
            for g in gold["comments"]]
    assert got == want
    for comment, g in zip(section.comments, gold["comments"], strict=True):
        assert [line.index + 1 for line in comment.header] == ([g["header_line"]] if g["header_line"] else [])
        first, last = first_last(comment.body) or [0, 0]
        assert g["first_line"] <= first and last == g["last_line"]
    assert section.start == 37  # the orphan reply at line 38; the bio above stays article
    assert_partition(lines, section)


def test_seed_002_signatures_match_gold() -> None:
    lines, markers, gold = seed_without_boilerplate("002")
    section = find_comment_section(lines, markers)
    assert section is not None
    assert len(section.comments) == 98
    assert [(c.author, c.posted_raw, c.number) for c in section.comments] == [
        (g["author"], g["posted"], g["number"]) for g in gold["comments"]
    ]
    assert section.comments[0].posted_raw == "Dec 12 2016 14:48 utc"
    position_of = {g["number"]: k for k, g in enumerate(gold["comments"])}
    assert [c.reply_to for c in section.comments] == [
        tuple(position_of[str(n)] for n in g["replies_to_numbers"]) for g in gold["comments"]
    ]
    # The quoted "Posted by: ALberto | Dec 12, 2016 10:54:53 AM | 12" is body text.
    quoting = next(c for c in section.comments if c.number == "54")
    assert quoting.body[0].index + 1 == 419
    assert [c.number for c in section.comments].count("12") == 1
    # The first body starts after the removed "next page »", not in the article.
    assert section.comments[0].body[0].index + 1 == 53
    for comment, g in zip(section.comments, gold["comments"], strict=True):
        assert [line.index + 1 for line in comment.header] == [g["header_line"]]
        assert first_last(comment.body) == [g["first_line"], g["last_line"]]
    assert_partition(lines, section)


def test_seed_002_without_markers_keeps_the_article_out() -> None:
    text, _ = seed("002")
    lines = split_lines(text)
    section = find_comment_section(lines)
    assert section is not None and len(section.comments) == 98
    # "next page »" (line 51) opens the section, the byline (line 49) stays article.
    assert section.start == 50
    assert section.comments[0].body[0].index + 1 == 53
    assert [(line.index + 1, reason) for line, reason in section.other] == [
        (51, "pagination"), (794, "pagination"), (796, "section_end")
    ]
    assert_partition(lines, section)


@pytest.mark.parametrize("prefix", ["001", "003", "004"])
def test_seeds_without_comments_give_none(prefix: str) -> None:
    lines, markers, _ = seed_without_boilerplate(prefix)
    assert find_comment_section(lines, markers) is None


def test_seed_004_widget_markers_give_none() -> None:
    lines, markers, _ = seed_without_boilerplate("004")
    assert ("comment_widget" in {reason for _, reason, _text in markers})
    assert find_comment_section(lines, markers) is None
    text, _ = seed("004")
    assert find_comment_section(split_lines(text)) is None  # widgets still in the text


def test_blank_marker_texts_are_neither_reply_links_nor_trackback_headings() -> None:
    # A marker may carry an empty text (written by hand, or a removed line of spaces): it
    # bounds the section like any removed line, and the thread is found as without it.
    lines, markers, _ = seed_without_boilerplate("002")
    found = find_comment_section(lines, markers)
    blanked = [(index, reason, "") for index, reason, _text in markers]
    assert blanked
    section = find_comment_section(lines, [*blanked, (0, "navigation", "   ")])
    assert section is not None and found is not None
    assert len(section.comments) == len(found.comments) == 98


def test_min_comments() -> None:
    lines, markers, _ = seed_without_boilerplate("000")
    assert find_comment_section(lines, markers, min_comments=27) is not None
    assert find_comment_section(lines, markers, min_comments=28) is None


# --- small pages per format ----------------------------------------------------


def case_names() -> list[str]:
    return sorted(p.name[: -len(".expected.json")] for p in CASES.glob("*.expected.json"))


@pytest.mark.parametrize("name", case_names())
def test_comment_case(name: str) -> None:
    expected = json.loads((CASES / f"{name}.expected.json").read_text(encoding="utf-8"))
    text = (CASES / expected.get("text", f"{name}.txt")).read_text(encoding="utf-8")
    text, markers = remove_lines(text, [(n, reason) for n, reason in expected.get("removed", [])])
    lines = split_lines(text)
    section = find_comment_section(lines, markers)
    assert observed(section) == expected["section"]
    if section is not None:
        assert_partition(lines, section)


def drop_lines(text: str, removed: dict[int, str]) -> tuple[list[Line], list[tuple[int, str, str]], list[int]]:
    """The page as the boilerplate stage leaves it: the removed 1-based lines gone (their blank
    neighbours stay), a marker at the index of the next kept line; and the 1-based line
    number in `text` of each kept line."""
    kept: list[str] = []
    numbers: list[int] = []
    markers: list[tuple[int, str, str]] = []
    for number, row in enumerate(text.split("\n"), 1):
        if number in removed:
            markers.append((len(kept), removed[number], row.strip()))
        else:
            kept.append(row)
            numbers.append(number)
    return split_lines("\n".join(kept)), markers, numbers


def renumbered(section: dict[str, Any] | None, number: Callable[[int], int]) -> dict[str, Any] | None:
    """An observed section with each line number L replaced by number(L)."""
    if section is None:
        return None
    return {
        "start_line": number(section["start_line"]),
        "end_line": number(section["end_line"]),
        "other": [[number(n), reason] for n, reason in section["other"]],
        "comments": [{**c, "header_lines": [number(n) for n in c["header_lines"]],
                      "body_lines": [number(n) for n in c["body_lines"]] if c["body_lines"] else None}
                     for c in section["comments"]],
    }


def sections_in_both_layouts(text: str, removed: dict[int, str]) -> tuple[Any, Any]:
    """The observed section of a page with its removed lines dropped, a block per line and with
    a blank line between blocks, both in the page's own line numbers."""
    lines, markers, numbers = drop_lines(text, removed)
    given = renumbered(observed(find_comment_section(lines, markers)), lambda n: numbers[n - 1])
    spaced = "\n\n".join(text.split("\n"))  # line n of `text` is line 2n - 1 here
    lines, markers, numbers = drop_lines(spaced, {2 * n - 1: reason for n, reason in removed.items()})
    blank = renumbered(observed(find_comment_section(lines, markers)), lambda n: (numbers[n - 1] + 1) // 2)
    return given, blank


@pytest.mark.parametrize("name", case_names())
def test_comment_case_reads_the_same_with_blank_lines_between_blocks(name: str) -> None:
    # Scrapers write a block per line or a blank line between blocks; the boilerplate stage
    # drops a removed line and leaves its blank neighbours. The section must not depend on which.
    expected = json.loads((CASES / f"{name}.expected.json").read_text(encoding="utf-8"))
    text = (CASES / expected.get("text", f"{name}.txt")).read_text(encoding="utf-8")
    given, blank = sections_in_both_layouts(text, {n: reason for n, reason in expected.get("removed", [])})
    assert blank == given


def test_markers_out_of_order_on_blank_lines_read_the_same() -> None:
    # The stage writes markers in line order; written by hand they may come in any order, and a
    # marker on a blank line is still read at the next non-blank line.
    text = ("Ferry timetable changes\n\nThe winter timetable starts on Monday, with two crossings "
            "fewer on weekdays.\n\n\n\nMara Lind\n\nNovember 6th, 2012 at 1:09 pm\n\n"
            "The early crossing was the only one that got me to work on time.\n\n\n")
    lines = split_lines(text)
    markers = [(3, "comments_heading", "One Response to “Ferry timetable changes”"), (4, "template", "1"),
               (12, "comment_widget", "Leave a Reply")]
    in_order = observed(find_comment_section(lines, markers))
    assert in_order is not None and [c["author"] for c in in_order["comments"]] == ["Mara Lind"]
    assert observed(find_comment_section(lines, [markers[2], *markers[:2]])) == in_order


def test_cases_cover_the_required_formats() -> None:
    assert {"wordpress_nested", "signature_after_body", "blog_says_date_reply", "widget_no_comments"} <= set(
        case_names())


def test_comment_lines_are_the_input_lines() -> None:
    lines = split_lines((CASES / "blog_says_date_reply.txt").read_text(encoding="utf-8"))
    section = find_comment_section(lines)
    assert section is not None
    for comment in section.comments:
        for line in (*comment.header, *comment.body):
            assert line is lines[line.index]


# --- the formats file ------------------------------------------------------------


def write_formats(tmp_path: Path, **overrides: object) -> Path:
    data: dict[str, object] = {key: [] for key in REQUIRED_KEYS}
    data["mention_patterns"] = [r"@(?P<number>\d+)"]
    data.update(overrides)
    path = tmp_path / "formats.yaml"
    path.write_text(json.dumps(data), encoding="utf-8")  # JSON is YAML
    return path


def test_load_formats_reads_and_expands_macros(tmp_path: Path) -> None:
    path = write_formats(tmp_path, macros={"name": r"\w+"}, header_patterns=[r"^(?P<author>{{name}}) says$"])
    formats = load_formats(path)
    assert isinstance(formats, CommentFormats)
    assert formats.header_patterns == (r"^(?P<author>\w+) says$",)
    assert formats.widget_patterns == ()


def test_load_formats_rejects_an_invalid_pattern(tmp_path: Path) -> None:
    path = write_formats(tmp_path, header_patterns=["(unclosed"])
    with pytest.raises(ValueError, match=r"formats\.yaml: invalid pattern '\(unclosed': "):
        load_formats(path)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"end_patterns": None, "bogus_patterns": []}, "unknown keys"),
        ({"mention_patterns": ["@\\d+"]}, "needs a 'number' or 'name' group"),
        ({"header_patterns": ["{{nope}}"]}, "unknown macro"),
        ({"header_patterns": "not a list"}, "must be a list"),
    ],
)
def test_load_formats_rejects_bad_files(tmp_path: Path, overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_formats(write_formats(tmp_path, **overrides))


def test_load_formats_requires_the_six_keys(tmp_path: Path) -> None:
    path = tmp_path / "formats.yaml"
    path.write_text("header_patterns: []\n", encoding="utf-8")
    with pytest.raises(ValueError, match="missing keys"):
        load_formats(path)


def test_formats_load_on_first_use_and_each_pattern_is_parsed_once() -> None:
    # A fresh process: importing compiles nothing; loading (validation) parses and compiles each
    # pattern, and split's warm-up (compile_pattern's shape check, the prefilters) reads that
    # parse rather than parsing again, even when re's own cache has forgotten the pattern.
    code = (
        "import collections, re._parser as p\n"
        "count = collections.Counter()\n"
        "parse = p.parse\n"
        "def counted(text, flags=0, state=None):\n"
        "    count[text] += 1\n"
        "    return parse(text, flags, state)\n"
        "p.parse = counted\n"
        "from dataclasses import fields\n"
        "import re, pipeline.extract.comments as c, pipeline.stages.split as s\n"
        "print(c._formats_from_text.cache_info().currsize)\n"
        "c.default_formats()\n"
        "re.purge()\n"  # (as a run's other stages do: re's own cache forgets)
        "s.warm(s.Config())\n"
        "formats = c.default_formats()\n"
        "texts = {t for f in fields(formats) for t in getattr(formats, f.name)}\n"
        "print(len(texts), max(count[t] for t in texts))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    loaded, patterns, parses = map(int, out.stdout.split())
    assert (loaded, parses) == (0, 1) and patterns > 40


def test_default_formats_come_from_the_config_file() -> None:
    assert DEFAULT_FORMATS_PATH == REPO / "configs" / "comments" / "formats.yaml"
    assert load_formats(REPO / "configs" / "comments" / "formats.yaml") == default_formats()
    assert all(getattr(default_formats(), key) for key in REQUIRED_KEYS)


def test_custom_formats_are_used() -> None:
    text = ("Intro text.\n\n3 comments\n\n"
            "Ann writes in:\nFirst comment here, fine.\nBen writes in:\nSecond one, also fine.\n")
    lines = split_lines(text)
    assert find_comment_section(lines) is None  # "writes in:" is no default header
    formats = CommentFormats(**{
        **{f: getattr(default_formats(), f) for f in CommentFormats.__dataclass_fields__},
        "header_patterns": (r"^(?P<author>\w+) writes in:$",),
    })
    section = find_comment_section(lines, formats=formats)
    assert section is not None
    assert [c.author for c in section.comments] == ["Ann", "Ben"]


# --- robustness ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "a " * 99 + "says",
        "On " + "1 " * 95 + "said",
        "Posted by: " + "a|" * 90,
        "12/12/12 " * 22,
        "Jan 1, 2012 at 1:00 pm " * 8,
        "@1" * 100,
        "x" * 5000,
    ],
)
def test_adversarial_lines_stay_fast(line: str) -> None:
    lines = split_lines((line + "\n") * 2000)
    started = time.perf_counter()
    find_comment_section(lines)
    assert time.perf_counter() - started < 5.0


def test_empty_page() -> None:
    assert find_comment_section([]) is None
    assert find_comment_section(split_lines("\n\n\n")) is None
