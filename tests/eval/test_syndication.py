import csv
import random
from collections import Counter
from pathlib import Path

import pytest

from pipeline.eval import syndication as syn

SYLLABLES = ["ka", "lo", "mi", "ra", "sen", "tu", "vel", "dor", "an", "qui", "bre", "mos", "tal", "fen", "gu", "ri"]


def fake_csv(path: Path, articles: int = 12, seed: int = 0, extra: list[dict] | None = None) -> Path:
    """A FA-KES-shaped CSV of made-up articles (sentences of invented words), two per event."""
    rng = random.Random(seed)
    vocabulary = sorted({"".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))) for _ in range(600)})
    rows = []
    for number in range(articles):
        sentences = []
        for _ in range(rng.randint(12, 16)):
            words = [rng.choice(vocabulary) for _ in range(rng.randint(10, 16))]
            sentences.append(" ".join(words).capitalize() + ".")
        rows.append({"unit_id": str(1000 + number), "article_title": sentences[0][:40],
                     "article_content": " ".join(sentences), "source": f"site{number % 3}",
                     "date": f"4/{1 + number // 2}/2017", "location": "aleppo", "labels": "1"})
    rows += extra or []
    with path.open("w", encoding="latin-1", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture()
def fakes(tmp_path: Path) -> Path:
    return fake_csv(tmp_path / "fakes.csv")


def test_same_seed_gives_identical_records(fakes: Path) -> None:
    first = syn.generate(fakes, 8, seed=3)
    again = syn.generate(fakes, 8, seed=3)
    assert first[0] == again[0] and first[1] == again[1] and first[2] == again[2]
    other = syn.generate(fakes, 8, seed=4)
    assert [r["text"] for r in other[0]] != [r["text"] for r in first[0]]


def test_records_have_the_dedup_input_shape(fakes: Path) -> None:
    records, truth, facts = syn.generate(fakes, 8, seed=0)
    assert len({r["id"] for r in records}) == len(records) == len(truth)
    for record in records:
        assert record["kind"] == "article" and record["role"] in {"main", "related"}
        assert record["text"] and "\n" in record["text"]
        assert record["published"] is None or len(record["published"]) == 10
    per_source = Counter(t.source for t in truth.values())
    assert set(per_source.values()) <= {3, 4, 5} and len(per_source) == facts["sources"] == 8


def test_copies_are_edited_republications(fakes: Path) -> None:
    records, truth, _ = syn.generate(fakes, 12, seed=1)
    originals = {truth[r["id"]].source: r for r in records if r["id"].startswith("orig-")}
    copies = [r for r in records if not r["id"].startswith("orig-")]
    assert len(originals) == 12 and len(copies) >= 24
    for copy in copies:
        original = originals[truth[copy["id"]].source]
        assert copy["text"] != original["text"] and copy["title"] != original["title"]
        assert truth[copy["id"]].paragraphs <= truth[original["id"]].paragraphs
    dropped = sum(len(truth[c["id"]].paragraphs) < len(truth[originals[truth[c["id"]].source]["id"]].paragraphs)
                  for c in copies)
    assert 0 < dropped < len(copies)
    assert len({truth[c["id"]].site for c in copies}) > 3  # several site templates


def test_typos_and_quote_styles() -> None:
    rng = random.Random(0)
    lines = ["The army said it had retaken the town.", "Residents fled toward the border."]
    changed = syn.add_typos(lines, 3, rng)
    assert changed != lines
    assert sum(a != b for x, y in zip(lines, changed) for a, b in zip(x.split(), y.split())) <= 3
    assert syn._curly('He said "no" and it\'s done') == "He said “no” and it’s done"


def test_pool_keeps_one_version_of_a_story(tmp_path: Path) -> None:
    base = fake_csv(tmp_path / "base.csv")
    rows = list(csv.DictReader(base.open(encoding="latin-1")))
    version = dict(rows[0], unit_id="2000", article_content=rows[0]["article_content"].replace(".", "!", 2))
    path = fake_csv(tmp_path / "with_version.csv", extra=[version])
    pool, counts = syn.source_pool(syn.read_fakes(path), seed=0)
    assert counts["copy_of_earlier_row"] == 1 and len(pool) == 12
    assert "fakes-2000" not in {s.key for s in pool}


def test_shared_paragraph_hard_negatives(fakes: Path) -> None:
    records, truth, facts = syn.generate(fakes, 12, seed=0, share_rate=0.5)
    assert facts["shared"]
    by_id = {r["id"]: r for r in records}
    for giver, taker in facts["shared"]:
        give = next(by_id[i]["text"] for i in by_id if i.startswith("orig-") and truth[i].source == giver)
        take = next(by_id[i]["text"] for i in by_id if i.startswith("orig-") and truth[i].source == taker)
        assert len(set(give.split("\n")) & set(take.split("\n"))) == 1
    assert len({s for pair in facts["shared"] for s in pair}) == 2 * len(facts["shared"])


def test_pair_share() -> None:
    words = {"s": [10, 20, 30, 40]}
    a = syn.Truth("s", frozenset({0, 1, 2, 3}), 100, "x")
    b = syn.Truth("s", frozenset({0, 1, 2}), 70, "y")
    c = syn.Truth("s", frozenset({0, 1, 2}), 75, "z")  # plus an added five-word line
    assert syn.pair_share(a, b, words) == pytest.approx(0.6)
    assert syn.pair_share(b, c, words) == pytest.approx(60 / 75)


def test_evaluate_counts_pairs(fakes: Path) -> None:
    records, truth, facts = syn.generate(fakes, 8, seed=0)
    by_source = {r["id"]: truth[r["id"]].source for r in records}
    perfect = syn.evaluate(truth, by_source, facts)
    assert perfect["precision"] == 1.0 and perfect["recall"] == 1.0
    assert perfect["partial_pairs_merged"] == perfect["partial_pairs"]
    singletons = syn.evaluate(truth, {i: i for i in by_source}, facts)
    assert singletons["recall"] == 0.0 and singletons["false_positive_pairs"] == 0
    first, second = sorted(set(by_source.values()))[:2]
    merged = {i: ("m" if s in (first, second) else s) for i, s in by_source.items()}
    bad = syn.evaluate(truth, merged, facts)
    sizes = Counter(by_source.values())
    assert bad["false_positive_pairs"] == sizes[first] * sizes[second]
    assert bad["clusters_merging_distinct_sources"] == 1 and bad["precision"] < 1.0


def test_dedup_stage_on_a_small_benchmark(fakes: Path, tmp_path: Path) -> None:
    records, truth, facts = syn.generate(fakes, 12, seed=2, share_rate=0.5)
    syn.write_jsonl(tmp_path / "records.jsonl", records)
    result = syn.run_stage(str(tmp_path / "records.jsonl"), {})
    metrics = syn.evaluate(truth, result["cluster_of"], facts)
    assert metrics["false_positive_pairs"] == 0
    assert metrics["recall"] == 1.0 and metrics["positive_pairs"] > 20
    assert result["stats"]["candidate_pairs"] >= result["stats"]["verified_copies"] > 0


@pytest.mark.skipif(not syn.DEFAULT_FAKES.is_file(), reason="FA-KES not available here")
def test_real_fakes_file_is_read_cleanly() -> None:
    rows = syn.read_fakes(syn.DEFAULT_FAKES)
    assert len(rows) >= 700
    assert not any("\x95" in r["article_content"] or "\x81" in r["article_content"] for r in rows)
    assert {"unit_id", "article_title", "article_content", "date", "location"} <= set(rows[0])
