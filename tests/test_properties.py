"""Properties of every stage over arbitrary pages: no exception, the same output when run
twice, and spans that are valid edits of the stage's input (in bounds, in order, not
overlapping, quoting the input, and replaying pass by pass)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.config import load_config
from pipeline.document import apply_spans
from pipeline.stage import Outcome, Record
from pipeline.stages import STAGES, export, ingest, is_corpus_stage

REPO = Path(__file__).resolve().parents[1]
CONFIG = load_config(REPO / "configs" / "default.yaml")
SETTINGS = settings(max_examples=12, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

ANY_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)
WORDS = st.lists(st.sampled_from("the council said that a new bridge over river would open on Monday "
                                 "le conseil a dit que nouveau pont sur la rivière ouvrira lundi".split()),
                 min_size=1, max_size=25).map(" ".join)
NAMES = st.sampled_from(["mikael", "Brian Harry, Australia", "Janna", "Анна", "李明", "-x-"])
LINE = st.one_of(
    ANY_TEXT,
    WORDS,
    WORDS.map(lambda words: words.capitalize() + "."),
    st.tuples(st.integers(0, 40), WORDS).map(lambda pair: " " * pair[0] + pair[1]),  # indentation
    st.tuples(st.integers(0, 12), NAMES).map(lambda pair: "  " * pair[0] + f"• {pair[1]} says"),
    st.tuples(st.integers(0, 5), NAMES).map(lambda pair: "  " * pair[0] + f"{pair[1]} on 12 March 2017 at 9:41 am"),
    st.integers(0, 999).map(lambda n: f"{n} Comments"),
    st.sampled_from(["Reply", "Share on Facebook", "Home | News | Sport", "© 2024 Example", "", "   ", "\t"]),
)
PAGE = st.tuples(st.lists(LINE, min_size=0, max_size=40), st.sampled_from(["\n", "\r\n", "\r", "\n\n"]))


def check_spans(text: str, outcome: Outcome) -> None:
    """Each pass's spans are ordered, disjoint, inside and quoting that pass's input."""
    current = text
    for spans in outcome.all_passes():
        cursor = 0
        for span in sorted(spans, key=lambda s: (s.start, s.end)):
            assert cursor <= span.start <= span.end <= len(current), (span, len(current))
            assert current[span.start:span.end] == span.original, span
            cursor = span.end
        current = apply_spans(current, spans)


def as_data(outcome: Outcome) -> Any:
    return (outcome.records, [[span.to_json() for span in spans] for spans in outcome.all_passes()],
            outcome.drop_reason, outcome.notes)


def run_stage(name: str, records: list[Record]) -> list[Record]:
    """One stage over `records`, twice: equal outcomes and valid spans; returns the output."""
    module, config = STAGES[name], CONFIG.stage(name)
    outputs: list[Any] = []
    for _ in range(2):
        state = module.learn(iter(records), config) if is_corpus_stage(module) else None
        outcomes = [module.process(dict(record), config) if state is None
                    else module.process(dict(record), config, state) for record in records]
        outputs.append((state, [as_data(outcome) for outcome in outcomes]))
        for record, outcome in zip(records, outcomes):
            check_spans(record.get("text", ""), outcome)
            assert outcome.records or outcome.drop_reason, name
    assert outputs[0] == outputs[1], f"{name} is not deterministic"
    return [out for _, data in outputs[:1] for records_out, *_ in data for out in records_out]


def ingest_pages(folder: Path, pages: list[tuple[str, bytes]]) -> list[Record]:
    """Write the pages as files and ingest them, twice: same records and fates."""
    for name, data in pages:
        (folder / name).write_bytes(data)
    config = CONFIG.stage("ingest")
    results = []
    for _ in range(2):
        results.append([ingest.read_page(path, folder, config) for path in ingest.find_inputs(folder, config)])
    assert results[0] == results[1]
    records = []
    for record, fate in results[0]:
        assert fate.status in {"included", "dropped", "quarantined"}
        assert (record is None) == (fate.status != "included")
        assert fate.reason is None or fate.reason in ingest.REASONS
        if record is not None:
            records.append(record)
    return records


def encode(text: str, how: str) -> bytes:
    if how == "utf-16":
        return text.encode("utf-16")
    if how == "cp1252":
        return text.encode("cp1252", errors="replace")
    return text.encode("utf-8")


@SETTINGS
@given(pages=st.lists(st.tuples(PAGE, st.sampled_from(["utf-8", "utf-8", "utf-16", "cp1252"])),
                      min_size=1, max_size=3))
def test_every_stage_on_arbitrary_pages(tmp_path_factory: Any, pages: list[Any]) -> None:
    folder = tmp_path_factory.mktemp("pages")
    files = [(f"site/p{number}.txt", encode(ending.join(lines), how))
             for number, ((lines, ending), how) in enumerate(pages)]
    (folder / "site").mkdir()
    records = ingest_pages(folder, files)
    for name in STAGES:
        if name in ("ingest", "export"):
            continue
        records = run_stage(name, records)
    comments: dict[str, int] = {}
    for record in records:
        if record.get("kind") == "comment":
            comments[record["article_id"]] = comments.get(record["article_id"], 0) + 1
    export_config = CONFIG.stage("export")
    for record in records:
        for _ in range(2):
            row = (export.comment_row(record, export_config) if record.get("kind") == "comment"
                   else export.article_row(record, comments.get(record["id"], 0), export_config))
            assert row == ((export.comment_row(record, export_config) if record.get("kind") == "comment"
                            else export.article_row(record, comments.get(record["id"], 0), export_config)))
        assert set(row) == set(export.COMMENT_FIELDS if record.get("kind") == "comment" else export.ARTICLE_FIELDS)


@SETTINGS
@given(text=st.text(st.characters(blacklist_categories=("Cs",)), max_size=300))
def test_utf8_files_ingest_to_their_text(tmp_path_factory: Any, text: str) -> None:
    folder = tmp_path_factory.mktemp("one")
    records = ingest_pages(folder, [("page.txt", text.encode("utf-8"))])
    if records:
        assert records[0]["text"] == text and records[0]["replaced_bytes"] == 0
    else:
        assert not text.strip() or "\x00" in text or any(ord(c) < 32 and c not in "\t\n\r\x0b\x0c" for c in text)
