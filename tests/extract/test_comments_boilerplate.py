"""The boilerplate stage's verdicts on comment-section lines (comment_cases/boilerplate_lines.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.stages.boilerplate import Config, classify_text

CASES = Path(__file__).resolve().parent / "comment_cases" / "boilerplate_lines.yaml"


def load_cases() -> list[dict[str, Any]]:
    return list(yaml.safe_load(CASES.read_text(encoding="utf-8")))


@pytest.mark.parametrize("case", load_cases(), ids=lambda case: case["line"][:40])
def test_comment_line_verdict(case: dict[str, Any]) -> None:
    _, cls, reason = classify_text(case["line"], Config())
    assert (cls, reason) == (case["class"], case.get("reason"))
