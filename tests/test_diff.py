"""`python -m pipeline diff VERSION_A VERSION_B`: rows added, removed, changed; config per stage."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli import main
from pipeline.config import load_config
from pipeline.diff import compare, config_changes, diff_versions
from pipeline.io import read_jsonl
from pipeline.runner import run

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO / "seeds"
CONFIG = REPO / "configs" / "default.yaml"
PAGE_000 = "000_3ff87b482df5ac51"
PAGE_004 = "004_093dd67b94dec410"


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("diff")
    run(load_config(CONFIG), SEEDS, base / "a", progress=False)
    run(load_config(CONFIG, ["split.related=drop", "corpus.version=0.2.0", "langid.min_chars=60"]),
        SEEDS, base / "b", progress=False)
    return base / "a" / "corpus" / "0.1.0", base / "b" / "corpus" / "0.2.0"


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def test_diff_names_removed_articles_and_config_per_stage(versions: tuple[Path, Path],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    a, b = versions
    assert main(["diff", str(a), str(b)]) == 0
    text = capsys.readouterr().out
    assert "articles: 8 → 5; 0 added, 3 removed" in text
    for k in (1, 2, 3):
        assert f"  - {PAGE_004}#r{k}" in text
    assert "[split]\n    related: \"keep\" → \"drop\"" in text
    assert "[langid]\n    min_chars: 40 → 60" in text
    assert "[corpus]\n    version: \"0.1.0\" → \"0.2.0\"" in text
    assert "[clean]" not in text


def test_changed_rows_name_their_fields(versions: tuple[Path, Path], tmp_path: Path) -> None:
    a = versions[0]
    b = tmp_path / "b"
    shutil.copytree(a, b)
    articles = list(read_jsonl(b / "articles.jsonl"))
    old_title = articles[1]["title"]
    articles[0]["text"] = articles[0]["text"].replace("Aleppo", "Alep", 1)
    articles[1]["title"] = "A new title"
    write_rows(b / "articles.jsonl", articles)
    comments = list(read_jsonl(b / "comments.jsonl"))
    removed = comments.pop(3)
    added = {**comments[0], "id": f"{PAGE_000}#c99", "text": "New."}
    comments[5]["depth"] = 7
    write_rows(b / "comments.jsonl", comments + [added])
    diff = compare(a, b)
    articles_diff, comments_diff = diff.rows
    assert articles_diff.changed == {articles[0]["id"]: ["text"], articles[1]["id"]: ["title"]}
    assert comments_diff.added == [f"{PAGE_000}#c99"] and comments_diff.removed == [removed["id"]]
    assert comments_diff.changed == {comments[5]["id"]: ["depth"]}
    text = diff_versions(a, b)
    assert f"~ {articles[0]['id']}: text (" in text and "first difference at" in text
    assert f"~ {articles[1]['id']}: title: {json.dumps(old_title)} → \"A new title\"" in text
    assert "changed fields: depth 1" in text
    assert "config: identical" in text


def test_same_version_has_no_differences(versions: tuple[Path, Path]) -> None:
    a = versions[0]
    text = diff_versions(a, a)
    assert "articles: 8 → 8; 0 added, 0 removed, 0 changed" in text
    assert "comments: 125 → 125; 0 added, 0 removed, 0 changed" in text
    assert "config: identical" in text


def test_config_changes_cover_nested_added_and_removed_keys() -> None:
    a = {"split": {"related": "keep", "old": 1}, "clean": {"x": [1, 2]}}
    b = {"split": {"related": "drop"}, "clean": {"x": [1, 2]}, "new": {"k": {"deep": True}}}
    changes = config_changes(a, b)
    assert set(changes) == {"split", "new"}
    assert [(k, v) for k, _, v in changes["split"] if k == "related"] == [("related", "drop")]
    assert [k for k, _, _ in changes["new"]] == ["k.deep"]


def test_not_a_version_folder_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", str(tmp_path), str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no manifest.json" in err


def test_diff_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["diff", "--help"])
    assert exit_info.value.code == 0
    assert "VERSION_A" in capsys.readouterr().out
