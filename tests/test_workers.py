"""--workers N writes the same bytes as --workers 1, whatever order the pages were written in."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import load_config
from pipeline.executors import PROCESS, Collect, Line, Task, run_lines
from pipeline.io import read_jsonl
from pipeline.runner import _Execution, _map_records, run
from pipeline.stages import boilerplate

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO / "seeds"
CONFIG = REPO / "configs" / "default.yaml"
# Fields about the run rather than its output: time taken, when, and the fingerprint
# (input files' times, and the code, which may change between two runs of a test).
RUN_FIELDS = {"stats.json": ["timing"], "stage.json": ["fingerprint"]}


def write_pages(folder: Path, copies: int, seed: int) -> Path:
    """Copies of the seeds in two site folders, created in a shuffled order."""
    pages = [(copy, path) for copy in range(copies) for path in sorted(SEEDS.glob("*.txt"))]
    random.Random(seed).shuffle(pages)
    for copy, path in pages:
        target = folder / f"site{copy % 2}" / f"{copy}-{path.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f"Copy {copy} of the page.\n\n{path.read_text(encoding='utf-8')}", encoding="utf-8")
    return folder


def outputs(out: Path) -> dict[str, bytes]:
    """Every file a run writes, less what says how the run went (timing, locks, cache)."""
    found: dict[str, bytes] = {}
    for path in sorted(out.rglob("*")):
        relative = path.relative_to(out).as_posix()
        if not path.is_file() or relative.startswith(("cache/", ".")):
            continue
        if path.name in RUN_FIELDS:
            data = json.loads(path.read_text(encoding="utf-8"))
            for key in RUN_FIELDS[path.name]:
                data.pop(key, None)
            found[relative] = json.dumps(data).encode()
        else:
            found[relative] = path.read_bytes()
    return found


def assert_same(a: Path, b: Path) -> None:
    left, right = outputs(a), outputs(b)
    assert sorted(left) == sorted(right)
    differ = [name for name in left if left[name] != right[name] and not name.startswith("audit/")]
    assert not differ, f"outputs differ: {differ}"


def test_seeds_one_and_two_workers_write_the_same_bytes(tmp_path: Path) -> None:
    config = load_config(CONFIG)
    run(config, SEEDS, tmp_path / "one", progress=False, workers=1, cache=False)
    run(config, SEEDS, tmp_path / "two", progress=False, workers=2, cache=False)
    assert_same(tmp_path / "one", tmp_path / "two")


def test_shuffled_corpus_one_and_two_workers_write_the_same_bytes(tmp_path: Path) -> None:
    config = load_config(CONFIG)
    run(config, write_pages(tmp_path / "a", 4, seed=1), tmp_path / "one", progress=False, workers=1, cache=False)
    run(config, write_pages(tmp_path / "b", 4, seed=2), tmp_path / "two", progress=False, workers=2, cache=False)
    assert_same(tmp_path / "one", tmp_path / "two")
    timing = json.loads((tmp_path / "two/stages/02-clean/stats.json").read_text(encoding="utf-8"))["timing"]
    assert timing["workers"] == 2 and timing["executor"] == "local"
    assert timing["records_computed"] == 20 and timing["cpu_seconds"] > 0
    assert 0 < timing["parent_cpu_seconds"] < timing["cpu_seconds"], "the workers' CPU time is counted too"


def test_boilerplate_learn_is_combine_of_summaries_in_any_order(tmp_path: Path) -> None:
    config = load_config(CONFIG).stage("boilerplate")
    pages = write_pages(tmp_path / "pages", 4, seed=3)
    records = [{"id": path.name, "site_key": path.parent.name, "text": path.read_text(encoding="utf-8")}
               for path in sorted(pages.rglob("*.txt"))]
    summaries = [boilerplate.summarize(record, config) for record in records]
    random.Random(4).shuffle(summaries)
    learned = boilerplate.learn(records, config)
    assert learned["templates"], "the copies share lines: some templates are learned"
    assert boilerplate.combine(summaries, config) == learned


@pytest.mark.parametrize("workers", [0, -1])
def test_workers_must_be_positive(tmp_path: Path, workers: int) -> None:
    from pipeline.errors import InputError

    with pytest.raises(InputError, match="--workers"):
        run(load_config(CONFIG), SEEDS, tmp_path / "o", progress=False, workers=workers)


def test_records_stream_through_in_input_order(tmp_path: Path) -> None:
    config = load_config(CONFIG)
    out = tmp_path / "o"
    run(config, write_pages(tmp_path / "p", 4, seed=5), out, progress=False, workers=2, until="clean")
    ids = [record["id"] for record in read_jsonl(out / "stages/02-clean/records.jsonl")]
    assert ids == [record["id"] for record in read_jsonl(out / "stages/01-ingest/records.jsonl")]


class RecordingExecutor:
    """Serial, in chunks of 3, logging when each chunk is submitted and collected."""

    name = "recording"
    workers = 1
    chunk_size = 3
    in_flight = 2
    cpu_seconds = 0.0

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []

    @contextmanager
    def start(self, task: Task) -> Iterator[Any]:
        def submit(lines: Sequence[Line]) -> Collect:
            chunk = sum(1 for event, _ in self.events if event == "submit")
            self.events.append(("submit", chunk))

            def collect() -> list[Any]:
                self.events.append(("collect", chunk))
                return run_lines(task, lines)

            return collect

        yield submit


def test_the_next_chunk_is_in_flight_while_one_is_written(tmp_path: Path) -> None:
    out = tmp_path / "o"
    run(load_config(CONFIG), write_pages(tmp_path / "p", 2, seed=6), out, progress=False, workers=1, until="ingest")
    source = out / "stages/01-ingest/records.jsonl"
    executor = RecordingExecutor()
    task = Task("clean", PROCESS, load_config(CONFIG).stage("clean"), source=str(source))
    values = list(_map_records(task, source, _Execution(executor, 1, "code", None, False), None, "", Counter()))
    assert [value.id for value in values] == [record["id"] for record in read_jsonl(source)]
    chunks = -(-len(values) // 3)
    assert chunks >= 3
    outstanding, most = 0, 0
    for event, chunk in executor.events:
        outstanding += 1 if event == "submit" else -1
        most = max(most, outstanding)
        if event == "collect" and chunk < chunks - 1:
            assert ("submit", chunk + 1) in executor.events[:executor.events.index((event, chunk))], \
                f"chunk {chunk + 1} was not submitted before chunk {chunk} was collected"
    assert most == 2 and outstanding == 0


def test_many_small_chunks_in_flight_write_the_same_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(CONFIG)
    run(config, SEEDS, tmp_path / "one", progress=False, workers=1, cache=False)
    monkeypatch.setattr("pipeline.executors.local.CHUNK_PER_WORKER", 5)
    monkeypatch.setattr("pipeline.executors.local.MIN_POOL_RECORDS", 1)
    monkeypatch.setattr("pipeline.executors.local.IN_FLIGHT", 3)
    run(config, SEEDS, tmp_path / "two", progress=False, workers=2, cache=False)
    assert_same(tmp_path / "one", tmp_path / "two")


def test_stages_warm_once_in_the_parent_before_workers_fork(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from pipeline.stages import STAGES

    calls: list[tuple[str, int]] = []
    for name in ("split", "langid"):
        monkeypatch.setattr(STAGES[name], "warm", lambda config, name=name: calls.append((name, os.getpid())),
                            raising=False)
    pages = write_pages(tmp_path / "pages", 2, seed=3)
    run(load_config(CONFIG), pages, tmp_path / "one", progress=False, workers=1)
    assert calls == []  # one process: each stage loads what it needs as it goes
    run(load_config(CONFIG), pages, tmp_path / "two", progress=False, workers=2)
    assert calls == [("split", os.getpid()), ("langid", os.getpid())]
    assert_same(tmp_path / "one", tmp_path / "two")
