"""The shortcuts taken for speed in pipeline/extract give what the plain computation gives."""

from __future__ import annotations

import random
import re
import subprocess
import sys
from pathlib import Path

import yaml

from pipeline.document import split_lines
from pipeline.extract import bylines, dates, head

DATE_CASES = yaml.safe_load((Path(__file__).parent / "cases" / "dates.yaml").read_text(encoding="utf-8"))


def _possible_one_by_one(text: str) -> list[tuple[str, object]]:
    """dates._possible the long way: each pattern's needs checked in turn."""
    if not dates._has_year(text):  # every layout has a year (two digits only in a short line)
        return []
    return [form_pattern for form_pattern, needs in zip(dates._PATTERNS, dates._PATTERN_NEEDS, strict=True)
            if all(need(text) for need in needs)]


def test_possible_patterns_table_matches_checking_each_need() -> None:
    texts = [case["text"] or "" for section in DATE_CASES.values() for case in section]
    texts += ["Posted 2016-12-12T14:18", "12/03/2016 14h18", "2016/3/28", "On 4:09 pm, 12.3.2016",
              "Déc 2016", "nothing 1999", "14:18 2016", "ÉTÉ 2016-01-01", "2016", "Nov 6th '12 by Jo",
              "8 août ’12 14h18", "'12 " + "x" * 120]
    seen = set()
    for text in texts:
        expected = _possible_one_by_one(text)
        assert list(dates._possible(text)) == expected
        seen.add(len(expected))
    assert len(seen) > 3  # the texts reach several combinations of needs


def test_first_content_words_of_long_paragraphs_are_those_of_the_whole_text() -> None:
    # Far longer than one chunk, every word different: a word cut in two would show.
    paragraph = " ".join(f"Élan{i}’s co-op{i} x.y Zürich{i} ab ABCD_{i}" for i in range(3000))
    lines = split_lines(f"Short opening line here\n{paragraph}\n{paragraph[:3001]}")
    everything = [w for line in lines for w in head._content_words(line.text)]
    for limit in (1, 3, 400, 5000, 10**6):
        assert head._first_content_words(lines, limit) == frozenset(everything[:limit])
    assert len(head._first_content_words(lines, 10**6)) > 3


def test_has_words_agrees_with_a_full_word_count() -> None:
    # head._has_words counts a long paragraph's opening first; it must answer as a full count does.
    texts = ["", "one", "a b c", " ".join(["word"] * 11), " ".join(["word"] * 12),
             "x" * 300 + " a b c", "-- " * 150 + "one two", ("co-op it's U.S. " * 40).strip(),
             " ".join(f"w{i}" for i in range(100)), "ab" * 150 + " cd"]
    for text in texts:
        for at_least in (0, 1, 3, 12, 13, 60, 200):
            assert head._has_words(text, at_least) == (head.word_count(text) >= at_least), (text[:40], at_least)


def _dateline_the_long_way(text: str) -> bool:
    """head.is_dateline without its shortcut for long lines."""
    if dates.parse_date(text) is not None:
        return True
    found = dates.find_date(text)
    if found is None:
        return False
    _, start, end = found
    if head.word_count(text[:start] + " " + text[end:]) > head.DATELINE_MAX_EXTRA_WORDS:
        return False
    after = text[end:]
    return head.word_count(after) == 0 or not head._ends_sentence(after)


LONG_DATES = ["Tuesday 12th of December 2016 at 2:18:00 p. m. UTC+05:30",
              "2:18:00 a. m. GMT-03:30 on 3rd of March 2015", "2016-12-12T14:18:59 z",
              "December 12, 2016 at 4:09 pm", "28/03/2016 14h18 CEST", "lundi 28 mars 2016 à 14h18"]


def test_the_longest_dates_span_fewer_words_than_the_dateline_shortcut_assumes() -> None:
    runs = re.compile(r"[^\W_]+")  # runs of letters and digits
    for text in LONG_DATES:
        found = dates.find_date(text)
        assert found is not None, text
        assert len(runs.findall(text[found[1]:found[2]])) <= head.MAX_DATE_WORDS - 2, text
        assert len(runs.findall(text)) <= head.MAX_DATE_WORDS, text


def test_dateline_shortcut_agrees_with_looking_for_the_date() -> None:
    rng = random.Random(8)
    words = ["Updated", "on", "the", "rebels", "said", "|", "3", "comments", "Posted", "by", "—", "(AP)", "x.y"]
    seen = {True: 0, False: 0}
    for _ in range(1500):
        before = " ".join(rng.choice(words) for _ in range(rng.randrange(0, 14)))
        after = " ".join(rng.choice(words) for _ in range(rng.randrange(0, 14)))
        text = " ".join(part for part in (before, rng.choice(LONG_DATES), after) if part) + rng.choice(["", ".", " ."])
        expected = _dateline_the_long_way(text)
        assert head.is_dateline(text) == expected, text
        seen[expected] += 1
    assert seen[True] > 20 and seen[False] > 20


def test_remembered_widget_lines_name_the_site_as_a_fresh_search_does() -> None:
    # find_site remembers what each line names; pages sharing lines, in other orders and
    # among other candidates, must get what a config with nothing remembered gives.
    lines = ["support The Duran on Patreon", "© 2016 Some Host Inc.", "Donate to Moon of Alabama",
             "Subscribe to the Global Research newsletter", "support our work on Patreon", "Donate to us",
             "Please support Consortium News", "news text about Patreon", "Copyright © 2011–2012"]
    rng = random.Random(3)
    shared = head.load_site_config()
    for _ in range(200):
        page = [rng.choice(lines) for _ in range(rng.randrange(1, 8))]
        assert head.find_site(page, shared) == head.find_site(page, head.load_site_config()), page
    assert shared.named  # (the lines were remembered)


def test_byline_word_limit_read_without_splitting_a_paragraph_whole() -> None:
    # _parse_byline rejects a line of more than MAX_BYLINE_WORDS words before normalising it.
    for words in range(bylines.MAX_BYLINE_WORDS - 2, bylines.MAX_BYLINE_WORDS + 3):
        for line in (" ".join(["Smith"] * words), "  By " + "\u00a0 Ann\t" * (words - 1) + " "):
            over = len(line.split()) > bylines.MAX_BYLINE_WORDS
            assert (len(line.split(None, bylines.MAX_BYLINE_WORDS)) > bylines.MAX_BYLINE_WORDS) == over, line


def test_split_warm_compiles_the_comment_formats() -> None:
    # Worker processes are forked after `warm`: they must find the formats compiled. A fresh
    # process, so that no earlier test compiled them; importing alone compiles nothing.
    code = ("import pipeline.extract.comments as c, pipeline.stages.split as s; n = c._compile_cached.cache_info; "
            "before = n().currsize; s.warm(s.Config()); print(before, n().currsize, n().misses)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "1", "1"]
