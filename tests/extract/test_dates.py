"""Table-driven tests of pipeline.extract.dates; the cases are in cases/dates.yaml."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.extract.dates import find_date, parse_date, strip_weekday

CASES: dict[str, list[dict[str, Any]]] = yaml.safe_load(
    (Path(__file__).parent / "cases" / "dates.yaml").read_text(encoding="utf-8")
)
# Generous bound for one call on the adversarial inputs below; a quadratic pattern takes seconds.
LINEAR_TIME_BUDGET_S = 0.5


@pytest.mark.parametrize("case", CASES["parse_date"], ids=[c["text"] or "<empty>" for c in CASES["parse_date"]])
def test_parse_date(case: dict[str, Any]) -> None:
    assert parse_date(case["text"]) == case["iso"]


@pytest.mark.parametrize("case", CASES["find_date"], ids=[c["text"] for c in CASES["find_date"]])
def test_find_date(case: dict[str, Any]) -> None:
    found = find_date(case["text"])
    if case["iso"] is None:
        assert found is None
        return
    assert found is not None
    iso, start, end = found
    assert iso == case["iso"]
    assert case["text"][start:end] == case["match"]


def test_find_date_returns_the_first_of_two_dates() -> None:
    text = "Published 12 December 2016, updated 13 December 2016"
    assert find_date(text) == ("2016-12-12", 10, 26)


def test_strip_weekday() -> None:
    assert strip_weekday("Monday, December 12, 2016") == "December 12, 2016"
    assert strip_weekday("Mardi 3 mai 2016") == "3 mai 2016"
    assert strip_weekday("Mondays are long") == "Mondays are long"


@pytest.mark.parametrize(
    "text",
    [
        "December 12, 2016" + " " * 20000 + "x",
        "Dec" + " " * 20000 + "12",
        "3:46 AM" + " " * 20000 + "x",
        "12 Dec " * 4000,
        "1:1" * 10000,
        "2016-12-12T" * 3000,
        "12/12/" * 5000,
        "December 12, 2016 ," * 2000,
    ],
    ids=[
        "spaces-after-date", "spaces-in-date", "spaces-after-time", "repeated-dmy",
        "colons", "iso-t", "slashes", "commas",
    ],
)
def test_patterns_run_in_linear_time(text: str) -> None:
    started = time.process_time()  # CPU time: a loaded machine's waits are not backtracking
    find_date(text)
    parse_date(text)
    assert time.process_time() - started < LINEAR_TIME_BUDGET_S
