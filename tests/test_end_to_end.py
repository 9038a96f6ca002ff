"""The whole pipeline on the seeds, checked against the hand-made gold in tests/gold."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli import main
from pipeline.config import load_config
from pipeline.io import read_jsonl
from pipeline.runner import run

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO / "seeds"
GOLD = {path.stem: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted((REPO / "tests" / "gold").glob("*.json"))}
DROP = {"boilerplate", "comment", "comment_header", "related"}
MARK = re.compile(r"^\s*(?:\d{1,4}[.)]|[•·*])?\s*")


def norm(text: str) -> str:
    """Compare lines as a reader would: bullets, case of spacing and entities aside."""
    return " ".join(MARK.sub("", text).split())


@pytest.fixture(scope="module")
def output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "data"
    run(load_config(REPO / "configs" / "default.yaml"), SEEDS, out, progress=False)
    return out


@pytest.fixture(scope="module")
def corpus(output: Path) -> Path:
    version = (output / "corpus" / "LATEST").read_text(encoding="utf-8").strip()
    return output / "corpus" / version


def rows(corpus: Path, name: str) -> list[dict[str, Any]]:
    return list(read_jsonl(corpus / name))


def test_five_main_articles_and_three_related(corpus: Path) -> None:
    articles = rows(corpus, "articles.jsonl")
    main_sources = sorted(a["source"] for a in articles if a["role"] == "main")
    assert main_sources == sorted(f"{stem}.txt" for stem in GOLD)
    related = [a for a in articles if a["role"] == "related"]
    assert [a["source"] for a in related] == ["004_093dd67b94dec410.txt"] * 3
    gold_titles = [r["title"] for r in GOLD["004_093dd67b94dec410"]["related_articles"]]
    assert [a["title"] for a in related] == gold_titles


@pytest.mark.parametrize("stem", sorted(GOLD))
def test_main_article_holds_article_lines_and_nothing_dropped(corpus: Path, stem: str) -> None:
    article = next(a for a in rows(corpus, "articles.jsonl")
                   if a["source"] == f"{stem}.txt" and a["role"] == "main")
    paragraphs = {norm(p) for p in article["text"].split("\n\n")}
    lines = (SEEDS / f"{stem}.txt").read_text(encoding="utf-8").split("\n")
    leaked = [g["n"] for g in GOLD[stem]["lines"]
              if g["label"] in DROP and norm(lines[g["n"] - 1]) in paragraphs]
    missing = [g["n"] for g in GOLD[stem]["lines"]
               if g["label"] == "article" and norm(lines[g["n"] - 1]) not in paragraphs]
    assert leaked == []
    assert missing == []


@pytest.mark.parametrize("stem", sorted(GOLD))
def test_main_article_metadata_matches_gold(corpus: Path, stem: str) -> None:
    article = next(a for a in rows(corpus, "articles.jsonl")
                   if a["source"] == f"{stem}.txt" and a["role"] == "main")
    gold = GOLD[stem]["metadata"]
    assert article["title"] == gold["title"]
    assert article["authors"] == ([gold["author"]] if gold["author"] else [])
    assert article["published"] == gold["published"]
    assert article["language"] == gold["language"]
    # 002's site is named by the known-outlets list (its masthead "Moon of Alabama Brecht quote").
    assert article["site"] == gold["site"]


def test_related_articles_metadata_matches_gold(corpus: Path) -> None:
    related = sorted((a for a in rows(corpus, "articles.jsonl") if a["role"] == "related"), key=lambda a: a["id"])
    gold = GOLD["004_093dd67b94dec410"]["related_articles"]
    assert [(a["title"], a["authors"], a["via"]) for a in related] == \
        [(g["title"], [g["author"]] if g["author"] else [], g.get("via")) for g in gold]


def test_comment_threads(corpus: Path) -> None:
    comments = rows(corpus, "comments.jsonl")
    per_page: dict[str, list[dict[str, Any]]] = {}
    for comment in comments:
        per_page.setdefault(comment["article_id"], []).append(comment)
    assert len(per_page.get("000_3ff87b482df5ac51", [])) == 27
    assert len(per_page.get("002_ab9f896ab881ce26", [])) == 98
    assert set(per_page) == {"000_3ff87b482df5ac51", "002_ab9f896ab881ce26"}
    gold = GOLD["000_3ff87b482df5ac51"]["comments"]
    got = sorted(per_page["000_3ff87b482df5ac51"], key=lambda c: c["position"])
    ids = {c["id"]: i + 1 for i, c in enumerate(got)}
    assert [(c["author"], c["number"], c["depth"]) for c in got] == \
        [(g["author"], g["number"], g["depth"]) for g in gold]
    assert [ids.get(c["parent_id"]) for c in got] == [g["parent"] for g in gold]


def test_every_input_file_is_in_the_manifest(corpus: Path) -> None:
    manifest = json.loads((corpus / "manifest.json").read_text(encoding="utf-8"))
    assert sorted(i["source"] for i in manifest["inputs"]) == sorted(p.name for p in SEEDS.glob("*.txt"))
    assert {i["status"] for i in manifest["inputs"]} == {"included"}
    assert manifest["outputs"]["articles.jsonl"]["records"] == len(rows(corpus, "articles.jsonl"))


def test_stage_folders_are_written_for_audit(output: Path) -> None:
    folders = sorted(p.name for p in (output / "stages").iterdir())
    assert folders == ["01-ingest", "02-clean", "03-boilerplate", "04-split", "05-metadata",
                       "06-dedup", "07-langid"]
    for folder in folders:
        stats = json.loads((output / "stages" / folder / "stats.json").read_text(encoding="utf-8"))
        assert stats["documents_in"] >= 5
    boilerplate = json.loads((output / "stages/03-boilerplate/stats.json").read_text(encoding="utf-8"))
    assert boilerplate["characters_out"] < boilerplate["characters_in"]


def test_datasets_loads_both_configs_offline(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    datasets = pytest.importorskip("datasets")
    cache = corpus.parent.parent / "hf-cache"
    articles = datasets.load_dataset(str(corpus), split="train", cache_dir=str(cache))
    comments = datasets.load_dataset(str(corpus), "comments", split="train", cache_dir=str(cache))
    assert articles.num_rows == len(rows(corpus, "articles.jsonl"))
    assert comments.num_rows == len(rows(corpus, "comments.jsonl"))
    assert articles.features["published"].dtype == "string"
    assert articles.features["n_words"].dtype == "int64"
    assert comments.features["depth"].dtype == "int64"
    assert set(articles.column_names) >= {"id", "source", "source_sha256", "role", "title", "subtitle",
                                          "authors", "published", "site", "language",
                                          "language_score", "text", "n_words", "n_sentences",
                                          "n_comments", "duplicate_of"}
    shutil.rmtree(cache, ignore_errors=True)


def test_second_run_is_cached_and_byte_identical(output: Path, corpus: Path, tmp_path: Path) -> None:
    before = {p.name: p.read_bytes() for p in corpus.iterdir()}
    again = run(load_config(REPO / "configs" / "default.yaml"), SEEDS, output, progress=False)
    assert again.stages_run == []
    assert again.corpus_status == "unchanged"
    fresh = tmp_path / "fresh"
    run(load_config(REPO / "configs" / "default.yaml"), SEEDS, fresh, progress=False)
    for name in ("articles.jsonl", "comments.jsonl", "README.md"):
        assert (fresh / "corpus" / corpus.name / name).read_bytes() == before[name]


def test_version_with_other_content_needs_force(output: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    args = ["run", "--config", str(REPO / "configs/default.yaml"), "--input", str(SEEDS),
            "--output", str(out), "--quiet"]
    assert main(args) == 0
    assert main(args + ["--set", "split.related=drop"]) == 2
    assert "exists with different content" in capsys.readouterr().err
    assert main(args + ["--set", "split.related=drop", "--force"]) == 0
    assert main(["verify", str(out / "corpus" / "0.1.0")]) == 0
    articles = out / "corpus" / "0.1.0" / "articles.jsonl"
    articles.write_text(articles.read_text(encoding="utf-8")[:-200], encoding="utf-8")
    assert main(["verify", str(out / "corpus" / "0.1.0")]) == 1


def test_a_page_a_stage_fails_on_is_quarantined_and_the_run_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.stages import clean

    original = clean.process

    def fail_on_one(record: dict[str, Any], config: clean.Config) -> Any:
        if record["id"] == "001_1cc2844c57b19c1d":
            raise RuntimeError("boom")
        return original(record, config)

    monkeypatch.setattr(clean, "process", fail_on_one)
    out = tmp_path / "out"
    result = run(load_config(REPO / "configs" / "default.yaml"), SEEDS, out, progress=False)
    fates = {fate["source"]: fate for fate in result.fates}
    assert fates["001_1cc2844c57b19c1d.txt"]["status"] == "quarantined"
    assert "stage clean: RuntimeError: boom" in fates["001_1cc2844c57b19c1d.txt"]["message"]
    assert sum(f["status"] == "included" for f in fates.values()) == 4
    manifest = json.loads((result.corpus_dir / "manifest.json").read_text(encoding="utf-8"))
    assert {i["source"]: i["status"] for i in manifest["inputs"]}["001_1cc2844c57b19c1d.txt"] == "quarantined"
    sources = {row["source"] for row in read_jsonl(result.corpus_dir / "articles.jsonl")}
    assert "001_1cc2844c57b19c1d.txt" not in sources and len(sources) == 4


def test_provenance_points_at_the_text_in_the_source(corpus: Path) -> None:
    for name in ("articles.jsonl", "comments.jsonl"):
        for row in rows(corpus, name):
            source = (SEEDS / row["source"]).read_text(encoding="utf-8")
            start, end = row["source_offsets"]
            region = " ".join(source[start:end].split())
            paragraphs = row["text"].split("\n\n")
            assert region.startswith(" ".join(paragraphs[0].split())[:40]) or \
                norm(region).startswith(norm(paragraphs[0])[:40]), row["id"]
            assert region.endswith(" ".join(paragraphs[-1].split())[-40:]), row["id"]
            first, last = row["source_lines"]
            assert source.split("\n")[first - 1].strip() and first <= last
    main = {row["source"]: row for row in rows(corpus, "articles.jsonl") if row["role"] == "main"}
    assert main["000_3ff87b482df5ac51.txt"]["source_lines"] == [5, 33]


def test_same_corpus_whatever_order_the_files_were_written_in(corpus: Path, tmp_path: Path) -> None:
    inp = tmp_path / "in"
    inp.mkdir()
    for seed in sorted(SEEDS.glob("*.txt"), reverse=True):
        shutil.copyfile(seed, inp / seed.name)
    run(load_config(REPO / "configs" / "default.yaml"), inp, tmp_path / "out", progress=False)
    for name in ("articles.jsonl", "comments.jsonl", "dedup-index.npz"):
        assert (tmp_path / "out/corpus/0.1.0" / name).read_bytes() == (corpus / name).read_bytes()
