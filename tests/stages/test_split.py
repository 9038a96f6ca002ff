"""The split stage on small pages: where articles, feeds and comments go, and the ledger."""

from pipeline.document import split_lines
from pipeline.stages import boilerplate, split

PROSE = ("The assault by government forces on the eastern districts continued on Monday, "
         "and officials said the fighting would go on until the last armed groups had left. ")


def page(text: str, markers: list[list[object]] | None = None) -> dict:
    return {"id": "p", "source": "p.txt", "source_sha256": "0" * 64, "site_key": "", "bytes": len(text),
            "text": text, "markers": markers or []}


def covered(record_text: str, outcome: split.Outcome, text: str) -> None:
    """Every character of the page is in exactly one record origin or span."""
    marks = [False] * len(text)
    for record in outcome.records:
        for start, end in record["origin"]:
            for i in range(start, end):
                marks[i] = True
    for span in outcome.spans:
        for i in range(span.start, span.end):
            assert not marks[i]
            marks[i] = True
    assert all(marks)


def test_page_without_comments_or_feed_is_one_main_article() -> None:
    text = f"Title of the story\n\n{PROSE}\n\n{PROSE}\n"
    outcome = split.process(page(text), split.Config())
    assert [r["role"] for r in outcome.records] == ["main"]
    assert outcome.records[0]["text"] == f"Title of the story\n{PROSE.strip()}\n{PROSE.strip()}"
    assert outcome.records[0]["id"] == "p"
    covered("", outcome, text)


def test_feed_marker_separates_related_articles_and_stubs() -> None:
    text = f"Main title\n{PROSE * 3}\nRelated one\n{PROSE * 3}\nA stub headline\n"
    lines = split_lines(text)
    markers = [[2, "feed_header", "Latest"], [4, "feed_header", "Latest"]]
    outcome = split.process(page(text, markers), split.Config(related_min_words=30))
    roles = [(r["id"], r["role"]) for r in outcome.records]
    assert roles == [("p", "main"), ("p#r1", "related")]
    assert outcome.records[1]["text"].startswith("Related one\n")
    assert [(s.reason, s.original) for s in outcome.spans if s.reason != "layout"] == [("feed_item", lines[4].text)]
    assert all(s.original.isspace() for s in outcome.spans if s.reason == "layout")
    covered("", outcome, text)


def test_related_can_be_dropped() -> None:
    text = f"Main title\n{PROSE * 3}\nRelated one\n{PROSE * 3}\n"
    outcome = split.process(page(text, [[2, "feed_header", "Latest"]]),
                            split.Config(related="drop", related_min_words=30))
    assert [r["role"] for r in outcome.records] == ["main"]
    assert {s.reason for s in outcome.spans} == {"related_dropped", "layout"}


def test_threaded_comments_become_records_with_parents() -> None:
    text = (f"Title\n\n{PROSE}\n\n"
            "  1. alice says\n\n    I agree with every word of this report.\n\n"
            "    • bob says\n\n      No, the numbers are wrong.\n\n"
            "  2. carol says\n\n    Thanks for writing it.\n")
    outcome = split.process(page(text), split.Config())
    comments = [r for r in outcome.records if r["kind"] == "comment"]
    assert [(c["id"], c["author"], c["number"], c["depth"], c["parent_id"]) for c in comments] == [
        ("p#c1", "alice", "1", 0, None), ("p#c2", "bob", None, 1, "p#c1"), ("p#c3", "carol", "2", 0, None)]
    assert comments[1]["text"] == "No, the numbers are wrong."
    assert all(c["article_id"] == "p" for c in comments)
    main = outcome.records[0]
    assert "says" not in main["text"] and "agree" not in main["text"]
    assert sum(s.reason == "comment_header" for s in outcome.spans) == 3
    covered("", outcome, text)


def test_signature_comments_get_posted_dates() -> None:
    text = (f"Title\n\n{PROSE}\n\nFirst reader comment about the story.\n\n"
            "Posted by: Laguerre | Dec 12 2016 14:48 utc | 1\n\n"
            "@1 I do not think so.\n\nPosted by: Mina | Dec 12 2016 14:52 utc | 2\n")
    markers = [[4, "pagination", "next page »"]]
    outcome = split.process(page(text, markers), split.Config())
    comments = [r for r in outcome.records if r["kind"] == "comment"]
    assert [(c["author"], c["posted"], c["posted_raw"]) for c in comments] == [
        ("Laguerre", "2016-12-12T14:48:00+00:00", "Dec 12 2016 14:48 utc"),
        ("Mina", "2016-12-12T14:52:00+00:00", "Dec 12 2016 14:52 utc")]
    assert comments[1]["reply_to"] == ["p#c1"]


def test_page_with_no_text_is_dropped_with_a_reason() -> None:
    outcome = split.process(page("\n\n"), split.Config())
    assert outcome.records == [] and outcome.drop_reason == "no_article"


def test_comments_off_keeps_comment_text_in_the_article() -> None:
    text = f"Title\n\n{PROSE}\n\n  1. alice says\n\n    I agree with every word of this report.\n"
    outcome = split.process(page(text), split.Config(comments=False))
    assert [r["kind"] for r in outcome.records] == ["article"]
    assert "I agree" in outcome.records[0]["text"]


