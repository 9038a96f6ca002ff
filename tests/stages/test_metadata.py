"""The metadata stage applies the head reader's decisions: fields out, lines removed with reasons."""

from pipeline.stages import metadata

BODY = ("The assault by government forces on the eastern districts continued on Monday, and "
        "officials said the fighting would go on until the last armed groups had left the city.")


def article(text: str, **fields: object) -> dict:
    return {"id": "a", "kind": "article", "role": "main", "bytes": 5000, "page_markers": [],
            "text": text, **fields}


def test_title_byline_and_date_leave_the_text() -> None:
    text = f"Aleppo falls after four years of war\nPar Stephen Lendman, 28 mars 2016\n{BODY}\n{BODY}"
    outcome = metadata.process(article(text), metadata.Config())
    record = outcome.records[0]
    assert record["title"] == "Aleppo falls after four years of war"
    assert record["authors"] == ["Stephen Lendman"]
    assert record["published"] == "2016-03-28"
    assert record["text"] == f"{BODY}\n{BODY}"
    assert [s.reason for s in outcome.spans] == ["title", "byline"]


def test_site_from_removed_widget_line() -> None:
    markers = [[3, "donation", "Liked it? Take a second to support The Duran on Patreon!"]]
    record = metadata.process(article(BODY, page_markers=markers), metadata.Config()).records[0]
    assert record["site"] == "The Duran"


def test_article_without_head_keeps_everything() -> None:
    outcome = metadata.process(article(f"{BODY}\n{BODY}"), metadata.Config())
    record = outcome.records[0]
    assert (record["title"], record["authors"], record["published"], record["site"]) == (None, [], None, None)
    assert outcome.spans == [] and record["text"] == f"{BODY}\n{BODY}"


def test_truncation_by_round_size_and_by_last_line() -> None:
    config = metadata.Config()
    assert metadata.process(article(BODY, bytes=3000), config).records[0]["truncated"] is True
    assert metadata.process(article(BODY, bytes=3001), config).records[0]["truncated"] is False
    cut = metadata.process(article(f"{BODY}\nAnd then the convoy turned towards the", bytes=3001), config)
    assert cut.records[0]["truncated"] is True


def test_comments_pass_through_untouched() -> None:
    comment = {"id": "a#c1", "kind": "comment", "text": "By the way, nice piece."}
    assert metadata.process(comment, metadata.Config()).records == [comment]
