"""Run the per-record work on Ray (`--executor ray`; `pip install '.[ray]'`).

Records go to Ray Data as their raw lines, with their position; `map_batches` runs
the task on them (parsing and serialising there, and making the cache entries), and the
values are put back in position order, so the output is byte-identical to the local
executor's. The task (a corpus stage's state) goes to the object store once and is
loaded once per Ray worker process.

Corpus stages learn in distributed form: the boilerplate stage's templates come from
a group-by on (site, line) and a count; the dedup stage's candidate pairs from the
band keys of every summary, grouped by key. Other corpus stages combine here.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from pipeline.errors import InputError, StageError
from pipeline.executors import Collect, Computed, Line, Submit, Task, run_batch, unpickled
from pipeline.stage import StageConfig
from pipeline.stages import STAGES, boilerplate, dedup

try:
    import ray
    import ray.data
except ImportError:  # an optional extra: the error says how to get it when it is asked for
    ray = None

CHUNK_SIZE = 4096  # records per Ray dataset: one scheduling round trip each
IN_FLIGHT = 1  # a dataset runs when collected: one chunk at a time
BATCH_SIZE = 64  # records per map_batches call

_LOADED: dict[str, Task] = {}  # task per object id, in each Ray worker process


def _task(holder: list[Any]) -> Task:
    """The task behind an object ref (wrapped in a list so that Ray does not resolve it
    for every batch), fetched once per worker process."""
    key = holder[0].hex()
    if key not in _LOADED:
        _LOADED.clear()
        _LOADED[key] = ray.get(holder[0])
    return _LOADED[key]


def _map_batch(batch: dict[str, np.ndarray], holder: list[Any]) -> dict[str, np.ndarray]:
    lines = [(int(number), bytes(line)) for number, line in zip(batch["n"], batch["line"])]
    pickles, entries, cpu = run_batch(_task(holder), lines)
    blobs = np.empty(len(pickles), dtype=object)
    blobs[:] = pickles
    stored = np.empty(len(pickles), dtype=object)
    stored[:] = [b""] * len(pickles) if entries is None else [data or b"" for data in entries]  # b"": not cached
    return {"i": batch["i"], "blob": blobs, "entry": stored,
            "cpu": np.full(len(pickles), cpu / max(1, len(pickles)))}


def _explode_lines(row: dict[str, Any]) -> list[dict[str, Any]]:
    site, keys = pickle.loads(row["blob"])
    return [{"site": site, "line": key} for key in keys]


def _count_pages(group: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One (site, line) group: its number of rows, one per page (Ray's own `count()`
    aggregator is avoided: its actor aborted under load in Ray 2.60)."""
    return {"site": group["site"][:1], "line": group["line"][:1], "pages": np.array([len(group["line"])])}


def _explode_bands(row: dict[str, Any], config: StageConfig) -> list[dict[str, Any]]:
    summary = pickle.loads(row["blob"])
    return [{"band": key, "id": summary.id} for key in dedup.band_keys(summary, config)]


def _bucket_pairs(group: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    pairs = dedup.bucket_pairs(str(value) for value in group["id"])
    return {"a": np.array([a for a, _ in pairs], dtype=object),
            "b": np.array([b for _, b in pairs], dtype=object)}


class RayExecutor:
    """Ray Data for the per-record work; joins a cluster, or starts a local Ray."""

    name = "ray"

    def __init__(self, workers: int, address: str | None = None) -> None:
        if ray is None:
            raise InputError("--executor ray: Ray is not installed; install the extra with "
                             "pip install '.[ray]' (or pip install 'ray[data]'), or use --executor local")
        self.address = address
        self.workers = workers
        self.chunk_size = CHUNK_SIZE
        self.in_flight = IN_FLIGHT
        self.cpu_seconds = 0.0
        self._started = False

    def _connect(self) -> None:
        """Join Ray on first use (a run whose stages are all cached never starts it)."""
        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address)
            elif os.environ.get("RAY_ADDRESS"):  # Ray reads the cluster's address from there
                ray.init()
            else:  # a local Ray with `workers` CPUs
                ray.init(num_cpus=self.workers, include_dashboard=False)
            self._started = True
        self.workers = int(ray.cluster_resources().get("CPU", self.workers))
        ray.data.DataContext.get_current().enable_progress_bars = False

    @contextmanager
    def start(self, task: Task) -> Iterator[Submit]:
        self._connect()
        holder = [ray.put(task)]

        def submit(lines: Sequence[Line]) -> Collect:
            return lambda: self._run(task, holder, lines)

        try:
            yield submit
        finally:
            del holder[:]

    def _run(self, task: Task, holder: list[Any], lines: Sequence[Line]) -> Computed:
        """The task's values for `lines`, in order, with their cache entries."""
        if not lines:
            return Computed([], [] if task.cache else None)
        rows = [{"i": position, "n": number, "line": line} for position, (number, line) in enumerate(lines)]
        dataset = ray.data.from_items(rows).map_batches(
            _map_batch, fn_args=(holder,), batch_size=BATCH_SIZE, batch_format="numpy")
        values: list[Any] = [None] * len(lines)
        entries: list[bytes | None] = [None] * len(lines)
        done = 0
        for row in dataset.iter_rows():  # Ray may reorder: each value goes back to its place
            made = row["entry"] or None
            values[int(row["i"])] = unpickled([row["blob"]], [made])[0]
            entries[int(row["i"])] = made
            self.cpu_seconds += float(row["cpu"])
            done += 1
        if done != len(lines):
            raise StageError(f"stage {task.stage}: Ray returned {len(lines)} records' results incompletely")
        return Computed(values, entries if task.cache else None)

    def learn(self, stage: str, config: StageConfig, summaries: Iterable[Any]) -> Any:
        self._connect()
        if stage == "boilerplate":
            return self._learn_templates(config, summaries)
        if stage == "dedup":
            return self._learn_dedup(config, summaries)
        return STAGES[stage].combine(summaries, config)

    def _learn_templates(self, config: StageConfig, summaries: Iterable[Any]) -> Any:
        """Pages per (site, line): summaries exploded to rows, grouped and counted."""
        rows = [{"blob": pickle.dumps(summary)} for summary in summaries if summary[1]]
        counts: dict[tuple[str, str], int] = {}
        if rows:
            grouped = (ray.data.from_items(rows).flat_map(_explode_lines)
                       .groupby(["site", "line"], num_partitions=self.workers)
                       .map_groups(_count_pages, batch_format="numpy"))
            for row in grouped.iter_rows():
                counts[(str(row["site"]), str(row["line"]))] = int(row["pages"])
        return boilerplate.templates_from_counts(dict(sorted(counts.items())), config)

    def _learn_dedup(self, config: StageConfig, summaries: Iterable[Any]) -> Any:
        """Candidate pairs: every summary's band keys, grouped by key, each bucket paired.
        The summaries are read twice (band keys, then `combine`), so they are held here."""
        held = list(summaries)
        rows = [{"blob": pickle.dumps(summary._replace(shingles=None))}  # the band keys need the signature only
                for summary in held if summary.signature is not None]
        pairs: set[tuple[str, str]] = set()
        if rows:
            buckets = (ray.data.from_items(rows).flat_map(_explode_bands, fn_args=(config,))
                       .groupby("band", num_partitions=self.workers).map_groups(_bucket_pairs, batch_format="numpy"))
            pairs = {(str(row["a"]), str(row["b"])) for row in buckets.iter_rows()}
        return dedup.combine(held, config, candidate_pairs=sorted(pairs))

    def close(self) -> None:
        if self._started:
            ray.shutdown()
            self._started = False
