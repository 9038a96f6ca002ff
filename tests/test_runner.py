"""What the main process holds while the stages run: nothing that grows with the number of
pages (issue #8). Ingest reads each page as it is found; the fates are read once the stages
are done."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import pipeline.runner as runner
from pipeline.config import load_config
from pipeline.stages import clean, ingest

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO / "seeds"
CONFIG = REPO / "configs" / "default.yaml"


def test_ingest_reads_each_page_as_it_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    found = ingest.find_inputs
    read = ingest.read_page
    yielded = [0]
    seen_when_read: list[int] = []

    def counting_find(input_dir: Path, config: ingest.Config) -> Any:
        yielded[0] = 0
        for path in found(input_dir, config):
            yielded[0] += 1
            yield path

    def counting_read(path: Path, input_dir: Path, config: ingest.Config) -> Any:
        seen_when_read.append(yielded[0])
        return read(path, input_dir, config)

    monkeypatch.setattr(ingest, "find_inputs", counting_find)
    monkeypatch.setattr(ingest, "read_page", counting_read)
    runner.run(load_config(CONFIG), SEEDS, tmp_path / "o", until="ingest", progress=False, workers=1,
               report=False)
    pages = len(list(SEEDS.glob("*.txt")))
    assert pages > 1 and seen_when_read == list(range(1, pages + 1))


@pytest.mark.parametrize("until", ["clean", "split"])
def test_fates_are_read_after_the_stages_with_their_quarantines(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, until: str) -> None:
    events: list[str] = []
    run_stage, read_jsonl = runner._run_stage, runner.read_jsonl
    original = clean.process

    def logged_stage(name: str, *args: Any) -> Any:
        events.append(f"run {name}")
        return run_stage(name, *args)

    def logged_read(path: Path) -> Any:
        events.append(f"read {path.name}")
        return read_jsonl(path)

    def fail_on_one(record: dict[str, Any], config: clean.Config) -> Any:
        if record["id"] == "001_1cc2844c57b19c1d":
            raise RuntimeError("boom")
        return original(record, config)

    monkeypatch.setattr(runner, "_run_stage", logged_stage)
    monkeypatch.setattr(runner, "read_jsonl", logged_read)
    monkeypatch.setattr(clean, "process", fail_on_one)
    result = runner.run(load_config(CONFIG), SEEDS, tmp_path / "o", until=until, progress=False, workers=1,
                        report=False)
    last_stage = max(number for number, event in enumerate(events) if event.startswith("run "))
    assert events[last_stage] == f"run {until}"
    assert events.index("read fates.jsonl") > last_stage
    fates = {fate["source"]: fate for fate in result.fates}
    assert fates["001_1cc2844c57b19c1d.txt"]["status"] == "quarantined"
    assert sum(fate["status"] == "included" for fate in fates.values()) == len(fates) - 1
