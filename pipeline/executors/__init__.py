"""How the stages' per-record work is run: here, in a process pool, or on Ray.

The runner reads a stage's input in chunks, takes what it can from the per-record
cache (`cache.py`), and submits the rest to an executor as a `Task` (stage, phase,
config, state) and a list of the records' raw lines; it keeps a few chunks in flight
while it writes the results of earlier ones. The executor returns one value per line,
in the order given, so the output does not depend on how the work was spread.

The workers do the JSON work too: they parse the lines and, for `process`, return
what the stage folder takes already serialised (`RecordLines`: the records.jsonl
lines, the spans.jsonl entry, the counts), which is also what the cache keeps; a
`summarize` returns the stage's summary object. A worker pickles each value once: the
pickle goes to the runner, inside the cache entry made from it when the task says the
cache is on (`Computed`), so the runner only inserts what workers computed.

- `local.py`: serial (`--workers 1`) or a process pool over batches of records.
- `ray.py`: Ray Data batch maps, and corpus stages in distributed (group-by) form.
"""

from __future__ import annotations

import ctypes
import json
import os
import pickle
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from pipeline.errors import InputError, StageError
from pipeline.executors.cache import entry, payload
from pipeline.io import dump_line, loads
from pipeline.stage import Outcome, Record, StageConfig
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
    source: str = ""  # the file the lines come from, for error messages
    cache: bool = False  # the per-record cache is on: workers also return each value's entry


@dataclass(frozen=True)
class Result:
    """What became of one record: the stage's value, or the error it raised (process only)."""

    value: Any = None
    error: str | None = None


class RecordLines(NamedTuple):
    """What one input record adds to a stage's folder, serialised where it was computed,
    so that the runner (and a cache hit) only writes strings and adds up counts. A tuple:
    it pickles (to the parent, into the cache) four times faster than a frozen dataclass."""

    id: str
    source: str | None
    chars_in: int
    records: bytes = b""  # records.jsonl lines, each ending in a newline (UTF-8: as written)
    records_out: int = 0
    chars_out: int = 0
    spans: bytes = b""  # the spans.jsonl entry (a line), if the record has one
    reasons: tuple[tuple[str, int, int], ...] = ()  # (reason, spans, characters)
    dropped: str | None = None
    error: str | None = None  # the stage failed on the record: it is quarantined with this message


Line = tuple[int, bytes]
"""A record as the runner reads it: its line number in the file and the line's bytes."""


class Computed(NamedTuple):
    """A chunk's values, in order, and the cache entry of each (`cache.entry` of its pickle;
    None for a value that is not cached), when the task asked for them (`Task.cache`)."""

    values: list[Any]
    entries: list[bytes | None] | None = None


Collect = Callable[[], "Computed | list[Any]"]
"""Waits for a submitted chunk and returns its values, in order: a `Computed`, or the
values alone (the runner then makes their cache entries itself)."""

Submit = Callable[[Sequence[Line]], Collect]

PARENT_ONLY_FDS: set[int] = set()
"""File descriptors only the run's own process may hold (the output folder's lock): a
forked worker closes its copies, so the lock goes with the parent if the run is killed."""


def init_worker() -> None:
    """A forked worker's start: let go of the parent's lock (`PARENT_ONLY_FDS`), and die with
    the parent (Linux's parent-death signal), so a killed run leaves no workers."""
    for fd in PARENT_ONLY_FDS:
        try:
            os.close(fd)
        except OSError:
            pass
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


class Executor(Protocol):
    """What the runner needs from an executor."""

    name: str
    workers: int
    chunk_size: int  # records the runner reads (and looks up in the cache) at a time
    in_flight: int  # chunks the runner may have submitted and not yet collected
    cpu_seconds: float  # CPU time spent in workers (other processes) so far

    def start(self, task: Task) -> AbstractContextManager[Submit]:
        """Get ready to run `task`; submitting a chunk of lines starts it (or queues it),
        collecting waits for its values: `run_lines`'s, in order, with their cache entries
        (`run_here`, or `run_batch` in a worker)."""
        ...

    def learn(self, stage: str, config: StageConfig, summaries: Iterable[Any]) -> Any:
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


