"""Measure the boilerplate stage on dragnet-train: what it keeps, what the main article becomes,
and its throughput on one core.

The pages go through ingest and clean as in a run, then this stage (learn over all pages, then
each page), then the split and metadata stages, in this process and without dedup, langid or
export (`python -m pipeline.eval.devset` runs all of them; its main-article F1 is lower by the
pages dedup drops). All pages have site_key "" (they lie in one folder though they come from
different sites), so `learn` finds lines common across sites rather than one site's menus.

Printed:
(a) the kept text of this stage against the gold article (bag of words; a proxy with a ceiling:
    comments and related feeds stay for the split stage, so precision is bounded), and the
    share of article tokens it keeps;
(b) the main article after split and metadata against the gold article: mean per-page F1 over
    all pages and over the pages with gold comments; comment F1 on those pages, and the share of
    pages without gold comments where comments were found (the metric of pipeline.eval.devset);
(c) throughput of learn + process (in batches of 64 pages, as the local executor sends them to
    `process_batch`) over all pages, median of runs: "cold" clears the stage's
    verdict cache before each run, as in a fresh process (every distinct line is classified
    once); "warm" keeps it, as for pages of sites already seen. MB/s are of UTF-8 input bytes,
    by CPU time (a busy shared machine disturbs it less) and by wall-clock time.

Run: .venv/bin/python -m pipeline.eval.boilerplate_devset [--devset DIR] [--set KEY=VALUE ...]
         [--show N] [--runs N] [--no-timing] [--render lines|blank]
`--set` overrides a boilerplate config key (a YAML value), e.g. --set region_frame_cost=25: the
calibration figures in the stage's Config comments were measured so.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline.stage import Record
from pipeline.stages import boilerplate, clean, ingest, metadata, split

DEFAULT_DEVSET = Path("/work/shared/devsets/dragnet-train")
TOKEN = re.compile(r"\w+")
TIMING_RUNS = 5  # throughput is the median of this many full runs
BATCH = 64  # records per process_batch call: a job of the local executor (pipeline/executors/local.py)


@dataclass(frozen=True)
class PageScore:
    """Bag-of-words precision, recall and F1 of one page's text against its gold article."""

    page: str
    precision: float
    recall: float
    f1: float
    gold_tokens: int
    kept_gold_tokens: int


def tokens(text: str) -> Counter[str]:
    """Lowercased \\w+ tokens as a multiset (the dev set README's metric)."""
    return Counter(TOKEN.findall(text.lower()))


def score_page(page: str, kept: str, gold: str) -> PageScore:
    """Multiset-intersection P/R/F1; two empty texts agree perfectly, one empty side scores 0."""
    predicted, expected = tokens(kept), tokens(gold)
    overlap = sum((predicted & expected).values())
    n_pred, n_gold = sum(predicted.values()), sum(expected.values())
    if n_pred == 0 and n_gold == 0:
        return PageScore(page, 1.0, 1.0, 1.0, 0, 0)
    precision = overlap / n_pred if n_pred else 0.0
    recall = overlap / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return PageScore(page, precision, recall, f1, n_gold, overlap)


RENDERINGS = ("lines", "blank")
"""How the pages' blocks are laid out: "lines" as the dev set has them (a block per line, no blank
lines), "blank" with a blank line between blocks, as scrapers that keep paragraph breaks write them
(the seeds' layout). The same page in both layouts should come out the same: a gap between the two
is a signal that leans on the layout."""


