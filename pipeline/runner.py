"""Runs the stages in order, each into its own audited folder, then exports.

Each stage writes `<output>/stages/NN-name/`: `records.jsonl` (its output),
`spans.jsonl` (what it changed per document, with reasons), `stats.json`,
a corpus stage's learned `state.json`, and `stage.json` last, which holds the
fingerprint of its input records, config section and code. The folder is built
under a temp name and renamed into place, so a folder with `stage.json` is
complete, and a stage whose fingerprint matches is not run again.

A stage that does run reads its input in chunks and takes each record's result
from the per-record cache (`<output>/cache/<stage>/`) when it has one; the rest
goes to the executor (`pipeline/executors/`: serial, a process pool or Ray) as raw
lines, and comes back in input order, already serialised. A few chunks are in
flight at a time, so the workers compute the next ones while this process writes.
So adding pages re-runs the document stages for the new pages only, and the output
is the same whatever the number of workers. Only a corpus stage's learned state
(and its per-record summaries) spans the corpus.

Memory: what this process holds while a stage runs does not grow with the corpus
(issue #8): ingest takes the input paths as they are found, the fates are read once
the stages are done, and a chunk's results are written in pieces (`io.joined`), not
joined whole. What grows is a corpus stage's learned state, in its own module.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sys
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

from tqdm import tqdm

from pipeline import __version__
from pipeline.config import ConfigBase, section_fingerprint
from pipeline.corpus import write_version
from pipeline.errors import InputError, PatternTimeout
from pipeline.executors import (PARENT_ONLY_FDS, PROCESS, SUMMARIZE, Collect, Computed, Executor, Line, RecordLines,
                                 Task, cache_entries, failed_lines, make_executor, record_lines)
from pipeline.executors.cache import MISSING, RecordCache
from pipeline.report import write_report
from pipeline.io import (JsonlWriter, dumps, read_jsonl, remove_stale_temps, sha256_text, staging_dir,
                         write_json)
from pipeline.stage import Outcome, Record
from pipeline.stages import STAGES, ingest, is_corpus_stage

OUTPUT_MARKER = ".pipeline-output"
PACKAGE_DIR = Path(__file__).resolve().parent


@dataclass
class RunResult:
    """What a run did, for the CLI's summary."""

    stages_run: list[str] = field(default_factory=list)
    stages_cached: list[str] = field(default_factory=list)
    fates: list[dict[str, Any]] = field(default_factory=list)
    corpus_dir: Path | None = None
    corpus_status: str | None = None


def stage_dirs(output_dir: Path) -> dict[str, Path]:
    return {name: output_dir / "stages" / f"{n:02d}-{name}" for n, name in enumerate(STAGES, 1)}


# Sub-packages that measure the pipeline and make nothing it writes: editing them re-runs nothing.
NOT_RUN_CODE = ("bench", "eval")


def code_fingerprint() -> str:
    """sha256 of the package's source: a code change re-runs the stages."""
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        if path.relative_to(PACKAGE_DIR).parts[0] in NOT_RUN_CODE:
            continue
        digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def check_paths(input_dir: Path, output_dir: Path) -> None:
    """Refuse an input that is not a folder, or an output that would clobber something."""
    if not input_dir.is_dir():
        raise InputError(f"{input_dir}: input folder not found")
    inp, out = input_dir.resolve(), output_dir.resolve()
    if out == inp or out.is_relative_to(inp):
        raise InputError(f"{output_dir}: the output folder must not be inside the input folder {input_dir}")
    if out.exists() and not out.is_dir():
        raise InputError(f"{output_dir}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / OUTPUT_MARKER).exists():
        raise InputError(f"{output_dir}: exists, is not empty and is not a pipeline output; "
                         "choose another --output")


@contextmanager
def output_lock(output_dir: Path) -> Iterator[None]:
    """One run per output folder: a second one stops with a clear message."""
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / OUTPUT_MARKER).touch()
    with (output_dir / ".lock").open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise InputError(f"{output_dir}: another run is writing here ({holder}); "
                             "wait for it or use another --output") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        PARENT_ONLY_FDS.add(handle.fileno())
        try:
            yield
        finally:
            PARENT_ONLY_FDS.discard(handle.fileno())
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class _Execution:
    """How this run executes stages: the executor, and the per-record cache's home."""

    executor: Executor
    local_workers: int  # processes this machine may use for export and the report
    code: str
    cache_dir: Path | None  # None: no per-record cache
    progress: bool
    report: bool = True  # write the HTML audit report after the stages


