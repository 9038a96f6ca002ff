"""Run records here (`--workers 1`) or in a pool of worker processes.

One pool serves the whole run: its workers keep what the stages load and learn as
they go (pattern rules, language profiles, boilerplate's line verdicts) from one
phase and stage to the next. Each task (and so a corpus stage's state) is written
once to a private temp file; jobs name the file and a worker reads it once. Each
job is a batch of raw record lines, and values are collected in submission order, so
the output is the same as a serial run's. A job returns its values pickled, one by
one, and the cache entries made from those pickles (`run_batch`): the runner loads the
values and inserts the entries. A chunk's jobs are queued when it is submitted: the
pool works on the next chunks while the runner writes this one's.
"""

from __future__ import annotations

import multiprocessing
import pickle
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from pipeline.executors import (Collect, Computed, Line, Submit, Task, batches, init_worker, run_batch,
                                 run_here, unpickled)
from pipeline.stage import StageConfig
from pipeline.stages import STAGES

CHUNK_PER_WORKER = 512  # records read at a time, per worker: bounds memory, keeps workers busy
IN_FLIGHT = 2  # chunks submitted and not yet collected: one being written, one keeping the pool busy
MAX_BATCH = 256  # records per job: large enough to amortise pickling, small enough to balance
JOBS_PER_WORKER = 2  # a chunk is cut into at least this many jobs per worker, for balance
MIN_POOL_RECORDS = 8  # fewer records than this are not worth a trip to the workers

_TASKS: dict[str, Task] = {}  # in a worker: the current task, by the file it was read from



def _work(path: str, lines: Sequence[Line]) -> tuple[list[bytes], list[bytes | None] | None, float]:
    task = _TASKS.get(path)
    if task is None:
        with open(path, "rb") as handle:
            task = pickle.load(handle)
        _TASKS.clear()
        _TASKS[path] = task
    return run_batch(task, lines)


def _joined(first: Computed, rest: Computed) -> Computed:
    entries = None if first.entries is None or rest.entries is None else first.entries + rest.entries
    return Computed(first.values + rest.values, entries)


class LocalExecutor:
    """Serial with one worker; a process pool per task with more."""

    name = "local"

    def __init__(self, workers: int, warm: Callable[[], None] | None = None) -> None:
        self.workers = max(1, workers)
        self._warm = warm
        self.chunk_size = CHUNK_PER_WORKER * self.workers
        self.in_flight = IN_FLIGHT
        self.cpu_seconds = 0.0
        self._pool: ProcessPoolExecutor | None = None
        self._folder: Path | None = None
        self._tasks = 0

    def _task_file(self, task: Task) -> Path:
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="pipeline-tasks-"))
        self._tasks += 1
        path = self._folder / f"task-{self._tasks}.pickle"
        path.write_bytes(pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL))
        return path

    @contextmanager
    def start(self, task: Task) -> Iterator[Submit]:
        if self.workers == 1:
            yield lambda lines: partial(run_here, task, lines)
            return
        path: Path | None = None

        def submit(lines: Sequence[Line]) -> Collect:
            nonlocal path
            first = Computed([], [] if task.cache else None)
            if self._pool is None and lines:
                # The first record runs here: it loads what the stage needs (rules, models)
                # once, and forked workers inherit it instead of each loading it again.
                first, lines = run_here(task, lines[:1]), lines[1:]
            if len(lines) < MIN_POOL_RECORDS:
                done = _joined(first, run_here(task, lines))
                return lambda: done
            if self._pool is None:  # started on first use: a fully cached run forks nothing
                if self._warm is not None:
                    self._warm()  # every stage's rules and models, loaded once for all workers
                    self._warm = None
                methods = multiprocessing.get_all_start_methods()
                context = multiprocessing.get_context("fork" if "fork" in methods else None)
                self._pool = ProcessPoolExecutor(self.workers, mp_context=context, initializer=init_worker)
            if path is None:
                path = self._task_file(task)
            size = max(1, min(MAX_BATCH, -(-len(lines) // (self.workers * JOBS_PER_WORKER))))
            futures = [self._pool.submit(_work, str(path), batch) for batch in batches(lines, size)]

            def collect() -> Computed:
                values, entries = first
                for future in futures:
                    pickles, part, cpu = future.result()
                    values.extend(unpickled(pickles, part))
                    if entries is not None and part is not None:
                        entries.extend(part)
                    self.cpu_seconds += cpu
                return Computed(values, entries)

            return collect

        try:
            yield submit
        except BaseException:
            self.close()  # jobs of a failed stage must not run on
            raise
        finally:
            if path is not None:
                path.unlink(missing_ok=True)

    def learn(self, stage: str, config: StageConfig, summaries: Iterable[Any]) -> Any:
        return STAGES[stage].combine(summaries, config)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
