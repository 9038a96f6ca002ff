"""Throughput of the whole default pipeline on a generated corpus: `make bench`.

    python -m pipeline.bench.run [--size 20MB] [--workers "1 2"] [--runs 3] [--seed 0] [--source auto]
                                 [--keep-output]

Generates (or reuses) data/bench/corpus-SIZE-seedN with pipeline.bench.generate, then runs
`python -m pipeline run` over it `--runs` rounds of one run per worker count (interleaved, so
a busy spell of a shared machine does not fall on one count alone), each time into a fresh
output folder (so nothing is reused from an earlier run), timed as a child process
(pipeline/bench/measure.py); the speed-up of each count over one worker is the median of the
rounds' ratios. Per-stage times come from each stage's stats.json. Medians
are reported in bench/results.md (a section per size, other sections kept) and the raw
runs in data/bench/results-SIZE.json, which `make bench-peers` compares against. A run's
output folder (stages, cache, corpus, audit: ~30 times the corpus on disk) is measured and
removed after the run, unless `--keep-output` keeps each worker count's last one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.bench.generate import REPO, generate, parse_size
from pipeline.bench.measure import machine_info, now_utc, run_child, update_section

CONFIG = Path("configs/default.yaml")
RESULTS = REPO / "bench" / "results.md"
WORK = REPO / "data" / "bench"
ABOUT = """# Throughput benchmarks