def load_devset(devset: Path, rendering: str = "lines") -> tuple[list[Record], dict[str, dict[str, Any]]]:
    """Pages as the clean stage outputs them (site_key ""), laid out as `rendering` says, and the
    gold JSON per page id."""
    if rendering not in RENDERINGS:
        raise ValueError(f"rendering {rendering!r}: expected one of {', '.join(RENDERINGS)}")
    records: list[Record] = []
    gold: dict[str, dict[str, Any]] = {}
    ingest_config, clean_config = ingest.Config(), clean.Config()
    for path in sorted(devset.glob("*.txt")):
        gold_path = path.with_name(f"{path.stem}.gold.json")
        if not gold_path.is_file():
            continue
        record, _ = ingest.read_page(path, devset, ingest_config)
        if record is None:
            continue
        if rendering == "blank":
            record = {**record, "text": "\n\n".join(str(record["text"]).split("\n"))}
        records.extend(clean.process(record, clean_config).records)
        gold[records[-1]["id"]] = json.loads(gold_path.read_text(encoding="utf-8"))
    return records, gold


def run_stage(records: Sequence[Record], config: boilerplate.Config) -> list[Record]:
    """learn over all pages, then process them in batches as the executors do (`process_batch`);
    the output records in input order."""
    state = boilerplate.learn(records, config)
    output: list[Record] = []
    for start in range(0, len(records), BATCH):
        for outcome in boilerplate.process_batch(records[start:start + BATCH], config, state):
            output.extend(outcome.records)
    return output


def throughput(records: Sequence[Record], config: boilerplate.Config, runs: int = TIMING_RUNS,
               cold: bool = True) -> tuple[float, float]:
    """Median MB/s (UTF-8 input bytes) of learn + process over all pages, by CPU and wall time."""
    size = sum(len(str(record["text"]).encode("utf-8")) for record in records)
    run_stage(records, config)  # compiles the rules (and fills the cache for the warm runs)
    cpu: list[float] = []
    wall: list[float] = []
    for _ in range(runs):
        if cold:
            boilerplate.clear_caches()  # each run starts cold, as a fresh process would
        started, cpu_started = time.perf_counter(), time.process_time()
        run_stage(records, config)
        cpu.append(time.process_time() - cpu_started)
        wall.append(time.perf_counter() - started)
    return size / 1e6 / statistics.median(cpu), size / 1e6 / statistics.median(wall)


def mean(values: Iterable[float]) -> float:
    items = list(values)
    return sum(items) / len(items) if items else 0.0


def split_pages(outputs: Sequence[Record]) -> tuple[dict[str, str], dict[str, str]]:
    """Main-article text (after split and metadata) and shown comment text, per page id."""
    split_config, metadata_config = split.Config(), metadata.Config()
    main: dict[str, str] = {}
    comments: dict[str, str] = {}
    for page in outputs:
        shown: list[str] = []
        for record in split.process(page, split_config).records:
            if record["kind"] == "article" and record["role"] == "main":
                main[page["id"]] = metadata.process(record, metadata_config).records[0]["text"]
            elif record["kind"] == "comment":
                # The dev-set gold keeps author and date lines as shown; they are fields here.
                shown.append("\n".join([record.get("author") or "", record.get("posted_raw") or "", record["text"]]))
        comments[page["id"]] = "\n".join(shown)
    return main, comments


@dataclass(frozen=True)
class Quality:
    """Figures (a) and (b) of the module docstring."""

    pages: int
    baseline_f1: float  # keep-everything, against the gold article
    kept: list[PageScore]  # (a): this stage's kept text, per page
    removed: Counter[str]  # removed lines by reason
    main: list[PageScore]  # (b): the main article after split and metadata, per page (sorted by id)
    article_f1_on_comment_pages: float
    comment_f1: float
    false_section_share: float  # pages without gold comments where comments were found

    @property
    def article_f1(self) -> float:
        return mean(score.f1 for score in self.main)


