import yaml

from pipeline.stages import export


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
