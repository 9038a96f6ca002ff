"""A parallel map for the per-page work after the stages (corpus rows, audit pages).

`fork_map(function, items, workers)` returns `[function(item) for item in items]`, in
order. With more than one worker, forked processes each run contiguous chunks of
`items`; they inherit `function` and all it reaches (the loaded stage outputs, the
sentence model) from the parent instead of receiving it pickled: only chunk bounds go
out, and only results come back. Workers let go of the parent's output lock and die
with the parent; the first exception raised in a chunk is raised here, and the chunks
not started yet are cancelled.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

from pipeline.executors import init_worker

CHUNKS_PER_WORKER = 4  # chunks per worker: pages differ in size, smaller chunks balance the load

Item = TypeVar("Item")
Out = TypeVar("Out")

_JOB: tuple[Callable[[Any], Any], Sequence[Any]] | None = None  # what forked workers run



def _run_chunk(start: int, end: int) -> list[Any]:
    if _JOB is None:
        raise RuntimeError("fork_map: a worker started without a job")
    function, items = _JOB
    return [function(items[i]) for i in range(start, end)]


def fork_map(function: Callable[[Item], Out], items: Sequence[Item], workers: int = 1,
             chunk: int | None = None) -> list[Out]:
    """`function` over `items`, results in the order of `items`; serial with one worker
    (or where processes cannot be forked). A worker runs `chunk` items at a time; by
    default the items are cut into CHUNKS_PER_WORKER chunks per worker (items that are
    already sizeable, such as groups of pages, are better run one at a time)."""
    global _JOB
    workers = min(workers, len(items))
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return [function(item) for item in items]
    size = chunk or -(-len(items) // (workers * CHUNKS_PER_WORKER))
    results: list[Out] = []
    _JOB = (function, items)  # set before the pool forks its workers, which happens on the first submit
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"), initializer=init_worker)
    try:
        futures: list[Future[list[Out]]] = [pool.submit(_run_chunk, start, min(start + size, len(items)))
                                             for start in range(0, len(items), size)]
        for future in futures:
            results.extend(future.result())
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        _JOB = None
    pool.shutdown(wait=True)
    return results