def test_removed_line_texts_reach_the_comment_parser() -> None:
    # A lone name + date comment: the boilerplate stage removed its "Reply" link (the
    # marker's text says so), which is the evidence a lone comment needs; a removed
    # "Permalink" is none (articles have those too), and neither is a marker without text.
    text = f"Title\n{PROSE}\nNadia Petrova\n4 Nov 12 at 11:22 pm\nThanks, the glove advice saved my commute.\n"
    found = {}
    for name, marker in (("reply", [5, "comment_widget", "Reply"]), ("permalink", [5, "share", "Permalink"]),
                         ("no text", [5, "comment_widget"])):
        outcome = split.process(page(text, [marker]), split.Config())
        found[name] = [(r["author"], r["text"]) for r in outcome.records if r["kind"] == "comment"]
        covered("", outcome, text)
    assert found == {"reply": [("Nadia Petrova", "Thanks, the glove advice saved my commute.")],
                     "permalink": [], "no text": []}


# A thread under a counted heading, then a comment form, a menu and a "Recent Comments" feed of
# names with dates and prose, as a blog's sidebar shows them.
THREAD_AND_SIDEBAR = (
    "Harbour works to close the east road", PROSE, PROSE + "The council will meet again in May.", PROSE,
    "2 Comments",
    "Ben Ortiz says:", "March 11, 2013 at 9:14 am",
    "I walked the new path this morning and it was already busy with people going to work.", "Reply",
    "Clara Weiss says:", "March 11, 2013 at 10:02 am",
    "The bakery on the corner deserves a mention here, it stayed open through all of it.", "Reply",
    "Leave a Reply", "Name (required)", "Email (required)", "Archives", "March 2013", "February 2013",
    "Recent Comments",
    "Dan Moss on 03/10/13", "I think the council got this one right and said so at the meeting last week.",
    "Eva Lund on 03/09/13", "Nobody asked the shop owners on the east road what they thought of the plan.",
    "Copyright 2013 Harbour Weekly",
)


def test_comment_sections_do_not_depend_on_blank_lines_between_blocks() -> None:
    # Scrapers write a block per line or a blank line between blocks; through the boilerplate
    # stage and this one the page gives the same comments either way: the thread, not the
    # sidebar feed (whose first header follows the thread's removed "Reply").
    found = []
    for separator in ("\n", "\n\n"):
        text = separator.join(THREAD_AND_SIDEBAR) + "\n"
        config = boilerplate.Config()
        kept = boilerplate.process(page(text), config, boilerplate.learn([page(text)], config)).records[0]
        outcome = split.process(kept, split.Config())
        found.append([(r["author"], r["text"]) for r in outcome.records if r["kind"] == "comment"])
    assert found[0] == found[1] == [
        ("Ben Ortiz", "I walked the new path this morning and it was already busy with people going to work."),
        ("Clara Weiss", "The bakery on the corner deserves a mention here, it stayed open through all of it."),
    ]


def test_a_changed_formats_file_is_read_again(tmp_path) -> None:
    # The formats are kept per file between pages; a file written again must not be served stale.
    import os
    from pathlib import Path

    shipped = Path(split.__file__).resolve().parents[2] / "configs" / "comments" / "formats.yaml"
    path = tmp_path / "formats.yaml"
    path.write_text(shipped.read_text(encoding="utf-8"), encoding="utf-8")
    text = f"Title\n{PROSE}\nmikael says:\nJuly 18, 2012 at 4:09 pm\nGood point, thanks.\nanna says:\nJuly 18, 2012 at 5:10 pm\nI agree with that.\n"
    config = split.Config(comment_formats=path)
    before = [r["author"] for r in split.process(page(text), config).records if r["kind"] == "comment"]
    # Same formats without header patterns: "X says:" lines no longer open comments.
    lines = path.read_text(encoding="utf-8").split("\n")
    start = lines.index("header_patterns:")
    end = next(i for i in range(start + 1, len(lines)) if lines[i] and not lines[i].startswith((" ", "#")))
    path.write_text("\n".join(lines[:start] + ["header_patterns: []"] + lines[end:]), encoding="utf-8")
    os.utime(path, ns=(1, 1))  # a different time even on a coarse clock
    after = [r["author"] for r in split.process(page(text), config).records if r["kind"] == "comment"]
    assert before == ["mikael", "anna"]
    assert after != before


def test_word_threshold_counts_only_as_far_as_needed() -> None:
    # _has_words stops counting once the threshold is met and keeps its count; its answers
    # must equal a full count of the segment's joined lines, whatever the order of questions.
    from pipeline.textstats import count_words

    lines = split_lines("one two\n\nthree, four five\nsix-seven eight nine ten\n\n" + PROSE + "\nend")
    for order in ([1, 5, 60, 3, 200], [200, 1, 60], [0, 12, 11, 13]):
        segment = split.Segment(lines, False)
        for at_least in order:
            total = count_words("\n".join(line.text for line in lines))
            assert split._has_words(segment, at_least) == (total >= at_least)
