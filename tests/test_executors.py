"""The executors' batch hook: a stage's `process_batch` is used when it has one, and a
failing batch falls back to one record at a time. What a worker returns for raw record
lines: the stage folder's lines already serialised, or a summary object, and the cache
entries made from them."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from pipeline.document import Span
from pipeline.errors import StageError
from pipeline.executors import PROCESS, SUMMARIZE, Task, run_batch, run_here, run_lines, run_many, unpickled
from pipeline.executors.cache import RecordCache
from pipeline.runner import _StageWriter
from pipeline.stage import Outcome, StageConfig
from pipeline.stages import STAGES


def _outcome(record: dict[str, Any], seen: str) -> Outcome:
    """Leading spaces are trimmed (a span per record that has them); "odd" gets a span
    whose reason the stage does not declare; "gone" is dropped."""
    if record["text"] == "gone":
        return Outcome(records=[], spans=[Span(0, 4, "trimmed", "gone")], drop_reason="empty",
                       notes={"was": "gone"})
    if record["text"] == "odd":
        return Outcome(records=[{**record}], spans=[Span(0, 1, "undeclared", "o", "O")])
    text = record["text"].lstrip(" ")
    cut = len(record["text"]) - len(text)
    spans = [Span(0, cut, "trimmed", record["text"][:cut])] if cut else []
    return Outcome(records=[{**record, "text": text, "seen": seen}], spans=spans)


def _stage(batch_calls: list[int]) -> ModuleType:
    module = ModuleType("fake_stage")

    def process(record: dict[str, Any], config: StageConfig) -> Outcome:
        if record["text"] == "bad":
            raise ValueError("bad record")
        return _outcome(record, "one")

    def process_batch(records: list[dict[str, Any]], config: StageConfig) -> list[Outcome]:
        batch_calls.append(len(records))
        if any(record["text"] == "bad" for record in records):
            raise ValueError("bad batch")
        return [_outcome(record, "batch") for record in records]

    def summarize(record: dict[str, Any], config: StageConfig) -> tuple[str, int]:
        return record["id"], len(record["text"])

    module.NAME = "fake"  # type: ignore[attr-defined]
    module.REASONS = frozenset({"trimmed"})  # type: ignore[attr-defined]
    module.process = process  # type: ignore[attr-defined]
    module.process_batch = process_batch  # type: ignore[attr-defined]
    module.summarize = summarize  # type: ignore[attr-defined]
    return module


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    monkeypatch.setitem(STAGES, "fake", _stage(calls))
    return calls


def test_a_batch_goes_to_process_batch_in_one_call(fake: list[int]) -> None:
    records = [{"id": str(n), "text": f"t{n}"} for n in range(5)]
    results = run_many(Task("fake", PROCESS, StageConfig()), records)
    assert fake == [5]
    assert [r.value.records[0]["id"] for r in results] == ["0", "1", "2", "3", "4"]
    assert {r.value.records[0]["seen"] for r in results} == {"batch"}


def test_a_failing_batch_is_run_record_by_record_and_only_the_bad_one_fails(fake: list[int]) -> None:
    records = [{"id": "a", "text": "fine"}, {"id": "b", "text": "bad"}, {"id": "c", "text": "fine"}]
    results = run_many(Task("fake", PROCESS, StageConfig()), records)
    assert fake == [3]
    assert results[0].value.records[0]["seen"] == "one" and results[2].error is None
    assert results[1].value is None and results[1].error == "ValueError: bad record"


def _lines(records: list[dict[str, Any]]) -> list[tuple[int, bytes]]:
    """Records as the runner hands them over: (line number, raw line)."""
    return [(number, (json.dumps(record) + "\n").encode()) for number, record in enumerate(records, 1)]


def _canonical(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def test_lines_in_serialised_lines_and_counts_out(fake: list[int]) -> None:
    records = [{"id": "a", "source": "a.txt", "text": "  Ünïcode"}, {"id": "b", "source": "b.txt", "text": "bad"},
               {"id": "c", "text": "gone"}, {"id": "d", "text": "plain"}]
    a, b, c, d = run_lines(Task("fake", PROCESS, StageConfig(), source="in.jsonl"), _lines(records))
    assert fake == [4], "the batch was tried first, then each record alone"
    assert a.records == _canonical({"id": "a", "source": "a.txt", "text": "Ünïcode", "seen": "one"})
    assert (a.id, a.source, a.chars_in, a.records_out, a.chars_out) == ("a", "a.txt", 9, 1, 7)
    assert a.reasons == (("trimmed", 1, 2),) and a.dropped is None and a.error is None
    assert a.spans == _canonical({"id": "a", "spans": [{"start": 0, "end": 2, "reason": "trimmed",
                                                        "original": "  "}]})
    assert b.error == "ValueError: bad record" and b.dropped == "error" and b.records == b"" and b.chars_in == 3
    assert b.spans == _canonical({"id": "b", "dropped": "error", "error": "ValueError: bad record"})
    assert c.records == b"" and c.records_out == 0 and c.dropped == "empty" and c.error is None
    assert c.spans == _canonical({"id": "c", "spans": [{"start": 0, "end": 4, "reason": "trimmed",
                                                        "original": "gone"}], "dropped": "empty", "was": "gone"})
    assert d.spans == b"" and d.reasons == () and d.records == _canonical({**records[3], "seen": "one"})


def test_an_undeclared_reason_ends_the_stage(fake: list[int]) -> None:
    with pytest.raises(StageError, match="undeclared reason 'undeclared'"):
        run_lines(Task("fake", PROCESS, StageConfig()), _lines([{"id": "a", "text": "odd"}]))


def test_a_line_that_is_not_json_is_named_by_file_and_line(fake: list[int]) -> None:
    lines = [*_lines([{"id": "a", "text": "fine"}]), (2, b'{"id": "b", "text\n')]
    with pytest.raises(ValueError, match=r"in\.jsonl:2: not valid JSON"):
        run_lines(Task("fake", PROCESS, StageConfig(), source="in.jsonl"), lines)


def test_summaries_come_back_as_objects(fake: list[int]) -> None:
    records = [{"id": "a", "text": "one"}, {"id": "b", "text": "three"}]
    assert run_lines(Task("fake", SUMMARIZE, StageConfig()), _lines(records)) == [("a", 3), ("b", 5)]



def test_workers_return_pickles_and_the_cache_entries_made_from_them(fake: list[int], tmp_path: Path) -> None:
    """The runner loads the values and only inserts the entries; a failed record has none."""
    records = [{"id": "a", "text": "  fine"}, {"id": "b", "text": "bad"}, {"id": "c", "text": "plain"}]
    task = Task("fake", PROCESS, StageConfig(), cache=True)
    pickles, entries, cpu = run_batch(task, _lines(records))
    values = unpickled(pickles, entries)
    assert values == run_lines(task, _lines(records)) and cpu >= 0
    assert entries is not None and entries[1] is None and values[1].error is not None
    # A value with an entry is sent once, inside it; the failed record's pickle is sent as is.
    assert pickles[0] == pickles[2] == b"" and pickles[1] and all(entries[i] for i in (0, 2))
    assert run_here(task, _lines(records)) == (values, entries)
    summaries = run_here(Task("fake", SUMMARIZE, StageConfig(), cache=True), _lines(records))
    cache = RecordCache(tmp_path / "c", "fake")
    keys = [cache.key(PROCESS, "a"), cache.key(PROCESS, "c"), *(cache.key(SUMMARIZE, r["id"]) for r in records)]
    cache.put_many(list(zip(keys, [entries[0], entries[2], *(summaries.entries or [])])))
    cache.close()
    cache = RecordCache(tmp_path / "c", "fake")
    assert cache.get_many(keys) == [values[0], values[2], ("a", 6), ("b", 3), ("c", 5)]
    cache.close()
    uncached = run_batch(Task("fake", PROCESS, StageConfig()), _lines(records))
    assert uncached[1] is None and unpickled(uncached[0]) == values
    assert run_here(Task("fake", SUMMARIZE, StageConfig()), _lines(records)).entries is None


def test_a_chunk_written_at_once_is_written_as_record_by_record(fake: list[int], tmp_path: Path) -> None:
    """`_StageWriter.add_many` (what the runner does per chunk) makes the same files and
    counts as `add_lines` one record at a time, quarantined and dropped records included."""
    records = [{"id": "a", "text": "  fine", "source": "a.txt"}, {"id": "b", "text": "bad", "source": "b.txt"},
               {"id": "c", "text": "gone"}, {"id": "d", "text": "plain"}, {"id": "e", "text": " two"}]
    values = run_lines(Task("fake", PROCESS, StageConfig()), _lines(records))
    stats = []
    for name, write in (("one", lambda w: [w.add_lines(v) for v in values]), ("all", lambda w: w.add_many(values))):
        (tmp_path / name).mkdir()
        writer = _StageWriter(tmp_path / name, STAGES["fake"])
        write(writer)
        stats.append(writer.finish(1.0, {}))
    assert stats[0] == stats[1] and stats[0][0]["documents_in"] == 5 and stats[0][0]["dropped_by_reason"]
    for file in ("records.jsonl", "spans.jsonl", "quarantine.jsonl"):
        assert (tmp_path / "one" / file).read_bytes() == (tmp_path / "all" / file).read_bytes()
    assert (tmp_path / "all" / "quarantine.jsonl").read_bytes().count(b"\n") == 1
    assert (tmp_path / "all" / "spans.jsonl").read_bytes().count(b"\n") == sum(1 for v in values if v.spans) >= 3