def run(config: ConfigBase, input_dir: Path, output_dir: Path, until: str | None = None,
        force: bool = False, progress: bool = True, workers: int | None = None,
        executor: str = "local", ray_address: str | None = None, cache: bool = True,
        report: bool = True) -> RunResult:
    """Run the pipeline over `input_dir`; stop after stage `until` if given.

    `workers` processes (default: one per core) run the per-record work; `executor` is
    "local" or "ray"; `cache=False` recomputes every record instead of using `<output>/cache`;
    `report=False` leaves out the HTML audit report (`<output>/audit/`)."""
    if until is not None and until not in STAGES:
        raise InputError(f"--until {until}: no such stage; stages: {', '.join(STAGES)}")
    if workers is not None and workers < 1:
        raise InputError(f"--workers {workers}: must be at least 1")
    check_paths(input_dir, output_dir)
    result = RunResult()
    with output_lock(output_dir):
        count = workers or os.cpu_count() or 1
        # Export and the report run on this machine whatever the executor: at most a process per core.
        local = min(count, os.cpu_count() or 1) if executor == "ray" else count
        warm = partial(warm_stages, config, until)
        execution = _Execution(make_executor(executor, count, ray_address, warm), local,
                               code_fingerprint(), output_dir / "cache" if cache else None, progress, report)
        try:
            _run_stages(config, input_dir, output_dir, until, force, execution, result)
        finally:
            execution.executor.close()
    return result


def warm_stages(config: ConfigBase, until: str | None = None) -> None:
    """Load what the enabled stages (up to `until`) need to process records (`warm`)."""
    for name, module in STAGES.items():
        stage_config = config.stage(name)
        warm = getattr(module, "warm", None)
        if warm is not None and stage_config.enabled:
            warm(stage_config)
        if name == until:
            break


def _run_stages(config: ConfigBase, input_dir: Path, output_dir: Path, until: str | None, force: bool,
                execution: _Execution, result: RunResult) -> None:
    """The stages in order, each run or taken whole from its folder; then the corpus."""
    remove_stale_temps(output_dir / "stages")
    remove_stale_temps(output_dir / "corpus")
    code = execution.code
    dirs = stage_dirs(output_dir)
    previous: Path | None = None  # the last stage folder with records
    upstream = ""  # fingerprint of the records that feed the next stage
    stats: dict[str, dict[str, Any]] = {}
    done: list[Path] = []  # the folders of the stages run or taken whole, in order
    for name, module in STAGES.items():
        stage_config = config.stage(name)
        if name == "export":
            execution.executor.close()  # the stages are done: their workers go before export forks its own
            result.fates = _fates(done)
            if stage_config.enabled and previous is not None:
                result.corpus_dir, result.corpus_status = write_version(
                    output_dir, config, previous / "records.jsonl", result.fates, stats,
                    stage_config, force, input_dir, workers=execution.local_workers)
            break
        if not stage_config.enabled:
            if name == "ingest":
                raise InputError("ingest.enabled: the ingest stage cannot be disabled")
            if until == name:
                result.fates = _fates(done)
                break
            continue
        fingerprint = _fingerprint(name, upstream, section_fingerprint(stage_config), code,
                                   input_dir if name == "ingest" else None, stage_config)
        summary = _cached(dirs[name], fingerprint)
        if summary is None:
            summary = _run_stage(name, module, stage_config, input_dir, previous, dirs[name],
                                 fingerprint, execution)
            result.stages_run.append(name)
        else:
            result.stages_cached.append(name)
        stats[name] = json.loads((dirs[name] / "stats.json").read_text(encoding="utf-8"))
        done.append(dirs[name])
        upstream = summary["records_sha256"]
        previous = dirs[name]
        if until == name:
            result.fates = _fates(done)
            break
    execution.executor.close()
    if execution.report:
        write_report(output_dir, workers=execution.local_workers, config=config.report)


