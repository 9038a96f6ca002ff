"""The quality benchmarks in one report: `make eval` writes bench/eval.md.

    python -m pipeline.bench.quality [--out bench/eval.md]

Runs pipeline.eval.devset (the seeds against tests/gold, and the dragnet dev set when
../shared/devsets/dragnet-train is present) and pipeline.eval.syndication (dedup on
syndicated copies of FA-KES articles, when /work/shared/devsets/fa-kes is present), each
as its own process, and writes their output under one heading each, with the command,
the date and how long it took. A benchmark that fails is reported as failed; the others
still run.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from pipeline.bench.measure import machine_info, now_utc, write_atomic

REPO = Path(__file__).resolve().parents[2]
FAKES = Path("/work/shared/devsets/fa-kes/FA-KES.csv")
BENCHMARKS = (
    # title, arguments, a file it needs, whether it prints Markdown (else shown as a text block)
    ("Whole pipeline on labelled pages (seeds, dragnet dev set)", ["-m", "pipeline.eval.devset"], None, True),
    ("Dedup on syndicated copies (FA-KES)", ["-m", "pipeline.eval.syndication", "--runs", "3"], FAKES, False),
)


def run_benchmark(arguments: list[str]) -> tuple[int, str, float]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *arguments], cwd=REPO, capture_output=True, text=True, check=False,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    output = done.stdout if done.returncode == 0 else done.stdout + "\n" + done.stderr[-3000:]
    return done.returncode, output.strip(), time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.bench.quality", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "eval.md")
    args = parser.parse_args(argv)
    parts = ["# Quality benchmarks", "",
             f"Written by `make eval` (pipeline/bench/quality.py) on {now_utc()}. Machine: "
             + "; ".join(f"{k} {v}" for k, v in machine_info().items()) + ".", ""]
    failed = 0
    for title, arguments, needs, markdown in BENCHMARKS:
        command = shlex.join([".venv/bin/python", *arguments])
        parts += [f"## {title}", "", "```sh", command, "```", ""]
        if needs is not None and not needs.exists():
            parts += [f"Skipped: {needs} not found.", ""]
            continue
        code, output, seconds = run_benchmark(arguments)
        print(f"{command}: exit {code}, {seconds:.0f} s", file=sys.stderr)
        failed += code != 0
        status = f"exit code {code}, " if code else ""
        if markdown:  # its headings go below this report's
            body = "\n".join("#" + line if line.startswith("#") else line for line in output.splitlines())
        else:
            body = f"```text\n{output}\n```"
        parts += [f"({status}{seconds:.0f} s)", "", body, ""]
    write_atomic(args.out, "\n".join(parts))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
