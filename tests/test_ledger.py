"""The span ledger read backwards (pipeline/ledger.py): every page rebuilt from the final
records and the spans, problems named by page, stage and offset, and the two explicit
rules (W: split's unrecorded whitespace; D: dedup's dropped records).

The property tests at the end generate pages and check every stage alone and the
whole run end to end.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.cli import main
from pipeline.config import load_config
from pipeline.io import read_jsonl
from pipeline.ledger import (
    IMPLICIT,
    FateTable,
    LedgerError,
    Tape,
    assemble,
    check_run,
    check_stage,
    _line_info,
    _shared_record,
    first_difference,
    iter_run,
    load_run,
    page_lines,
    rebuild_run,
    stage_data,
    stage_folders,
    unapply,
    unapply_passes,
)
from pipeline.runner import run
from pipeline.stage import Outcome
from pipeline.stages import STAGES, is_corpus_stage

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO / "seeds"
CONFIG = REPO / "configs" / "default.yaml"
PAGE_000 = "000_3ff87b482df5ac51"
PAGE_003 = "003_789919c685876f23"
PAGE_004 = "004_093dd67b94dec410"


@pytest.fixture(scope="module")
def seeds_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ledger") / "data"
    run(load_config(CONFIG), SEEDS, out, progress=False)
    return out


@pytest.fixture()
def copy(seeds_run: Path, tmp_path: Path) -> Path:
    """A private copy of the seeds run, to tamper with."""
    target = tmp_path / "data"
    shutil.copytree(seeds_run, target)
    return target


def rewrite_jsonl(path: Path, change: Any) -> None:
    """Rewrite a JSONL file, `change(record)` returning the new record (or None to delete it)."""
    rows = [change(row) for row in read_jsonl(path)]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows if r is not None),
                    encoding="utf-8")


# --- the seeds --------------------------------------------------------------------------------


def test_every_seed_page_is_rebuilt_from_the_ledger(seeds_run: Path) -> None:
    assert check_run(seeds_run) == []
    results = rebuild_run(seeds_run)
    assert [r.page for r in results] == sorted(p.stem for p in SEEDS.glob("*.txt"))
    ingest = {r["id"]: r["text"] for r in read_jsonl(seeds_run / "stages/01-ingest/records.jsonl")}
    for result in results:
        assert result.tape is not None and result.truth == ingest[result.page]
        tape, truth = result.tape, result.truth
        # Exact everywhere: split records its layout whitespace, so nothing is implicit.
        assert tape.text == truth, result.page
        assert IMPLICIT not in tape.tags
        assert result.implicit == 0
        assert result.borrowed == []


def test_lines_sharing_a_verdict_are_labelled_as_alone_and_stay_separate(seeds_run: Path) -> None:
    for result in rebuild_run(seeds_run):
        lines = page_lines(result)
        tags = result.tape.tags if result.tape is not None else []
        start = 0
        for line in lines:  # each line weighed on its own, no verdict shared
            end = start + len(line.text)
            assert line == _line_info(line.number, line.text, tags[start:min(end, len(tags))], result.fates,
                                      result.records), (result.page, line.number)
            start = end + 1
        assert start - 1 <= len(result.truth or "") <= start  # every line seen
        verdict = Counter((line.label, line.detail) for line in lines if line.text.strip()).most_common(1)[0][0]
        same = [line for line in lines if (line.label, line.detail) == verdict]
        same[0].detail += " (edited)"
        same[0].changes.append("x:y")
        assert len(same) > 1 and all(not line.detail.endswith(" (edited)") and "x:y" not in line.changes
                                     for line in same[1:])


def test_reading_a_batch_at_a_time_reads_what_reading_whole_does(seeds_run: Path) -> None:
    whole = load_run(seeds_run)
    batches = list(iter_run(seeds_run, 2))
    assert len(batches) == 3  # the five seeds
    for position, stage in enumerate(whole):
        for field_name in ("records", "entries"):
            parts = [getattr(batch[position], field_name) for batch in batches]
            merged = {page: found for part in parts for page, found in part.items()}
            assert json.dumps(merged) == json.dumps(getattr(stage, field_name)), (stage.name, field_name)


def test_a_line_with_members_added_is_read_from_the_line_before() -> None:
    before_line = b'{"id":"p#c1","text":"a \\"b\\"","origin":[[0,5]]}\n'
    before = json.loads(before_line)
    assert _shared_record(before_line, before_line, before) is before
    added = b'{"id":"p#c1","text":"a \\"b\\"","origin":[[0,5]],"language":"en","score":{"x":1}}\n'
    assert json.dumps(_shared_record(added, before_line, before)) == json.dumps(json.loads(added))
    for other in (b'{"id":"p#c1","text":"a \\"b\\"","origin":[[0,5]]}  \n',  # same record, not the same line
                  b'{"id":"p#c1","text":"a \\"b\\"","origin":[[0,5],[6,7]]}\n',
                  b'{"id":"p#c1","text":"a \\"b\\"","origin":[[0,5]],}\n'):
        assert _shared_record(other, before_line, before) is None
    assert _shared_record(b'{,"id":"x"}', b"{}", {}) is None


def test_verify_reconstruct_command(seeds_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "--reconstruct", str(seeds_run)]) == 0
    out = capsys.readouterr().out
    assert "5/5 pages rebuilt" in out
    # The positional CORPUS_DIR keeps its meaning without the flag.
    assert main(["verify", str(seeds_run / "corpus" / "0.1.0")]) == 0
    assert "matches its manifest" in capsys.readouterr().out


def test_verify_reconstruct_without_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "--reconstruct", str(tmp_path)]) == 2
    assert "no stage outputs" in capsys.readouterr().err


# --- tampering: the first failing page, stage and offset ---------------------------------------


def test_a_wrong_clean_span_is_found_at_its_offset(copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first: dict[str, Any] = {}

    def change(entry: dict[str, Any]) -> dict[str, Any]:
        if entry["id"] == PAGE_000:
            span = min((s for s in entry["spans"] if s.get("pass", 0) == 0), key=lambda s: s["start"])
            first.update(span)
            span["original"] = "X" * len(span["original"])
        return entry

    rewrite_jsonl(copy / "stages/02-clean/spans.jsonl", change)
    offset = first["start"]
    problems = check_run(copy)
    assert [(p.page, p.stage, p.offset) for p in problems] == [(PAGE_000, "clean", offset)]
    assert main(["verify", "--reconstruct", str(copy)]) == 1
    captured = capsys.readouterr()
    assert f"{PAGE_000}: clean input, offset {offset}:" in captured.out
    assert "1 of 5 page(s) cannot be rebuilt" in captured.err


def test_a_missing_boilerplate_span_is_found(copy: Path) -> None:
    removed: dict[str, Any] = {}

    def change(entry: dict[str, Any]) -> dict[str, Any]:
        if entry["id"] == PAGE_004:
            removed.update(entry["spans"].pop(5))
        return entry

    rewrite_jsonl(copy / "stages/03-boilerplate/spans.jsonl", change)
    problems = check_run(copy)
    assert len(problems) == 1
    problem = problems[0]
    assert (problem.page, problem.stage) == (PAGE_004, "boilerplate")
    # The rebuilt text lacks the removed line: it cannot match from where the line stood on.
    assert problem.offset >= removed["start"]


def test_a_changed_final_record_is_found_in_the_last_stage(copy: Path) -> None:
    def change(record: dict[str, Any]) -> dict[str, Any]:
        if record["id"] == PAGE_003:
            record["text"] = record["text"][:100] + "#" + record["text"][101:]
        return record

    rewrite_jsonl(copy / "stages/07-langid/records.jsonl", change)
    problems = check_run(copy)
    assert [(p.page, p.stage, p.record, p.offset) for p in problems] == [(PAGE_003, "langid", PAGE_003, 100)]


def test_a_shifted_origin_is_found_by_split(copy: Path) -> None:
    def change(record: dict[str, Any]) -> dict[str, Any]:
        if record["id"] == PAGE_003:
            start, end = record["origin"][2]
            record["origin"][2] = [start + 1, end + 1]
        return record

    rewrite_jsonl(copy / "stages/07-langid/records.jsonl", change)
    problems = check_run(copy)
    assert len(problems) == 1 and problems[0].stage == "split" and problems[0].page == PAGE_003


def test_one_problem_per_page_the_others_still_pass(copy: Path) -> None:
    def change(entry: dict[str, Any]) -> dict[str, Any] | None:
        return None if entry["id"] in (PAGE_000, PAGE_004) else entry

    rewrite_jsonl(copy / "stages/05-metadata/spans.jsonl", change)
    problems = check_run(copy)
    assert sorted(p.page for p in problems) == [PAGE_000, PAGE_004]
    assert {p.stage for p in problems} == {"metadata"}
    assert all(p.offset == 0 for p in problems)  # both lose their title line at offset 0


# --- rule W: split's whitespace ------------------------------------------------------------------


def test_a_missing_split_span_is_found(copy: Path) -> None:
    """Split accounts for every character (layout spans included): a gap is a problem."""
    header: dict[str, Any] = {}

    def change(entry: dict[str, Any]) -> dict[str, Any]:
        if entry["id"] == PAGE_000:
            header.update(next(s for s in entry["spans"] if s["reason"] == "comment_header"))
            entry["spans"] = [s for s in entry["spans"] if s != header]
        return entry

    rewrite_jsonl(copy / "stages/04-split/spans.jsonl", change)
    problems = check_run(copy)
    assert len(problems) == 1
    problem = problems[0]
    assert (problem.page, problem.stage) == (PAGE_000, "split")
    assert header["start"] <= problem.offset <= header["end"]


def test_rule_w_positions_are_known_values_are_not() -> None:
    a = Tape.uniform("abc", 1)
    tape = assemble([(2, 5, a, "record a"), (7, 8, Tape.uniform("d", 1), "span x")], "split")
    assert tape.text[:2] == "\ufdd0\ufdd0" and tape.open_tail
    assert first_difference(tape, "\n abc\t\nd") is None
    assert first_difference(tape, "\n abc\t\nd\n \n") is None  # open tail: whitespace of any length
    assert first_difference(tape, "\n abcx\nd")[0] == 5  # type: ignore[index]
    assert first_difference(tape, "\n abc\t\nd\n z")[0] == 8  # type: ignore[index]
    with pytest.raises(LedgerError, match="claimed twice"):
        assemble([(0, 3, a, "record a"), (2, 5, a, "record b")], "split")


def test_a_missing_layout_span_is_found(copy: Path) -> None:
    """Split's layout spans cover only whitespace, yet a missing one is a problem."""
    path = copy / "stages/04-split/spans.jsonl"
    removed: dict[str, Any] = {}

    def drop_one(entry: dict[str, Any]) -> dict[str, Any]:
        if entry["id"] == PAGE_003:
            removed.update([s for s in entry["spans"] if s["reason"] == "layout"][3])
            entry["spans"].remove(removed)
        return entry

    rewrite_jsonl(path, drop_one)
    problems = check_run(copy)
    assert [(p.page, p.stage, p.offset) for p in problems] == [(PAGE_003, "split", removed["start"])]
    assert "in no record and no span" in problems[0].message