def _fates(folders: Sequence[Path]) -> list[dict[str, Any]]:
    """What became of each input file: ingest's fates (the first folder), with the pages the
    later stages quarantined. Read once the stages are done, for the manifest and the CLI:
    ~550 bytes a file in memory (tracemalloc: 12.2 MB for the 200 MB bench's 23,031 files),
    which the stages carried when ingest's were read at its end."""
    fates = list(read_jsonl(folders[0] / "fates.jsonl"))
    for folder in folders[1:]:
        _apply_quarantine(fates, folder / "quarantine.jsonl")
    return fates


def _apply_quarantine(fates: list[dict[str, Any]], path: Path) -> None:
    """A page a stage failed on is quarantined in the manifest, with the stage's error;
    a failed part of a page (one comment) is listed under the page's `problems`."""
    if not path.is_file():
        return
    by_source = {fate["source"]: fate for fate in fates}
    for entry in read_jsonl(path):
        fate = by_source.get(entry.get("source") or "")
        if fate is None:
            continue
        message = f"stage {entry['stage']}: {entry['error']}"
        if entry["id"] == ingest.page_id(fate["source"]) and fate["status"] == "included":
            fate.update(status="quarantined", reason=entry.get("reason", "stage_error"), message=message)
        else:
            fate.setdefault("problems", []).append(f"{entry['id']}: {message}")


def _fingerprint(name: str, upstream: str, section: str, code: str, input_dir: Path | None,
                 stage_config: Any) -> str:
    """Inputs + config + code; ingest's inputs are the files' names, sizes and times."""
    digest = hashlib.sha256("\0".join([name, upstream, section, code]).encode())
    if input_dir is not None:
        for path in ingest.find_inputs(input_dir, stage_config):
            digest.update(path.relative_to(input_dir).as_posix().encode("utf-8", "surrogateescape"))
            stat = path.lstat()
            digest.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def _cached(stage_dir: Path, fingerprint: str) -> dict[str, Any] | None:
    marker = stage_dir / "stage.json"
    if not marker.is_file():
        return None
    try:
        summary = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return summary if summary.get("fingerprint") == fingerprint else None


def _quarantine_reason(message: str) -> str:
    """The fate reason for a record a stage failed on; errors reach here as "Type: message"."""
    return PatternTimeout.reason if message.startswith(f"{PatternTimeout.__name__}:") else "stage_error"


class _StageWriter:
    """Writes one stage's records, spans and counts while the stage runs."""

    def __init__(self, folder: Path, module: ModuleType) -> None:
        self.module = module
        self.records = JsonlWriter(folder / "records.jsonl")
        self.spans = JsonlWriter(folder / "spans.jsonl")
        self.quarantined = JsonlWriter(folder / "quarantine.jsonl")
        self.docs_in = self.docs_out = self.chars_in = self.chars_out = 0
        self.reasons: Counter[str] = Counter()
        self.reason_chars: Counter[str] = Counter()
        self.drops: Counter[str] = Counter()

    def add(self, record: Record, outcome: Outcome) -> None:
        self.add_lines(record_lines(self.module, record, outcome))

    def quarantine(self, record: Record, error: BaseException | str) -> None:
        """A document the stage failed on: set aside with the error, the run goes on."""
        self.add_lines(failed_lines(record, error))

    def add_lines(self, lines: RecordLines) -> None:
        """One input record's result, serialised where it was computed."""
        self.add_many([lines])

    def add_many(self, results: Sequence[RecordLines]) -> None:
        """Input records' results, in order: each file gets a write per megabyte of them
        (`joined`: the same bytes as a write per record, at a fraction of the calls, as this
        process writes every record of the run while the workers wait for it; and no copy of
        the whole chunk's output)."""
        spans = [lines.spans for lines in results if lines.spans]
        if spans:
            self.spans.write_parts(spans, len(spans))
        written = 0
        records: list[bytes] = []
        for lines in results:
            self.docs_in += 1
            self.chars_in += lines.chars_in
            for reason, count, chars in lines.reasons:
                self.reasons[reason] += count
                self.reason_chars[reason] += chars
            if lines.dropped is not None:
                self.drops[lines.dropped] += 1
            if lines.records:
                records.append(lines.records)
                written += lines.records_out
            self.docs_out += lines.records_out
            self.chars_out += lines.chars_out
            if lines.error is not None:
                self.quarantined.write({"id": lines.id, "source": lines.source, "stage": self.module.NAME,
                                        "error": lines.error, "reason": _quarantine_reason(lines.error)})
        if records:
            self.records.write_parts(records, written)

    def finish(self, seconds: float, extra: dict[str, Any],
               execution: dict[str, Any] | None = None) -> tuple[dict[str, Any], str]:
        """Close the files; returns the stats and the sha256 of records.jsonl.

        `execution` (CPU time, workers, cache hits) goes under "timing" with the wall
        time: how this run went, not what it made, so the corpus manifest leaves it out."""
        records_sha = self.records.close()
        self.spans.close()
        self.quarantined.close()
        return {
            "stage": self.module.NAME,
            "documents_in": self.docs_in,
            "documents_out": self.docs_out,
            "characters_in": self.chars_in,
            "characters_out": self.chars_out,
            "spans_by_reason": {r: {"spans": self.reasons[r], "characters": self.reason_chars[r]}
                                for r in sorted(self.reasons)},
            "dropped_by_reason": dict(sorted(self.drops.items())),
            **extra,
            "timing": {
                "seconds": round(seconds, 4),
                "documents_per_second": round(self.docs_in / seconds, 1) if seconds else None,
                "mb_per_second": round(self.chars_in / 1e6 / seconds, 3) if seconds else None,
                **(execution or {}),
            },
        }, records_sha