Written by `make bench` (pipeline/bench/run.py: the whole default pipeline over a corpus made by
pipeline/bench/generate.py) and `make bench-peers` (pipeline/bench/peers.py: datatrove's nearest
equivalent stack over the same pages). One section per corpus size; re-running a size replaces it.
"""
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
OUTPUT_PARTS = ("stages", "cache", "corpus", "audit")  # what a run writes, measured on disk


def snapshot_code(work: Path) -> Path:
    """A frozen copy of pipeline/ and configs/, in work/code-FINGERPRINT.

    Other people edit the working tree while a benchmark runs: every run of one benchmark
    runs this copy (`python -m pipeline` from its folder), so the runs measure one code."""
    work.mkdir(parents=True, exist_ok=True)
    tmp = work / f".code.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    for name in ("pipeline", "configs"):
        shutil.copytree(REPO / name, tmp / name, ignore=shutil.ignore_patterns("__pycache__"))
    fingerprint = code_fingerprint(tmp)
    target = work / f"code-{fingerprint}"
    if target.is_dir():
        shutil.rmtree(tmp)
    else:
        os.replace(tmp, target)
    return target


def code_fingerprint(root: Path) -> str:
    """sha256 over the relative paths and bytes of the files under root/pipeline and root/configs."""
    digest = hashlib.sha256()
    for path in sorted([*(root / "pipeline").rglob("*"), *(root / "configs").rglob("*")]):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def supports_workers(code: Path) -> bool:
    """Whether the CLI has --workers (it arrived while this benchmark was being written)."""
    shown = subprocess.run([sys.executable, "-m", "pipeline", "run", "--help"], cwd=code, capture_output=True,
                           text=True, check=False)
    return "--workers" in shown.stdout


def pipeline_command(corpus: Path, output: Path, workers: int | None) -> list[str]:
    command = [sys.executable, "-m", "pipeline", "run", "--config", str(CONFIG), "--input", str(corpus.absolute()),
               "--output", str(output.absolute()), "--quiet"]
    return command + (["--workers", str(workers)] if workers is not None else [])


def _rel(path: Path, resolve: bool = True) -> str:
    """`path` relative to the repository when inside it (a venv's python is not resolved: a symlink)."""
    try:
        return str((path.resolve() if resolve else path.absolute()).relative_to(REPO))
    except ValueError:
        return str(path)


def stage_stats(output: Path) -> dict[str, dict[str, Any]]:
    """Each stage's stats.json, by stage name, in stage order."""
    stats = {}
    for path in sorted((output / "stages").glob("*/stats.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        stats[data["stage"]] = data
    return stats


def disk_mb(folder: Path) -> float:
    """Bytes of the files under `folder`, in MB."""
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink()) / 1e6


def run_once(code: Path, corpus: Path, output: Path, workers: int | None, keep: bool = True) -> dict[str, Any]:
    """One timed run into a fresh `output`; removed afterwards unless `keep`."""
    shutil.rmtree(output, ignore_errors=True)
    command = pipeline_command(corpus, output, workers)
    result = run_child(command, env={**os.environ, **OFFLINE}, cwd=code)
    if result["exit_code"] != 0:
        raise SystemExit(f"{shlex.join(command)} failed ({result['exit_code']}):\n{result['stderr']}")
    result["stages"] = {name: {"seconds": s["timing"]["seconds"], "documents_in": s["documents_in"],
                               "characters_in": s["characters_in"], "cpu_seconds": s["timing"].get("cpu_seconds"),
                               "parent_peak_rss_mb": s["timing"].get("parent_peak_rss_mb")}
                        for name, s in stage_stats(output).items()}
    result["output_mb"] = {part: disk_mb(output / part) for part in OUTPUT_PARTS}
    if not keep:
        shutil.rmtree(output, ignore_errors=True)
    return result


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarise(runs: Sequence[dict[str, Any]], mb: float, pages: int, workers: int) -> dict[str, Any]:
    """Medians over the runs of one worker count."""
    wall = _median([r["wall_s"] for r in runs])
    cpu = _median([r["user_s"] + r["sys_s"] for r in runs])
    stages = {}
    for name in runs[0]["stages"]:
        seconds = _median([r["stages"][name]["seconds"] for r in runs])
        first = runs[0]["stages"][name]
        stages[name] = {"seconds": seconds, "mb_per_s": mb / seconds if seconds else None,
                        "pages_per_s": pages / seconds if seconds else None, "documents_in": first["documents_in"],
                        "mchars_in": first["characters_in"] / 1e6,
                        "cpu_seconds": _median([r["stages"][name]["cpu_seconds"] for r in runs]),
                        "parent_peak_rss_mb": _median([r["stages"][name].get("parent_peak_rss_mb") for r in runs])}
    return {"workers": workers, "runs": len(runs), "wall_s": wall, "wall_s_runs": [r["wall_s"] for r in runs],
            "cpu_s": cpu, "mb_per_s": mb / wall, "mb_per_s_per_core": mb / wall / min(workers, os.cpu_count() or 1),
            "mb_per_cpu_s": mb / cpu if cpu else None, "pages_per_s": pages / wall,
            "maxrss_mb": _median([r["maxrss_mb"] for r in runs]),
            "tree_rss_mb": _median([r["tree_rss_mb"] for r in runs]),
            "stage_seconds": sum(s["seconds"] for s in stages.values()), "stages": stages,
            "output_mb": runs[-1].get("output_mb", {}),
            "raw": [{k: v for k, v in r.items() if k != "stderr"} for r in runs]}


def speed_ups(runs: dict[int, list[dict[str, Any]]]) -> list[str]:
    """For each worker count above 1: the median over rounds of one worker's wall time over its,
    each round's runs having run one after the other."""
    notes = []
    for workers, timed in runs.items():
        if workers == 1:
            continue
        ratios = [one["wall_s"] / many["wall_s"] for one, many in zip(runs[1], timed)]
        notes.append(f"{workers} workers over 1, by round (runs interleaved 1, {workers}, 1, {workers}, …): "
                     f"median {statistics.median(ratios):.2f}x ({', '.join(f'{r:.2f}' for r in ratios)})")
    return notes


def _f(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def render(report: dict[str, Any]) -> str:
    """The Markdown section for one size."""
    lines = [f"## Pipeline throughput, {report['size']} ({report['mb']:.2f} MB, {report['pages']} pages)", "",
             f"Date: {report['date']}; commit {report['commit']}. Corpus: `{report['corpus']}` "
             f"(pipeline.bench.generate, seed {report['seed']}, article text from {report['source']}; "
             f"{report['syndicated']} syndicated copies). Code: `{report['code']}`, a copy of the working tree's "
             "pipeline/ and configs/ taken at the start, which every run runs (others edit the tree meanwhile). "
             f"Medians of {report['runs']} runs per worker count, the counts interleaved round by round, each into "
             "a fresh output folder (a cold run: no stage cache).", "",
             "Machine: " + "; ".join(f"{k} {v}" for k, v in report["machine"].items()) + ".", "",
             "Command (per run):", "", "```sh", *report["commands"], "```", ""]
    if report["notes"]:
        lines += [f"- {note}" for note in report["notes"]] + [""]
    lines += ["| workers | wall s (runs) | MB/s | MB/s per core | MB per CPU-s | pages/s | CPU s | "
              "peak RSS MB (largest process) | peak RSS MB (process tree, sampled) |",
              "|---|---|---|---|---|---|---|---|---|"]
    for s in report["results"]:
        runs = ", ".join(f"{w:.1f}" for w in s["wall_s_runs"])
        lines.append(f"| {s['workers']} | {s['wall_s']:.1f} ({runs}) | {s['mb_per_s']:.3f} | "
                     f"{s['mb_per_s_per_core']:.3f} | {_f(s['mb_per_cpu_s'], 3)} | {s['pages_per_s']:.2f} | "
                     f"{_f(s['cpu_s'], 1)} | {s['maxrss_mb']:.0f} | {s['tree_rss_mb']:.0f} |")
    lines += ["", "Per stage (stats.json `timing.seconds`; MB/s and pages/s are the corpus's input MB and pages "
              "over the stage's time, so stages compare on one scale; documents in: after split, an article "
              "or comment is a document):", ""]
    for s in report["results"]:
        lines += [f"workers {s['workers']}:", "",
                  "| stage | s | share | MB/s | pages/s | documents in | M chars in | stage CPU s | "
                  "run's peak RSS MB by the stage's end (main process) |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for name, st in s["stages"].items():
            lines.append(f"| {name} | {st['seconds']:.2f} | {st['seconds'] / s['wall_s']:.0%} | "
                         f"{_f(st['mb_per_s'], 3)} | {_f(st['pages_per_s'], 1)} | {st['documents_in']} | "
                         f"{st['mchars_in']:.2f} | {_f(st['cpu_seconds'], 1)} | {_f(st.get('parent_peak_rss_mb'), 0)} |")
        other = s["wall_s"] - s["stage_seconds"]
        lines += [f"| other (start-up, export, audit report) | {other:.2f} | {other / s['wall_s']:.0%} | | | | | | |",
                  ""]
        if s.get("output_mb"):
            lines += ["Output on disk (MB, last run): " + ", ".join(
                f"{part} {mb:.0f}" for part, mb in s["output_mb"].items()) + ".", ""]
    return "\n".join(lines) + "\n"


def _commit() -> str:
    shown = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                           check=False)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                           capture_output=True, text=True, check=False)
    return (shown.stdout.strip() or "unknown") + (" with uncommitted changes" if dirty.stdout.strip() else "")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="20MB")
    parser.add_argument("--workers", default="1 2", help='worker counts, e.g. "1 2"')
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--source", default="auto", help="auto (FA-KES when present), seeds or fakes")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--work", type=Path, default=WORK, help="generated corpus and outputs")
    parser.add_argument("--keep-output", action="store_true",
                        help="keep each worker count's last output folder (it is ~30x the corpus on disk)")
    args = parser.parse_args(argv)
    corpus = args.work / f"corpus-{args.size}-seed{args.seed}"
    summary = generate(corpus, parse_size(args.size), args.seed, args.source)
    mb, pages = summary["bytes"] / 1e6, summary["pages"]
    notes: list[str] = []
    counts = [int(w) for w in args.workers.replace(",", " ").split()]
    code = snapshot_code(args.work)
    workers_flag = supports_workers(code)
    if not workers_flag:
        notes.append("`python -m pipeline run --help` lists no --workers: every run used 1 worker; "
                     f"worker counts {counts} were not measured")
        counts = [1]
    machine = machine_info()
    commands = []
    runs: dict[int, list[dict[str, Any]]] = {workers: [] for workers in counts}
    for workers in counts:
        command = pipeline_command(corpus, args.work / f"out-{args.size}-w{workers}", workers if workers_flag else None)
        python = os.path.relpath(Path(sys.executable).absolute(), code)
        commands.append(f"(cd {_rel(code)} && {shlex.join([python, *command[1:]])})")
    # Round by round, a run of each worker count: a busy spell of a shared machine falls on
    # neighbouring runs of both counts, not on all runs of one, so the counts' ratio holds.
    for number in range(args.runs):
        for workers in counts:
            keep = args.keep_output and number == args.runs - 1
            output = args.work / f"out-{args.size}-w{workers}"
            runs[workers].append(run_once(code, corpus, output, workers if workers_flag else None, keep))
            print(f"workers {workers} run {number + 1}/{args.runs}: {runs[workers][-1]['wall_s']:.1f} s "
                  f"({mb / runs[workers][-1]['wall_s']:.3f} MB/s)", file=sys.stderr)
    results = [summarise(runs[workers], mb, pages, workers) for workers in counts]
    if 1 in counts:
        notes += speed_ups(runs)
    for s in results:
        outputs = {json.dumps([st["documents_in"] for st in r["stages"].values()]) for r in s["raw"]}
        if len(outputs) > 1:
            notes.append(f"workers {s['workers']}: documents per stage differ between runs: {sorted(outputs)}")
    machine["load average at the end"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    report = {"size": args.size, "mb": mb, "pages": pages, "seed": args.seed, "source": summary["source"],
              "syndicated": len(summary["syndicated"]), "corpus": _rel(corpus), "runs": args.runs,
              "date": now_utc(), "commit": _commit(), "code": _rel(code), "machine": machine, "commands": commands,
              "notes": notes, "results": results}
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / f"results-{args.size}.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    update_section(args.results, "about", ABOUT)
    update_section(args.results, f"bench {args.size}", render(report))
    print(render(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
