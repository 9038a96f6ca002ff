"""Runs the stages in order, each into its own audited folder, then exports.

Each stage writes `<output>/stages/NN-name/`: `records.jsonl` (its output),
`spans.jsonl` (what it changed per document, with reasons), `stats.json`,
a corpus stage's learned `state.json`, and `stage.json` last, which holds the
fingerprint of its input records, config section and code. The folder is built
under a temp name and renamed into place, so a folder with `stage.json` is
complete, and a stage whose fingerprint matches is not run again.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from tqdm import tqdm

from pipeline import __version__
from pipeline.config import ConfigBase, section_fingerprint
from pipeline.corpus import write_version
from pipeline.errors import InputError, StageError
from pipeline.report import write_report
from pipeline.io import JsonlWriter, read_jsonl, remove_stale_temps, staging_dir, write_json
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


def code_fingerprint() -> str:
    """sha256 of the package's source: a code change re-runs the stages."""
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
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
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run(config: ConfigBase, input_dir: Path, output_dir: Path, until: str | None = None,
        force: bool = False, progress: bool = True) -> RunResult:
    """Run the pipeline over `input_dir`; stop after stage `until` if given."""
    if until is not None and until not in STAGES:
        raise InputError(f"--until {until}: no such stage; stages: {', '.join(STAGES)}")
    check_paths(input_dir, output_dir)
    result = RunResult()
    with output_lock(output_dir):
        remove_stale_temps(output_dir / "stages")
        remove_stale_temps(output_dir / "corpus")
        code = code_fingerprint()
        dirs = stage_dirs(output_dir)
        previous: Path | None = None  # the last stage folder with records
        upstream = ""  # fingerprint of the records that feed the next stage
        stats: dict[str, dict[str, Any]] = {}
        for name, module in STAGES.items():
            stage_config = config.stage(name)
            if name == "export":
                if stage_config.enabled and previous is not None:
                    result.corpus_dir, result.corpus_status = write_version(
                        output_dir, config, previous / "records.jsonl", result.fates, stats,
                        stage_config, force, input_dir)
                break
            if not stage_config.enabled:
                if name == "ingest":
                    raise InputError("ingest.enabled: the ingest stage cannot be disabled")
                if until == name:
                    break
                continue
            fingerprint = _fingerprint(name, upstream, section_fingerprint(stage_config), code,
                                       input_dir if name == "ingest" else None, stage_config)
            summary = _cached(dirs[name], fingerprint)
            if summary is None:
                summary = _run_stage(name, module, stage_config, input_dir, previous, dirs[name],
                                     fingerprint, progress)
                result.stages_run.append(name)
            else:
                result.stages_cached.append(name)
            stats[name] = json.loads((dirs[name] / "stats.json").read_text(encoding="utf-8"))
            if name == "ingest":
                result.fates = list(read_jsonl(dirs[name] / "fates.jsonl"))
            else:
                _apply_quarantine(result.fates, dirs[name] / "quarantine.jsonl")
            upstream = summary["records_sha256"]
            previous = dirs[name]
            if until == name:
                break
        write_report(output_dir)
    return result


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
            fate.update(status="quarantined", reason="stage_error", message=message)
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
        self.docs_in += 1
        self.chars_in += len(record.get("text", ""))
        passes = outcome.all_passes()
        entry: dict[str, Any] = {"id": record["id"]}
        if passes:
            flat = []
            for number, spans in enumerate(passes):
                for span in spans:
                    if span.reason not in self.module.REASONS:
                        raise StageError(f"stage {self.module.NAME}: undeclared reason {span.reason!r}")
                    self.reasons[span.reason] += 1
                    self.reason_chars[span.reason] += span.end - span.start
                    item = span.to_json()
                    if len(passes) > 1:
                        item["pass"] = number
                    flat.append(item)
            entry["spans"] = flat
        if not outcome.records:
            reason = outcome.drop_reason or "dropped"
            self.drops[reason] += 1
            entry["dropped"] = reason
            entry.update(outcome.notes)
        if len(entry) > 1:
            self.spans.write(entry)
        for out in outcome.records:
            self.docs_out += 1
            self.chars_out += len(out.get("text", ""))
            self.records.write(out)

    def quarantine(self, record: Record, error: BaseException) -> None:
        """A document the stage failed on: set aside with the error, the run goes on."""
        self.docs_in += 1
        self.chars_in += len(record.get("text", ""))
        self.drops["error"] += 1
        message = f"{type(error).__name__}: {error}"[:500]
        self.spans.write({"id": record["id"], "dropped": "error", "error": message})
        self.quarantined.write({"id": record["id"], "source": record.get("source"),
                                "stage": self.module.NAME, "error": message})

    def finish(self, seconds: float, extra: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """Close the files; returns the stats and the sha256 of records.jsonl."""
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
            },
        }, records_sha


def _progress(items: Any, name: str, enabled: bool) -> Any:
    return tqdm(items, desc=name, unit="doc", disable=not (enabled and sys.stderr.isatty()))


def _run_stage(name: str, module: ModuleType, stage_config: Any, input_dir: Path,
               previous: Path | None, stage_dir: Path, fingerprint: str,
               progress: bool) -> dict[str, Any]:
    started = time.perf_counter()
    with staging_dir(stage_dir) as tmp:
        writer = _StageWriter(tmp, module)
        extra: dict[str, Any] = {}
        if name == "ingest":
            fates = JsonlWriter(tmp / "fates.jsonl")
            counts: Counter[str] = Counter()
            for path in _progress(list(ingest.find_inputs(input_dir, stage_config)), name, progress):
                record, fate = ingest.read_page(path, input_dir, stage_config)
                fates.write({k: v for k, v in fate.__dict__.items() if v is not None})
                counts[fate.status] += 1
                if record is not None:
                    writer.add(record, Outcome(records=[record]))
            fates.close()
            extra["files"] = dict(sorted(counts.items()))
        else:
            assert previous is not None
            source = previous / "records.jsonl"
            state = None
            if is_corpus_stage(module):
                state = module.learn(read_jsonl(source), stage_config)
                write_json(tmp / "state.json", state)
            for record in _progress(read_jsonl(source), name, progress):
                try:
                    if state is None:
                        outcome = module.process(record, stage_config)
                    else:
                        outcome = module.process(record, stage_config, state)
                except Exception as err:  # noqa: BLE001 - one page's failure must not end the run
                    writer.quarantine(record, err)
                    continue
                writer.add(record, outcome)
        stats, records_sha = writer.finish(time.perf_counter() - started, extra)
        write_json(tmp / "stats.json", stats)
        summary = {"stage": name, "fingerprint": fingerprint, "records_sha256": records_sha,
                   "records": writer.docs_out}
        write_json(tmp / "stage.json", summary)
    return summary