def _progress(items: Any, name: str, enabled: bool) -> Any:
    return tqdm(items, desc=name, unit="doc", disable=not (enabled and sys.stderr.isatty()))


def _run_stage(name: str, module: ModuleType, stage_config: Any, input_dir: Path,
               previous: Path | None, stage_dir: Path, fingerprint: str,
               execution: _Execution) -> dict[str, Any]:
    started, cpu_started = time.perf_counter(), time.process_time()
    worker_cpu_started = execution.executor.cpu_seconds
    counts: Counter[str] = Counter()
    cache: RecordCache | None = None
    with staging_dir(stage_dir) as tmp:
        writer = _StageWriter(tmp, module)
        extra: dict[str, Any] = {}
        if name == "ingest":
            fates = JsonlWriter(tmp / "fates.jsonl")
            files: Counter[str] = Counter()
            # A stream: a list of the paths held ~360 bytes a file for the whole stage.
            for path in _progress(ingest.find_inputs(input_dir, stage_config), name, execution.progress):
                record, fate = ingest.read_page(path, input_dir, stage_config)
                fates.write({k: v for k, v in fate.__dict__.items() if v is not None})
                files[fate.status] += 1
                if record is not None:
                    writer.add(record, Outcome(records=[record]))
            fates.close()
            extra["files"] = dict(sorted(files.items()))
        else:
            assert previous is not None
            source = previous / "records.jsonl"
            if execution.cache_dir is not None:
                cache = RecordCache(execution.cache_dir / name, name, section_fingerprint(stage_config),
                                    execution.code)
            state, state_sha = None, ""
            if is_corpus_stage(module):
                state = _learn(name, module, stage_config, source, execution, cache, counts)
                write_json(tmp / "state.json", state)
                state_sha = sha256_text(dumps(state))
            task = Task(name, PROCESS, stage_config, state, str(source))
            for results in _map_chunks(task, source, execution, cache, state_sha, counts):
                writer.add_many(results)
        parent_cpu = time.process_time() - cpu_started
        stats, records_sha = writer.finish(time.perf_counter() - started, extra, {
            "cpu_seconds": round(parent_cpu + execution.executor.cpu_seconds - worker_cpu_started, 4),
            "parent_cpu_seconds": round(parent_cpu, 4),  # this process's share: what workers cannot spread
            "parent_peak_rss_mb": _peak_rss_mb(),  # so far: growth at a corpus stage is its learned state
            "executor": execution.executor.name,
            "workers": execution.executor.workers,
            **{key: counts[key] for key in sorted(counts)},
        })
        write_json(tmp / "stats.json", stats)
        summary = {"stage": name, "fingerprint": fingerprint, "records_sha256": records_sha,
                   "records": writer.docs_out}
        write_json(tmp / "stage.json", summary)
    if cache is not None:
        cache.prune()
    return summary