def measure_quality(records: Sequence[Record], gold: dict[str, dict[str, Any]],
                    config: boilerplate.Config) -> Quality:
    """Run the stage (learn, then each page), then split and metadata, and score (a) and (b)."""
    articles = {page: str(entry.get("article") or "") for page, entry in gold.items()}
    outputs = run_stage(records, config)
    main_text, comments = split_pages(outputs)
    scores = [score_page(page, main_text.get(page, ""), articles[page]) for page in sorted(articles)]
    by_page = {score.page: score for score in scores}
    with_comments = [page for page in sorted(gold) if gold[page].get("comments")]
    without = [page for page in sorted(gold) if not gold[page].get("comments")]
    return Quality(
        pages=len(outputs),
        baseline_f1=mean(score_page(r["id"], r["text"], articles[r["id"]]).f1 for r in records),
        kept=[score_page(out["id"], out["text"], articles[out["id"]]) for out in outputs],
        removed=Counter(marker[1] for out in outputs for marker in out["markers"]),
        main=scores,
        article_f1_on_comment_pages=mean(by_page[page].f1 for page in with_comments),
        comment_f1=mean(score_page(page, comments.get(page, ""), str(gold[page]["comments"])).f1
                        for page in with_comments),
        false_section_share=sum(1 for page in without if comments.get(page)) / max(len(without), 1),
    )


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--set {pair}: expected KEY=VALUE")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devset", type=Path, default=DEFAULT_DEVSET)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a boilerplate config key")
    parser.add_argument("--show", type=int, default=0, help="print the N pages with the lowest main-article F1")
    parser.add_argument("--runs", type=int, default=TIMING_RUNS, help="timed runs per throughput figure")
    parser.add_argument("--no-timing", action="store_true", help="skip the throughput runs")
    parser.add_argument("--render", choices=RENDERINGS, default="lines",
                        help="lay the pages out a block per line (as given) or with blank lines between blocks")
    args = parser.parse_args(argv)

    config = boilerplate.Config(**parse_overrides(args.overrides))
    records, gold = load_devset(args.devset, args.render)
    if not records:
        parser.error(f"no pages with gold in {args.devset}")
    quality = measure_quality(records, gold, config)
    kept = quality.kept
    gold_total = sum(s.gold_tokens for s in kept)

    print(f"pages: {len(kept)}   devset: {args.devset}   layout: {args.render}")
    if args.overrides:
        print(f"overrides: {parse_overrides(args.overrides)}")
    print(f"keep-everything baseline: mean F1 {quality.baseline_f1:.3f}")
    print(
        f"(a) kept text vs gold article: mean P {mean(s.precision for s in kept):.3f}  "
        f"R {mean(s.recall for s in kept):.3f}  F1 {mean(s.f1 for s in kept):.3f};  article-token recall: pooled "
        f"{sum(s.kept_gold_tokens for s in kept) / max(gold_total, 1):.4f}, mean per page "
        f"{mean(s.recall for s in kept if s.gold_tokens):.4f}, pages under 0.97: "
        f"{sum(1 for s in kept if s.gold_tokens and s.recall < 0.97)}"
    )
    print(f"    removed lines by reason: {dict(quality.removed.most_common())}")

    scores = quality.main
    with_comments = sum(1 for entry in gold.values() if entry.get("comments"))
    print(
        f"(b) main article after split + metadata: F1 {quality.article_f1:.4f} "
        f"(P {mean(s.precision for s in scores):.4f}, R {mean(s.recall for s in scores):.4f}); "
        f"on the {with_comments} pages with comments {quality.article_f1_on_comment_pages:.4f}; "
        f"comment F1 {quality.comment_f1:.4f}; comments found on {quality.false_section_share:.2%} "
        f"of pages without"
    )
    if not args.no_timing:
        cold_cpu, cold_wall = throughput(records, config, args.runs, cold=True)
        warm_cpu, warm_wall = throughput(records, config, args.runs, cold=False)
        print(f"(c) throughput, median of {args.runs} runs, one core: cold {cold_cpu:.2f} MB/s CPU "
              f"({cold_wall:.2f} wall); warm cache {warm_cpu:.2f} MB/s CPU ({warm_wall:.2f} wall)")
    for score in sorted(scores, key=lambda s: s.f1)[: args.show]:
        print(f"  {score.page}: main-article F1 {score.f1:.3f} (P {score.precision:.3f}, R {score.recall:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
