"""Run records here (`--workers 1`) or in a pool of worker processes.

The pool gets the task (and so a corpus stage's state) once, in its initializer;
each job is then a batch of records, and results are collected in submission
order, so the output is the same as a serial run's.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import signal
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any

from pipeline.executors import Mapper, Result, Task, batches, run_batch, run_one
from pipeline.stage import Record, StageConfig
from pipeline.stages import STAGES

CHUNK_PER_WORKER = 256  # records read at a time, per worker: bounds memory, keeps workers busy
MAX_BATCH = 64  # records per job: large enough to amortise pickling, small enough to balance
JOBS_PER_WORKER = 4  # a chunk is cut into at least this many jobs per worker, for balance
MIN_POOL_RECORDS = 8  # fewer records than this are not worth a trip to the workers

_TASK: list[Task] = []  # the worker's task, set once by `_init`


def _init(task: Task) -> None:
    """Worker start: keep the task, and die with the parent (a killed run leaves no workers)."""
    _TASK[:] = [task]
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def _work(records: Sequence[Record]) -> tuple[list[Result], float]:
    return run_batch(_TASK[0], records)


class LocalExecutor:
    """Serial with one worker; a process pool per task with more."""

    name = "local"

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self.chunk_size = CHUNK_PER_WORKER * self.workers
        self.cpu_seconds = 0.0

    @contextmanager
    def start(self, task: Task) -> Iterator[Mapper]:
        if self.workers == 1:
            yield lambda records: [run_one(task, record) for record in records]
            return
        pool: ProcessPoolExecutor | None = None

        def mapper(records: Sequence[Record]) -> list[Result]:
            nonlocal pool
            first: list[Result] = []
            if pool is None and records:
                # The first record runs here: it loads what the stage needs (rules, models)
                # once, and forked workers inherit it instead of each loading it again.
                first, records = [run_one(task, records[0])], records[1:]
            if len(records) < MIN_POOL_RECORDS:
                return first + [run_one(task, record) for record in records]
            if pool is None:  # started on first use: a fully cached stage forks nothing
                methods = multiprocessing.get_all_start_methods()
                context = multiprocessing.get_context("fork" if "fork" in methods else None)
                pool = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_init,
                                           initargs=(task,))
            size = max(1, min(MAX_BATCH, -(-len(records) // (self.workers * JOBS_PER_WORKER))))
            futures = [pool.submit(_work, batch) for batch in batches(records, size)]
            results = first
            for future in futures:
                part, cpu = future.result()
                results.extend(part)
                self.cpu_seconds += cpu
            return results

        try:
            yield mapper
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def learn(self, stage: str, config: StageConfig, summaries: list[Any]) -> Any:
        return STAGES[stage].combine(summaries, config)

    def close(self) -> None:
        pass
