"""How the stages' per-record work is run: here, in a process pool, or on Ray.

The runner reads a stage's input in chunks, takes what it can from the per-record
cache (`cache.py`), and hands the rest to an executor as a `Task` (stage, phase,
config, state) and a list of records. The executor returns one `Result` per record,
in the order given, so the output does not depend on how the work was spread.

- `local.py`: serial (`--workers 1`) or a process pool over batches of records.
- `ray.py`: Ray Data batch maps, and corpus stages in distributed (group-by) form.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from pipeline.errors import InputError
from pipeline.stage import Record, StageConfig
from pipeline.stages import STAGES

PROCESS = "process"
SUMMARIZE = "summarize"
EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class Task:
    """One stage's per-record work: `process` (with the learned state of a corpus stage)
    or `summarize` (the map half of a corpus stage's learn). Sent to each worker once."""

    stage: str
    phase: str
    config: StageConfig
    state: Any = None


@dataclass(frozen=True)
class Result:
    """What became of one record: the stage's value, or the error it raised (process only)."""

    value: Any = None
    error: str | None = None


Mapper = Callable[[Sequence[Record]], list[Result]]

PARENT_ONLY_FDS: set[int] = set()
"""File descriptors only the run's own process may hold (the output folder's lock): a
forked worker closes its copies, so the lock goes with the parent if the run is killed."""


class Executor(Protocol):
    """What the runner needs from an executor."""

    name: str
    workers: int
    chunk_size: int  # records the runner reads (and looks up in the cache) at a time
    cpu_seconds: float  # CPU time spent in workers (other processes) so far

    def start(self, task: Task) -> AbstractContextManager[Mapper]:
        """Get ready to run `task`; the mapper runs it over a list of records, in order."""
        ...

    def learn(self, stage: str, config: StageConfig, summaries: list[Any]) -> Any:
        """A corpus stage's state from its per-record summaries (its `combine`)."""
        ...

    def close(self) -> None:
        ...


def run_one(task: Task, record: Record) -> Result:
    """Run a task on one record. A `process` error is data (the record is quarantined);
    a `summarize` error ends the stage, as a `learn` error would."""
    module = STAGES[task.stage]
    if task.phase == SUMMARIZE:
        return Result(module.summarize(record, task.config))
    try:
        if task.state is None:
            return Result(module.process(record, task.config))
        return Result(module.process(record, task.config, task.state))
    except Exception as err:  # noqa: BLE001 - one page's failure must not end the run
        return Result(error=f"{type(err).__name__}: {err}"[:500])


def run_many(task: Task, records: Sequence[Record]) -> list[Result]:
    """Results for several records, in order. A stage with `process_batch` gets them in one
    call (it shares work across records); if that call fails, each record runs alone, so
    one bad record is quarantined on its own."""
    module = STAGES[task.stage]
    batch = getattr(module, "process_batch", None)
    if task.phase != PROCESS or batch is None or len(records) < 2:
        return [run_one(task, record) for record in records]
    try:
        outcomes = (batch(records, task.config) if task.state is None
                    else batch(records, task.config, task.state))
    except Exception:  # noqa: BLE001 - found again, record by record, below
        return [run_one(task, record) for record in records]
    return [Result(outcome) for outcome in outcomes]


def run_batch(task: Task, records: Sequence[Record]) -> tuple[list[Result], float]:
    """Results for a batch, and the CPU seconds they took in this process."""
    started = time.process_time()
    results = run_many(task, records)
    return results, time.process_time() - started


def batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def make_executor(kind: str, workers: int, ray_address: str | None = None) -> Executor:
    """The executor named on the command line (`--executor`)."""
    if kind == "local":
        from pipeline.executors.local import LocalExecutor

        return LocalExecutor(workers)
    if kind == "ray":
        from pipeline.executors.ray import RayExecutor

        return RayExecutor(workers, ray_address)
    raise InputError(f"--executor {kind}: expected one of {', '.join(EXECUTORS)}")
