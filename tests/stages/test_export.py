import json
from pathlib import Path

import pytest
import yaml

from pipeline.config import load_config
from pipeline import corpus
from pipeline.corpus import write_version
from pipeline.io import read_jsonl
from pipeline.runner import run
from pipeline.stages import export
from pipeline.stages.dedup import build_index, save_index

REPO = Path(__file__).resolve().parents[2]
SEEDS = REPO / "seeds"
CONFIG = REPO / "configs" / "default.yaml"


def test_article_row_has_every_field_in_order_and_counts() -> None:
    record = {"id": "a", "kind": "article", "source": "a.txt", "role": "main", "authors": ["X"],
              "text": "First paragraph here. It has two sentences.\n\nSecond one.", "extra": "dropped"}
    row = export.article_row(record, 3, export.Config())
    assert list(row) == list(export.ARTICLE_FIELDS)
    assert row["text"] == "First paragraph here. It has two sentences.\n\nSecond one."
    assert (row["n_words"], row["n_sentences"], row["n_comments"]) == (9, 3, 3)
    assert row["title"] is None and row["truncated"] is False and "extra" not in row


def test_comment_row_defaults() -> None:
    row = export.comment_row({"id": "a#c1", "text": "Hi"}, export.Config())
    assert list(row) == list(export.COMMENT_FIELDS)
    assert row["reply_to"] == [] and row["parent_id"] is None


def test_dataset_card_declares_both_configs_with_features() -> None:
    card = export.dataset_card("n", "1", "d", "other", {"articles": 2, "comments": 5})
    front = yaml.safe_load(card.split("---\n")[1])
    assert [c["config_name"] for c in front["configs"]] == ["articles", "comments"]
    assert front["configs"][0]["default"] is True
    features = {f["name"]: f for f in front["dataset_info"][0]["features"]}
    assert features["authors"] == {"name": "authors", "list": "string"}
    assert features["n_words"]["dtype"] == "int64"


def test_corpus_version_is_the_same_from_several_workers_and_batches(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(CONFIG)
    out = tmp_path / "run"
    run(config, SEEDS, out, progress=False)
    stages = sorted((out / "stages").iterdir())
    stats = {folder.name.split("-", 1)[1]: json.loads((folder / "stats.json").read_text(encoding="utf-8"))
             for folder in stages}
    fates = list(read_jsonl(stages[0] / "fates.jsonl"))

    def version(workers: int, label: str) -> Path:
        folder, status = write_version(tmp_path / label, config, stages[-1] / "records.jsonl", fates, stats,
                                       config.stage("export"), False, SEEDS, workers=workers)
        assert status == "written"
        return folder

    one, three = version(1, "one"), version(3, "three")
    # Rows are made a batch of whole pages at a time: batches of one page give the same files,
    # comment counts included.
    monkeypatch.setattr(corpus, "ROWS_BATCH", 1)
    small = version(2, "small")
    for name in ("articles.jsonl", "comments.jsonl", "README.md", "dedup-index.npz"):
        assert (one / name).read_bytes() == (three / name).read_bytes() == (small / name).read_bytes(), name
    assert any(row["n_comments"] > 0 for row in read_jsonl(small / "articles.jsonl"))
    manifests = [json.loads((folder / "manifest.json").read_text(encoding="utf-8")) for folder in (one, three)]
    for manifest in manifests:
        assert "created_at" not in manifest  # no clock in the corpus unless SOURCE_DATE_EPOCH is set
    assert manifests[0] == manifests[1]
    assert sum(1 for _ in read_jsonl(one / "comments.jsonl")) > 100  # enough rows for several chunks
    # The index holds the signatures of the articles written.
    save_index(build_index(read_jsonl(one / "articles.jsonl"), config.dedup), tmp_path / "reread.npz")
    assert (tmp_path / "reread.npz").read_bytes() == (one / "dedup-index.npz").read_bytes()


def test_the_manifest_is_dated_only_by_source_date_epoch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.corpus import _source_date
    from pipeline.errors import InputError

    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    assert _source_date() is None
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1481551080")
    assert _source_date() == "2016-12-12T13:58:00+00:00"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(InputError, match="SOURCE_DATE_EPOCH='yesterday'"):
        _source_date()
