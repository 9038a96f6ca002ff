"""Measure one stage's speed on the records a pipeline run fed it, and check its output.

The input is a pipeline output folder (`--input`, default /tmp/sp-ref, as written by
`python -m pipeline run ... --output /tmp/sp-ref`): the stage's input records are the
previous stage's `records.jsonl` there. Each of the `--runs` runs is a fresh process (so
caches the stage builds as it goes start empty, as in a pipeline run) that reads the
records into memory, then times one pass of the stage's `process()` over them; the
median MB/s is printed (characters of input text per second, as the runner's stats.json
"timing" counts them), by wall-clock time and by CPU time (which a busy shared machine
disturbs less).

With `--check`, the stage's output is written exactly as the runner writes it
(records.jsonl, spans.jsonl, quarantine.jsonl) and its sha256 compared with the stage's
own folder in `--input`, or with `--reference DIR`: the way to prove a speed-up changed
no output, whatever other stages did since the reference run. `--write DIR` writes that
output to DIR instead (from another checkout, say, to serve as the reference: the stage
modules of two versions compared on the same input records). `--profile` prints the
hottest functions of one run.

Run: .venv/bin/python -m pipeline.eval.stage_speed --stage clean|split|metadata
         [--input DIR] [--runs 3] [--config configs/default.yaml]
         [--check [--reference DIR]] [--write DIR] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import multiprocessing
import pstats
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from pipeline.config import load_config
from pipeline.io import read_jsonl, sha256_file
from pipeline.runner import _StageWriter, stage_dirs
from pipeline.stage import Record
from pipeline.stages import STAGES, is_corpus_stage

DEFAULT_INPUT = Path("/tmp/sp-ref")
DEFAULT_CONFIG = Path("configs/default.yaml")
TIMED_STAGES = ("clean", "split", "metadata")


def _input_folder(output_dir: Path, stage: str) -> Path:
    """The folder of the last stage before `stage` that has records in `output_dir`."""
    dirs = stage_dirs(output_dir)
    names = list(STAGES)
    for name in reversed(names[: names.index(stage)]):
        if (dirs[name] / "records.jsonl").is_file():
            return dirs[name]
    raise SystemExit(f"{output_dir}: no stage folder with records before {stage!r}")


def _timed_run(stage: str, config_path: str, source: str) -> tuple[float, float]:
    """In a fresh process: one timed pass of the stage over the records of `source`."""
    module = STAGES[stage]
    config = load_config(Path(config_path)).stage(stage)
    records = list(read_jsonl(Path(source)))
    return _run_once(module, config, records)


def _run_once(module: Any, config: Any, records: list[Record]) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one pass of process() over `records`."""
    started, cpu_started = time.perf_counter(), time.process_time()
    for record in records:
        try:
            module.process(record, config)
        except Exception:  # noqa: BLE001 - the runner quarantines such pages and goes on
            pass
    return time.perf_counter() - started, time.process_time() - cpu_started


def _write(module: Any, config: Any, records: list[Record], folder: Path) -> None:
    """Write the stage's output into `folder` as the runner does."""
    folder.mkdir(parents=True, exist_ok=True)
    writer = _StageWriter(folder, module)
    for record in records:
        try:
            outcome = module.process(record, config)
        except Exception as err:  # noqa: BLE001 - the runner quarantines such pages
            writer.quarantine(record, err)
            continue
        writer.add(record, outcome)
    writer.finish(1.0, {})


def _check(module: Any, config: Any, records: list[Record], reference: Path) -> bool:
    """Write the stage's output as the runner does and compare it with `reference`."""
    with tempfile.TemporaryDirectory(prefix="stage-speed-") as tmp:
        folder = Path(tmp)
        _write(module, config, records, folder)
        same = True
        for name in ("records.jsonl", "spans.jsonl", "quarantine.jsonl"):
            ours, theirs = folder / name, reference / name
            if not theirs.is_file():
                ok = not ours.is_file() or ours.stat().st_size == 0
                print(f"  {name}: {'ok (absent/empty)' if ok else 'DIFFERS (reference has none)'}")
            else:
                a, b = sha256_file(ours), sha256_file(theirs)
                ok = a == b
                print(f"  {name}: {'identical' if ok else 'DIFFERS'} sha256 {a[:16]} vs reference {b[:16]}")
            same = same and ok
        return same


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", required=True, choices=TIMED_STAGES)
    parser.add_argument("--input", type=Path, default=DEFAULT_INPUT,
                        help="a pipeline output folder (default: %(default)s)")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--check", action="store_true",
                        help="compare the output with the stage's folder in --input (sha256)")
    parser.add_argument("--reference", type=Path, help="with --check: compare with this folder instead")
    parser.add_argument("--write", type=Path, help="write the stage's output to this folder")
    parser.add_argument("--profile", action="store_true", help="print the hottest functions of one run")
    args = parser.parse_args(argv)

    module = STAGES[args.stage]
    if is_corpus_stage(module):
        raise SystemExit(f"{args.stage}: corpus stages are not supported")
    config = load_config(args.config).stage(args.stage)
    source = _input_folder(args.input, args.stage)
    records = list(read_jsonl(source / "records.jsonl"))
    chars = sum(len(r.get("text", "")) for r in records)
    print(f"{args.stage}: {len(records)} records, {chars / 1e6:.2f} M characters from {source}")

    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        _run_once(module, config, records)
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(40)
    rates, cpu_rates = [], []
    for run in range(1, args.runs + 1):
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            seconds, cpu_seconds = pool.submit(_timed_run, args.stage, str(args.config),
                                               str(source / "records.jsonl")).result()
        rates.append(chars / 1e6 / seconds)
        cpu_rates.append(chars / 1e6 / cpu_seconds)
        print(f"  run {run}: {seconds:.3f} s wall, {rates[-1]:.2f} MB/s; {cpu_seconds:.3f} s CPU, "
              f"{cpu_rates[-1]:.2f} MB/s")
    if rates:
        # CPU time is what a shared, busy machine disturbs least; wall time is what the
        # runner's stats.json reports.
        print(f"{args.stage}: median {statistics.median(rates):.2f} MB/s wall, "
              f"{statistics.median(cpu_rates):.2f} MB/s CPU over {args.runs} runs")

    if args.write:
        _write(module, config, records, args.write)
        print(f"{args.stage}: output written to {args.write}")
    if args.check:
        reference = args.reference or stage_dirs(args.input)[args.stage]
        if not (reference / "records.jsonl").is_file():
            raise SystemExit(f"{reference}: no reference output to check against")
        same = _check(module, config, records, reference)
        print(f"{args.stage}: output {'IDENTICAL to' if same else 'DIFFERS from'} {reference}")
        return 0 if same else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