def record_lines(module: Any, record: Record, outcome: Outcome) -> RecordLines:
    """A record's outcome as its stage folder takes it: output records as JSON lines, every
    span it changed (checked against the stage's declared reasons), the drop, the counts."""
    entry: dict[str, Any] = {"id": record["id"]}
    reasons: dict[str, list[int]] = {}
    passes = outcome.all_passes()
    if passes:
        flat = []
        for number, spans in enumerate(passes):
            for span in spans:
                if span.reason not in module.REASONS:
                    raise StageError(f"stage {module.NAME}: undeclared reason {span.reason!r}")
                tally = reasons.setdefault(span.reason, [0, 0])
                tally[0] += 1
                tally[1] += span.end - span.start
                item = span.to_json()
                if len(passes) > 1:
                    item["pass"] = number
                flat.append(item)
        entry["spans"] = flat
    dropped = None
    if not outcome.records:
        dropped = outcome.drop_reason or "dropped"
        entry["dropped"] = dropped
        entry.update(outcome.notes)
    return RecordLines(
        id=record["id"], source=record.get("source"), chars_in=len(record.get("text", "")),
        records=b"".join(map(dump_line, outcome.records)), records_out=len(outcome.records),
        chars_out=sum(len(out.get("text", "")) for out in outcome.records),
        spans=dump_line(entry) if len(entry) > 1 else b"",
        reasons=tuple((reason, spans, chars) for reason, (spans, chars) in reasons.items()), dropped=dropped)


def failed_lines(record: Record, error: BaseException | str) -> RecordLines:
    """A record the stage failed on: its spans.jsonl entry names the error; it is quarantined."""
    message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"[:500]
    return RecordLines(id=record["id"], source=record.get("source"), chars_in=len(record.get("text", "")),
                       spans=dump_line({"id": record["id"], "dropped": "error", "error": message}),
                       dropped="error", error=message)


def run_lines(task: Task, lines: Sequence[Line]) -> list[Any]:
    """What the runner gets for records given as raw lines, in order: `RecordLines` for
    `process`, the stage's summary object for `summarize`."""
    records = [_parse(task, number, line) for number, line in lines]
    results = run_many(task, records)
    if task.phase != PROCESS:
        return [result.value for result in results]
    module = STAGES[task.stage]
    return [failed_lines(record, result.error) if result.error is not None
            else record_lines(module, record, result.value) for record, result in zip(records, results)]


def _parse(task: Task, number: int, line: bytes) -> Record:
    try:
        record: Record = loads(line)
    except json.JSONDecodeError as err:
        raise ValueError(f"{task.source}:{number}: not valid JSON ({err.msg})") from None
    return record


def cacheable(value: Any) -> bool:
    """A record the stage failed on is not cached: the next run tries it again."""
    return not (isinstance(value, RecordLines) and value.error is not None)


def cache_entries(values: Sequence[Any]) -> list[bytes | None]:
    """Each value's cache entry, None for one that is not cached."""
    return [entry(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)) if cacheable(value) else None
            for value in values]


def run_here(task: Task, lines: Sequence[Line]) -> Computed:
    """`run_lines` in this process, with the values' cache entries if the task wants them."""
    values = run_lines(task, lines)
    return Computed(values, cache_entries(values) if task.cache else None)


def run_batch(task: Task, lines: Sequence[Line]) -> tuple[list[bytes], list[bytes | None] | None, float]:
    """`run_lines` for a batch in a worker: each value's pickle, its cache entry made from
    that pickle if the task wants them, and the CPU seconds it took. A value with an entry
    travels in the entry alone (its pickle is b""), not twice; `unpickled` reads both forms."""
    started = time.process_time()
    values = run_lines(task, lines)
    pickles = [pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL) for value in values]
    entries = None
    if task.cache:
        entries = [entry(data) if cacheable(value) else None for value, data in zip(values, pickles)]
        pickles = [b"" if made is not None else data for data, made in zip(pickles, entries)]
    return pickles, entries, time.process_time() - started


def unpickled(pickles: Sequence[bytes], entries: Sequence[bytes | None] | None = None) -> list[Any]:
    """The values `run_batch` sent, in order."""
    if entries is None:
        return [pickle.loads(data) for data in pickles]
    return [pickle.loads(data if made is None else payload(made)) for data, made in zip(pickles, entries)]


def batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def make_executor(kind: str, workers: int, ray_address: str | None = None,
                  warm: Callable[[], None] | None = None) -> Executor:
    """The executor named on the command line (`--executor`). `warm` loads what the run's
    stages need: the local executor calls it before it forks workers, which inherit it."""
    if kind == "local":
        from pipeline.executors.local import LocalExecutor

        return LocalExecutor(workers, warm)
    if kind == "ray":
        from pipeline.executors.ray import RayExecutor

        return RayExecutor(workers, ray_address)
    raise InputError(f"--executor {kind}: expected one of {', '.join(EXECUTORS)}")
