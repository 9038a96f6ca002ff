"""Export in parallel: the batches and segments of records.jsonl, and the same corpus files
and index for any number of workers."""

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline import corpus
from pipeline.config import load_config
from pipeline.corpus import write_version
from pipeline.io import dumps, read_jsonl
from pipeline.ledger import page_of
from pipeline.provenance import SourceIndex
from pipeline.runner import run
from pipeline.stages import dedup, export, ingest

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO / "seeds"
CONFIG = REPO / "configs" / "default.yaml"
STORY = ("The council voted on Tuesday to close the old bridge for repairs that will last "
         "until the spring, officials said. Drivers will be sent along the river road instead. ")

# Page ids a byte scan could get wrong: escapes, non-ASCII, a key's text inside a value.
PAGES = ['quote"d\\back', "ünï/ß—日本語", 'fake{","kind":"comment', "plain", "big", "last\u2028line"]


def _records() -> list[dict[str, Any]]:
    """Pages of an article and comments; "big" holds most of the bytes (a naive cut falls
    inside it); some comments count for another page's article, as dedup leaves a copy's."""
    records: list[dict[str, Any]] = []
    for number, page in enumerate(PAGES):
        article: dict[str, Any] = {"id": page, "kind": "article", "text": f"{page}\n{STORY * (number + 1)}",
                                   "published": "2016-01-0" + str(number + 1)}
        if number % 2:
            article["page_id"] = page
        records.append(article)
        if page == "plain":
            records.append({"id": f"{page}#r1", "kind": "article", "page_id": page, "role": "related",
                            "text": STORY})
        for c in range(40 if page == "big" else 3):
            text = 'He wrote "article_id":"x" and "kind":"comment", \\ then left.' if c == 1 else f"{STORY} {c}"
            records.append({"id": f"{page}#c{c}", "kind": "comment", "page_id": page,
                            "article_id": PAGES[0] if c == 2 else page, "position": c, "text": text})
    return records


def _write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def _expected_batches(records: list[dict[str, Any]], size: int) -> list[tuple[list[str], Counter[str]]]:
    """The batches of whole pages (ids), each with the comment counts of the whole file."""
    batches: list[list[dict[str, Any]]] = [[]]
    last = None
    for record in records:
        if len(batches[-1]) >= size and page_of(record) != last:
            batches.append([])
        batches[-1].append(record)
        last = page_of(record)
    counts = Counter(r["article_id"] for r in records if r["kind"] == "comment")
    return [([r["id"] for r in batch], counts) for batch in batches]


def _ids(path: Path, segment: Any) -> list[str]:
    return [record["id"] for record in corpus._read_range(path, segment.start, segment.end)]


def test_comment_article_ids_are_read_from_the_bytes(tmp_path: Path) -> None:
    path = _write(tmp_path / "records.jsonl", _records())
    for line in path.read_bytes().splitlines(keepends=True):
        record = json.loads(line)
        expected = record["article_id"] if record["kind"] == "comment" else None
        assert corpus._comment_article(line, path, 0) == expected


@pytest.mark.parametrize("size", [1, 3, 5, 40, 4096])
def test_batches_are_the_batches_of_whole_pages_with_their_comment_counts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int) -> None:
    records = _records()
    path = _write(tmp_path / "records.jsonl", records)
    monkeypatch.setattr(corpus, "ROWS_BATCH", size)
    batches = corpus._batches(path)
    assert [(_ids(path, batch), batch.n_comments) for batch in batches] == _expected_batches(records, size)
    assert batches[0].start == 0 and batches[-1].end == path.stat().st_size