# --- rule D: dedup's dropped records -------------------------------------------------------------


@pytest.fixture(scope="module")
def duplicate_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("dups")
    inputs = base / "in"
    inputs.mkdir()
    for path in SEEDS.glob("*.txt"):
        shutil.copy(path, inputs / path.name)
    shutil.copy(SEEDS / f"{PAGE_003}.txt", inputs / "zz_copy_of_003.txt")
    run(load_config(CONFIG), inputs, base / "data", progress=False)
    return base / "data"


def test_dedup_drops_are_in_the_ledger(duplicate_run: Path) -> None:
    """Dedup records a dropped record's whole text as a span: nothing is borrowed."""
    entries = list(read_jsonl(duplicate_run / "stages/06-dedup/spans.jsonl"))
    assert {e["id"]: e["dropped"] for e in entries if e.get("dropped")} == {"zz_copy_of_003": "exact_duplicate"}
    assert check_run(duplicate_run, strict=True) == []
    result = next(r for r in rebuild_run(duplicate_run) if r.page == "zz_copy_of_003")
    assert result.borrowed == []


def test_dedup_drops_with_whole_record_spans_are_checked_exactly(duplicate_run: Path, tmp_path: Path) -> None:
    """If dedup records a dropped record's text as a span, nothing is borrowed and it is checked."""
    out = tmp_path / "data"
    shutil.copytree(duplicate_run, out)
    texts = {r["id"]: r["text"] for r in read_jsonl(out / "stages/05-metadata/records.jsonl")}

    def whole(entry: dict[str, Any]) -> dict[str, Any]:
        if not entry.get("dropped"):
            return entry
        text = texts[entry["id"]]
        entry["spans"] = [{"start": 0, "end": len(text), "reason": entry["dropped"], "original": text}]
        return entry

    rewrite_jsonl(out / "stages/06-dedup/spans.jsonl", whole)
    assert check_run(out, strict=True) == []
    assert next(r for r in rebuild_run(out) if r.page == "zz_copy_of_003").borrowed == []

    def corrupt(entry: dict[str, Any]) -> dict[str, Any]:
        if not entry.get("dropped"):
            return entry
        entry["spans"][0]["original"] = "Z" + entry["spans"][0]["original"][1:]
        return entry

    rewrite_jsonl(out / "stages/06-dedup/spans.jsonl", corrupt)
    assert [(p.page, p.stage, p.offset) for p in check_run(out)] == [("zz_copy_of_003", "dedup", 0)]


