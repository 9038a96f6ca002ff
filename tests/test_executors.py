"""The executors' batch hook: a stage's `process_batch` is used when it has one, and a
failing batch falls back to one record at a time."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from pipeline.executors import PROCESS, Task, run_many
from pipeline.stage import Outcome, StageConfig
from pipeline.stages import STAGES


def _stage(batch_calls: list[int]) -> ModuleType:
    module = ModuleType("fake_stage")

    def process(record: dict[str, Any], config: StageConfig) -> Outcome:
        if record["text"] == "bad":
            raise ValueError("bad record")
        return Outcome(records=[{**record, "seen": "one"}])

    def process_batch(records: list[dict[str, Any]], config: StageConfig) -> list[Outcome]:
        batch_calls.append(len(records))
        if any(record["text"] == "bad" for record in records):
            raise ValueError("bad batch")
        return [Outcome(records=[{**record, "seen": "batch"}]) for record in records]

    module.process = process  # type: ignore[attr-defined]
    module.process_batch = process_batch  # type: ignore[attr-defined]
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