@pytest.mark.parametrize("parts", [2, 3, 5, 8, 50])
def test_segments_cut_at_page_starts_only(tmp_path: Path, parts: int) -> None:
    path = _write(tmp_path / "records.jsonl", _records())
    size = path.stat().st_size
    segments = corpus._split(path, corpus._batches(path), size / parts)
    assert segments[0].start == 0 and segments[-1].end == size
    assert all(a.end == b.start for a, b in zip(segments, segments[1:]))
    pages = [[page_of(r) for r in corpus._read_range(path, s.start, s.end)] for s in segments]
    assert all(pages)
    flat = [page for part in pages for page in part]
    assert flat == [page_of(record) for record in read_jsonl(path)]
    assert all(a[-1] != b[0] for a, b in zip(pages, pages[1:]))  # no page in two segments
    assert len(segments) > 1
    # The middle of the file falls inside page "big": that cut moves to the next page.
    with path.open("rb") as handle:
        middle = corpus._page_start(handle, path, size // 2)
    assert page_of(next(corpus._read_range(path, middle, size))) == PAGES[PAGES.index("big") + 1]


def test_a_range_holds_the_lines_that_start_in_it(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    lines = [dumps({"id": "a"}) + "\n", "\n", " \t\r\n", dumps({"id": "b", "t": "x\u2028y"}) + "\n",
             dumps({"id": "c"})]  # no newline at the end of the file
    path.write_text("".join(lines), encoding="utf-8")
    starts = [sum(len(line.encode("utf-8")) for line in lines[:i]) for i in range(len(lines))]
    size = path.stat().st_size
    assert [r["id"] for r in corpus._read_range(path, 0, size)] == ["a", "b", "c"]
    assert [r["id"] for r in corpus._read_range(path, 0, starts[3] + 1)] == ["a", "b"]  # "b" ends past the range
    assert [r["id"] for r in corpus._read_range(path, starts[1], starts[3])] == []
    assert [r["id"] for r in corpus._read_range(path, starts[3], starts[4] + 1)] == ["b", "c"]
    assert list(corpus._read_range(path, size, size)) == []


@pytest.mark.parametrize("workers", [1, 2])
def test_a_malformed_line_is_named_by_its_number(tmp_path: Path, workers: int) -> None:
    path = tmp_path / "records.jsonl"
    path.write_text(dumps({"id": "a", "kind": "article"}) + "\n\n" + dumps({"id": "b", "kind": "article"})
                    + "\n{broken\n", encoding="utf-8")
    sources = SourceIndex(tmp_path, ingest.Config())
    with pytest.raises(ValueError, match=r"records.jsonl:4: not valid JSON"):
        corpus._write_rows(tmp_path, path, export.Config(), dedup.Config(), sources, workers)


@pytest.mark.parametrize("size", [2, 4096])
def test_rows_and_index_are_the_same_for_any_number_of_workers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int) -> None:
    records = _records()
    path = _write(tmp_path / "records.jsonl", records)
    monkeypatch.setattr(corpus, "ROWS_BATCH", size)
    monkeypatch.setattr(corpus, "SEGMENTS_PER_WORKER", 3)
    sources = SourceIndex(tmp_path, ingest.Config())
    results = []
    for workers in (1, 2, 3):
        folder = tmp_path / f"w{workers}"
        folder.mkdir()
        outputs, index = corpus._write_rows(folder, path, export.Config(), dedup.Config(), sources, workers)
        assert sorted(p.name for p in folder.iterdir()) == ["articles.jsonl", "comments.jsonl"]  # no parts left
        dedup.save_index(index, folder / "index.npz")
        results.append((outputs, [(folder / name).read_bytes()
                                  for name in ("articles.jsonl", "comments.jsonl", "index.npz")]))
    assert results[0] == results[1] == results[2]
    rows = list(read_jsonl(tmp_path / "w1" / "articles.jsonl"))
    expected = {record: counts[record] for ids, counts in _expected_batches(records, size) for record in ids
                if "#c" not in record}
    assert {row["id"]: row["n_comments"] for row in rows} == expected
    assert expected[PAGES[0]] == 3 + 5  # its comments on other pages count, in whatever batch they are


def test_assembled_index_is_build_index(tmp_path: Path) -> None:
    config = dedup.Config()
    rows = [{"id": "a", "text": STORY * 3, "published": "2016-01-13"}, {"id": "short", "text": "Too short."},
            {"id": "dup", "text": STORY * 3, "duplicate_of": "a"}, {"id": "c", "article_id": "a", "text": STORY},
            {"id": "r", "role": "related", "text": STORY * 2}]
    entries = [entry for row in rows if (entry := dedup.index_entry(row, config)) is not None]
    assert [entry.id for entry in entries] == ["a", "short", "r"]
    built, assembled = dedup.build_index(rows, config), dedup.assemble_index(entries, config)
    assert built["ids"] == assembled["ids"] and built["role"] == ["main", "main", "related"]
    assert built["has_signature"].tolist() == [True, False, True]
    for name in ("signatures", "has_signature", "text_hash", "n_words", "length"):
        assert np.array_equal(built[name], assembled[name]) and built[name].dtype == assembled[name].dtype
    dedup.save_index(built, tmp_path / "a.npz")
    dedup.save_index(dedup.assemble_index([], config), tmp_path / "empty.npz")
    assert dedup.load_index(tmp_path / "empty.npz")["signatures"].shape == (0, config.num_perm)


def test_a_corpus_version_from_one_pool_is_the_same_for_1_2_3_workers(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(CONFIG)
    out = tmp_path / "run"
    run(config, SEEDS, out, progress=False)
    stages = sorted((out / "stages").iterdir())
    stats = {folder.name.split("-", 1)[1]: json.loads((folder / "stats.json").read_text(encoding="utf-8"))
             for folder in stages}
    fates = list(read_jsonl(stages[0] / "fates.jsonl"))
    pools: list[int] = []
    fork_map = corpus.fork_map

    def counted(function: Any, items: Any, workers: int = 1) -> Any:
        pools.append(workers)
        return fork_map(function, items, workers)

    monkeypatch.setattr(corpus, "fork_map", counted)
    folders = []
    for workers in (1, 2, 3):
        folder, status = write_version(tmp_path / f"w{workers}", config, stages[-1] / "records.jsonl", fates, stats,
                                       config.stage("export"), False, SEEDS, workers=workers)
        assert status == "written"
        folders.append(folder)
    assert pools == [1, 2, 3]  # one fork_map (one pool) per export
    for name in corpus.CONTENT_FILES:
        assert len({(folder / name).read_bytes() for folder in folders}) == 1, name
    manifests = [json.loads((folder / "manifest.json").read_text(encoding="utf-8")) for folder in folders]
    assert manifests[0] == manifests[1] == manifests[2]
    assert sorted(p.name for p in folders[1].iterdir()) == sorted([*corpus.CONTENT_FILES, corpus.MANIFEST])
    dedup.save_index(dedup.build_index(read_jsonl(folders[1] / "articles.jsonl"), config.dedup),
                     tmp_path / "reread.npz")
    assert (tmp_path / "reread.npz").read_bytes() == (folders[1] / "dedup-index.npz").read_bytes()