def _peak_rss_mb() -> float | None:
    """This process's peak resident memory so far, in MB (None where the OS does not say)."""
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1 << 20 if sys.platform == "darwin" else 1 << 10), 1)  # bytes on macOS, KiB elsewhere


def _learn(name: str, module: ModuleType, stage_config: Any, source: Path, execution: _Execution,
           cache: RecordCache | None, counts: Counter[str]) -> Any:
    """A corpus stage's state: `combine` over per-record summaries (computed by the executor,
    or taken from the cache) when the stage has that form, else its `learn` over the records."""
    if not (hasattr(module, "summarize") and hasattr(module, "combine")):
        return module.learn(read_jsonl(source), stage_config)
    task = Task(name, SUMMARIZE, stage_config, source=str(source))
    # A stream: `combine` keeps what it needs of each summary as it arrives, not the summaries.
    return execution.executor.learn(name, stage_config, _map_records(task, source, execution, cache, "", counts))


def _map_records(task: Task, source: Path, execution: _Execution, cache: RecordCache | None,
                 state_sha: str, counts: Counter[str]) -> Iterator[Any]:
    """The value of every record of `source`, in order (see `_map_chunks`)."""
    for values in _map_chunks(task, source, execution, cache, state_sha, counts):
        yield from values


def _map_chunks(task: Task, source: Path, execution: _Execution, cache: RecordCache | None,
                state_sha: str, counts: Counter[str]) -> Iterator[list[Any]]:
    """The value of every record of `source`, in order, a chunk's list at a time
    (`RecordLines` for `process`, the summary for `summarize`): from the cache when it
    has the record, else computed by the executor a chunk at a time (and then cached: the
    workers make the entries). The executor's `in_flight` chunks are submitted before the
    oldest is collected, so the workers are busy while this process writes."""
    label = "records" if task.phase == PROCESS else "summaries"
    task = replace(task, cache=cache is not None)
    lines = _progress(_read_lines(source), f"{task.stage} ({task.phase})", execution.progress)
    window: deque[tuple[list[bytes], list[Any], Collect | None]] = deque()
    with execution.executor.start(task) as submit:
        for chunk in _chunks(lines, execution.executor.chunk_size):
            if cache is None:
                keys, found = [], [MISSING] * len(chunk)
            else:
                keys = cache.keys(task.phase, (line for _, line in chunk), state_sha)
                found = cache.get_many(keys)
            misses = [line for line, value in zip(chunk, found) if value is MISSING]
            window.append((keys, found, submit(misses) if misses else None))
            if len(window) >= execution.executor.in_flight:
                yield _collected(*window.popleft(), cache, counts, label)
        while window:
            yield _collected(*window.popleft(), cache, counts, label)


def _collected(keys: list[bytes], found: list[Any], collect: Collect | None, cache: RecordCache | None,
               counts: Counter[str], label: str) -> list[Any]:
    """A chunk's values in order: its cache hits, and the rest from the executor (cached now,
    with the entries the executor made, or made here if it returned values alone)."""
    result = collect() if collect is not None else Computed([])
    done = result if isinstance(result, Computed) else Computed(result)
    entries = done.entries
    if cache is not None and entries is None:
        entries = cache_entries(done.values)
    computed = iter(zip(done.values, entries or [None] * len(done.values)))
    values: list[Any] = []
    fresh: list[tuple[bytes, bytes]] = []
    for number, value in enumerate(found):
        if value is MISSING:
            value, entry = next(computed)
            if entry is not None:
                fresh.append((keys[number], entry))
        values.append(value)
    computed_count = sum(1 for value in found if value is MISSING)
    if computed_count:
        counts[f"{label}_computed"] += computed_count
    if computed_count < len(found):
        counts[f"{label}_from_cache"] += len(found) - computed_count
    if fresh and cache is not None:
        cache.put_many(fresh)
    return values


def _read_lines(path: Path) -> Iterator[Line]:
    """(line number, line) for each record of a records.jsonl the runner wrote; the
    workers parse them."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, 1):
            if not line.isspace():  # (iteration yields no empty line)
                yield number, line


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