def test_in_record_dedup_spans_are_undone(copy: Path) -> None:
    """dedup may remove repeated lines inside a record ("repeated_line" spans)."""
    comment_id = f"{PAGE_000}#c2"
    texts = {r["id"]: r["text"] for r in read_jsonl(copy / "stages/05-metadata/records.jsonl")}
    text = texts[comment_id]
    cut = text.index("\n") + 1
    cut_end = text.index("\n", cut) + 1
    span = {"start": cut, "end": cut_end, "reason": "repeated_line", "original": text[cut:cut_end]}

    def drop_line(record: dict[str, Any]) -> dict[str, Any]:
        if record["id"] == comment_id:
            record["text"] = text[:cut] + text[cut_end:]
        return record

    for stage in ("06-dedup", "07-langid"):
        rewrite_jsonl(copy / "stages" / stage / "records.jsonl", drop_line)
    with (copy / "stages/06-dedup/spans.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"id": comment_id, "spans": [span]}) + "\n")
    assert check_run(copy) == []


# --- the chain of stage folders ------------------------------------------------------------------


def test_left_over_stage_folders_of_another_run_are_not_chained(copy: Path) -> None:
    assert [name for name, _ in stage_folders(copy)][-1] == "langid"
    # Keeping "[email protected]" changes what boilerplate writes; split's folder is then stale.
    run(load_config(CONFIG, ["clean.remove_artifacts=false"]), SEEDS, copy, until="boilerplate", progress=False)
    assert [name for name, _ in stage_folders(copy)] == ["ingest", "clean", "boilerplate"]
    assert check_run(copy) == []


def test_an_until_run_is_rebuilt_from_its_last_stage(tmp_path: Path) -> None:
    run(load_config(CONFIG), SEEDS, tmp_path / "o", until="split", progress=False)
    assert check_run(tmp_path / "o") == []


# --- unapply ---------------------------------------------------------------------------------------


def test_unapply_swaps_replacements_back_and_checks_them() -> None:
    fates = FateTable()
    out = Tape.uniform("a b\nc", 1)
    spans = [{"start": 1, "end": 2, "reason": "odd_space", "original": "\u00a0", "replacement": " "},
             {"start": 3, "end": 5, "reason": "line_ending", "original": "\r\n", "replacement": "\n"}]
    assert unapply(out, spans, "clean", fates).text == "a\u00a0b\r\nc"
    bad = [{**spans[0], "replacement": "_"}]
    with pytest.raises(LedgerError, match="expects its replacement"):
        unapply(out, bad, "clean", fates)
    with pytest.raises(LedgerError, match="overlaps"):
        unapply(out, [spans[1], {**spans[1], "start": 4, "original": "\n"}], "clean", fates)
    with pytest.raises(LedgerError, match="original characters"):
        unapply(out, [{**spans[0], "original": "xx"}], "clean", fates)


def test_passes_are_undone_last_first() -> None:
    fates = FateTable()
    # pass 0: "&amp;" -> "&" (input "x&amp;y" -> "x&y"); pass 1 (offsets into "x&y"): "&" -> "and"
    spans = [{"start": 1, "end": 6, "reason": "html_entity", "original": "&amp;", "replacement": "&", "pass": 0},
             {"start": 1, "end": 2, "reason": "other", "original": "&", "replacement": "and", "pass": 1}]
    assert unapply_passes(Tape.uniform("xandy", 1), spans, "clean", fates).text == "x&amp;y"


# --- property tests: generated pages through every stage --------------------------------------------

WORDS = ["the", "war", "said", "of", "and", "city", "café", "naïve", "Ωmega", "日本語", "🙂", "forces", "was",
         "&amp;", "&#160;", "x\u00a0y", "zero\u200bwidth", "soft\u00adhyphen", "ctl\x07", "Ã©tat", "tab\tbed",
         "e\u0301", "[email protected]", "«quoted»", "—", "it", "to", "a", "in", "reporters"]
WIDGETS = ["Share this:", "Leave a Reply", "Advertisement", "Continue Reading", "Latest", "Donate now",
           "Subscribe", "Home | News | Contact | About", "Reply", "10,645 Views", "next page »",
           "The comments to this entry are closed.", "3 Comments", "Related Posts", "Menu", "Skip to content"]
NAMES = ["mikael", "Brian Harry, Australia", "BigB", "Anna", "b", "Zoë", "Jean-Luc"]

any_char = st.characters(blacklist_categories=("Cs",), blacklist_characters="\n")
word = st.one_of(st.sampled_from(WORDS), st.text(any_char, min_size=1, max_size=8))
prose = st.builds(lambda words, end: " ".join(words) + end,
                  st.lists(word, min_size=1, max_size=24), st.sampled_from([".", "!", "?", ":", "", "…"]))
name = st.one_of(st.sampled_from(NAMES), st.text(st.characters(whitelist_categories=("Lu", "Ll")), min_size=1,
                                                 max_size=10))
says = st.builds(lambda bullet, who, verb: f"{bullet}{who} {verb}", st.sampled_from(["", "• ", "1. ", "2) ", "- "]),
                 name, st.sampled_from(["says", "says:", "said", "Says"]))
signature = st.builds(lambda who, d, h, m, n: f"Posted by: {who} | Dec {d} 2016 {h:02d}:{m:02d} utc | {n}",
                      name, st.integers(1, 28), st.integers(0, 23), st.integers(0, 59), st.integers(1, 200))
dateline = st.sampled_from(["December 12, 2016 at 4:09 pm", "by Tim Anderson", "12 mars 2016",
                            "Posted by b on December 12, 2016 at 14:18 UTC | Permalink", "Published", "on"])
indent = st.sampled_from(["", "", "", "  ", "    ", "\t", "      ", "\u00a0"])
bullet = st.sampled_from(["", "", "• ", "* ", "- ", "3. "])
line = st.one_of(
    st.builds(lambda i, b, t: i + b + t, indent, bullet, prose),
    st.builds(lambda i, t: i + t, indent, st.sampled_from(WIDGETS)),
    st.builds(lambda i, t: i + t, indent, says),
    signature,
    dateline,
    st.just(""),
    st.text(any_char, max_size=30),
)
page_text = st.builds(lambda lines, sep, tail: sep.join(lines) + tail,
                      st.lists(line, min_size=1, max_size=30),
                      st.sampled_from(["\n", "\n", "\n\n", "\r\n", "\r"]),
                      st.sampled_from(["", "\n", "\n\n", "  \n", " "]))
pages = st.builds(lambda texts, copy_first: texts + texts[:1] if copy_first else texts,
                  st.lists(page_text, min_size=1, max_size=3), st.booleans())
overrides = st.lists(st.sampled_from(["clean.normalize=NFKC", "split.related=drop", "dedup.mode=mark",
                                      "clean.fold_spaces=false", "split.comments=false",
                                      "boilerplate.template_min_pages=2"]), max_size=3, unique=True)

PROPERTY = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def entry_of(record: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
    """The spans.jsonl entry the runner writes for one input record (see runner._StageWriter)."""
    entry: dict[str, Any] = {"id": record["id"]}
    passes = outcome.all_passes()
    if passes:
        entry["spans"] = [{**span.to_json(), **({"pass": n} if len(passes) > 1 else {})}
                          for n, spans in enumerate(passes) for span in spans]
    if not outcome.records:
        entry["dropped"] = outcome.drop_reason or "dropped"
        entry.update(outcome.notes)
    return entry


def run_in_memory(texts: list[str], sets: list[str]) -> list[tuple[Any, Any, list[dict[str, Any]]]]:
    """Every stage over the pages; per stage (input StageData, output StageData, its entries)."""
    config = load_config(CONFIG, sets)
    records = [{"id": f"site/p{i}", "source": f"site/p{i}.txt", "source_sha256": "0" * 64, "site_key": "site",
                "bytes": len(text.encode("utf-8")), "encoding": "utf-8", "replaced_bytes": 0, "text": text}
               for i, text in enumerate(texts)]
    before = stage_data("ingest", records)
    done = []
    for name in ("clean", "boilerplate", "split", "metadata", "dedup", "langid"):
        module = STAGES[name]
        stage_config = config.stage(name)
        state = module.learn(iter(records), stage_config) if is_corpus_stage(module) else None
        outputs: list[dict[str, Any]] = []
        entries: list[dict[str, Any]] = []
        for record in records:
            outcome = module.process(record, stage_config) if state is None else \
                module.process(record, stage_config, state)
            entry = entry_of(record, outcome)
            if len(entry) > 1:
                entries.append(entry)
            outputs.extend(outcome.records)
        after = stage_data(name, outputs, entries, records)
        done.append((before, after, entries))
        before, records = after, outputs
    return done


@PROPERTY
@given(pages, overrides)
def test_property_every_stage_is_undone_by_its_spans(texts: list[str], sets: list[str]) -> None:
    for before, after, entries in run_in_memory(texts, sets):
        problems = check_stage(before, after)
        assert problems == [], (after.name, texts)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(pages, overrides)
def test_property_end_to_end_every_page_is_rebuilt(tmp_path_factory: pytest.TempPathFactory,
                                                   texts: list[str], sets: list[str]) -> None:
    base = tmp_path_factory.mktemp("e2e")
    inputs = base / "in" / "site"
    inputs.mkdir(parents=True)
    for i, text in enumerate(texts):
        (inputs / f"p{i}.txt").write_bytes(text.encode("utf-8"))
    run(load_config(CONFIG, sets), base / "in", base / "out", progress=False)
    problems = check_run(base / "out")
    assert problems == [], texts
    shutil.rmtree(base, ignore_errors=True)


SPLIT_GAP_PAGE = ("I think this is a very good point about the war.\n"
                  "Posted by: Anna | Dec 12 2016 14:48 utc | 1\n"
                  "No, it is not, and you know it very well.\n"
                  "Posted by: BigB | Dec 12 2016 15:02 utc | 2\n")


def test_split_no_article_page_records_its_comment_bodies() -> None:
    stages = run_in_memory([SPLIT_GAP_PAGE], [])
    before, after, entries = stages[2]
    assert after.name == "split" and entries and entries[0].get("dropped") == "no_article"
    assert check_stage(before, after) == []
