"""Table-driven tests of pipeline.extract.bylines; the cases are in cases/bylines.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.extract.bylines import BYLINES_CONFIG, Byline, load_byline_config, looks_like_name, parse_byline

CASES: dict[str, list[dict[str, Any]]] = yaml.safe_load(
    (Path(__file__).parent / "cases" / "bylines.yaml").read_text(encoding="utf-8")
)


def _expected(case: dict[str, Any]) -> Byline | None:
    spec = case["byline"]
    if spec is None:
        return None
    return Byline(tuple(spec["authors"]), spec["published"], spec["via"], spec["kind"])


@pytest.mark.parametrize("case", CASES["parse_byline"], ids=[c["line"] for c in CASES["parse_byline"]])
def test_parse_byline(case: dict[str, Any]) -> None:
    assert parse_byline(case["line"], allow_lone_name=case.get("lone", False)) == _expected(case)


@pytest.mark.parametrize("case", CASES["looks_like_name"], ids=[c["line"] for c in CASES["looks_like_name"]])
def test_looks_like_name(case: dict[str, Any]) -> None:
    assert looks_like_name(case["line"]) is case["name"]


def test_shipped_config_loads() -> None:
    config = load_byline_config(BYLINES_CONFIG)
    kinds = {kind for kind, _ in config.prefixes}
    assert {"by", "par", "posted_by", "authored_by", "written_by", "via"} <= kinds


def _write_config(tmp_path: Path, replace: tuple[str, str]) -> Path:
    text = BYLINES_CONFIG.read_text(encoding="utf-8")
    assert replace[0] in text
    path = tmp_path / "bylines.yaml"
    path.write_text(text.replace(replace[0], replace[1], 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "section", "pattern"),
    [
        ("pattern: 'posted\\s+by'", "pattern: 'posted(\\s+by'", "prefixes", "posted(\\s+by"),
        ("  - '\\s+for\\s+'", "  - '\\s+for[\\s+'", "terminators", "\\s+for[\\s+"),
        ("  - '\\s+and\\s+'", "  - '\\s+and)\\s+'", "connectors", "\\s+and)\\s+"),
    ],
    ids=["prefix", "terminator", "connector"],
)
def test_bad_regex_names_file_and_pattern(tmp_path: Path, old: str, new: str, section: str, pattern: str) -> None:
    path = _write_config(tmp_path, (old, new))
    with pytest.raises(ValueError) as error:
        load_byline_config(path)
    message = str(error.value)
    assert str(path) in message
    assert section in message
    assert repr(pattern) in message


def test_missing_section_names_file(tmp_path: Path) -> None:
    path = _write_config(tmp_path, ("handle_kinds:", "handle_kinds_typo:"))
    with pytest.raises(ValueError, match="'handle_kinds' must be a list of strings") as error:
        load_byline_config(path)
    assert str(path) in str(error.value)
