"""The benchmark corpus generator: deterministic, and its pages parse as intended."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from pipeline.bench.generate import SITES, generate, parse_size
from pipeline.config import load_config
from pipeline.io import read_jsonl
from pipeline.runner import run

REPO = Path(__file__).resolve().parents[2]
TINY = 60_000  # bytes: a handful of pages
FORMATS = {site.slug: site.comments for site in SITES}


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_parse_size() -> None:
    assert parse_size("20MB") == 20_000_000
    assert parse_size("1GB") == 10**9
    assert parse_size("500kb") == 500_000
    with pytest.raises(SystemExit):
        parse_size("lots")


def test_same_seed_and_size_give_identical_bytes(tmp_path: Path) -> None:
    generate(tmp_path / "a", TINY, seed=3, source="seeds")
    generate(tmp_path / "b", TINY, seed=3, source="seeds")
    a, b = files(tmp_path / "a"), files(tmp_path / "b")
    assert len(a) > 3
    assert a == b


def test_identical_across_processes_with_other_hash_seeds(tmp_path: Path) -> None:
    # Set and dict order of strings changes with PYTHONHASHSEED: the pages must not.
    for name, hash_seed in (("a", "1"), ("b", "2")):
        subprocess.run([sys.executable, "-m", "pipeline.bench.generate", "--size", str(TINY), "--seed", "5",
                        "--source", "seeds", "--out", str(tmp_path / name)], cwd=REPO, check=True,
                       capture_output=True, env={**os.environ, "PYTHONHASHSEED": hash_seed})
    assert files(tmp_path / "a") == files(tmp_path / "b")


def test_different_seed_gives_different_pages(tmp_path: Path) -> None:
    generate(tmp_path / "a", TINY, seed=0, source="seeds")
    generate(tmp_path / "b", TINY, seed=1, source="seeds")
    pages_a = {k: v for k, v in files(tmp_path / "a").items() if k.endswith(".txt")}
    pages_b = {k: v for k, v in files(tmp_path / "b").items() if k.endswith(".txt")}
    assert pages_a != pages_b
    assert not set(pages_a.values()) & set(pages_b.values())


def test_smaller_corpus_is_a_prefix_of_a_larger_one(tmp_path: Path) -> None:
    small = generate(tmp_path / "small", TINY, seed=0, source="seeds")
    generate(tmp_path / "large", 2 * TINY, seed=0, source="seeds")
    large = files(tmp_path / "large")
    for path, data in files(tmp_path / "small").items():
        if path != "generated.json":
            assert large[path] == data
    assert small["bytes"] >= TINY


def test_pipeline_finds_the_comment_threads_and_the_syndicated_copies(tmp_path: Path) -> None:
    summary = generate(tmp_path / "corpus", 150_000, seed=0, source="seeds")
    assert summary["syndicated"], "the tiny corpus should hold syndicated copies"
    assert set(summary["comments"]) == {"wordpress", "signature", "blog"}
    config = load_config(REPO / "configs" / "default.yaml", ["dedup.mode=mark"])
    run(config, tmp_path / "corpus", tmp_path / "out", progress=False)
    version = (tmp_path / "out" / "corpus" / "LATEST").read_text(encoding="utf-8").strip()
    corpus = tmp_path / "out" / "corpus" / version

    comments = list(read_jsonl(corpus / "comments.jsonl"))
    found = Counter(FORMATS[row["source"].split("/")[0]] for row in comments)
    for name, made in summary["comments"].items():
        assert abs(found[name] - made) <= 0.1 * made, (name, found[name], made)
    assert any(row["depth"] > 0 for row in comments), "nested replies"
    assert any(row["reply_to"] for row in comments), "@N replies of the signature format"

    articles = {row["source"]: row for row in read_jsonl(corpus / "articles.jsonl") if row["role"] == "main"}
    for copy, original in summary["syndicated"]:
        assert articles[copy]["duplicate_of"] == articles[original]["id"], copy
    assert not articles[summary["syndicated"][0][1]]["duplicate_of"]
