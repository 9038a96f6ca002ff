"""Measure the boilerplate stage on dragnet-train: bag-of-words F1 and article-token recall of
the kept text against the gold article, and throughput on one core.

All pages get site_key "" (they come from different sites), so `learn` finds lines common
across sites rather than one site's menus. The F1 is a proxy with a ceiling: this stage keeps
comments, related feeds and other non-article text for the later split stage, so precision is
bounded; recall says whether article text survives (the stage must keep >= 0.97 of it).

Run: .venv/bin/python -m pipeline.eval.boilerplate_devset [--devset DIR] [--show N]
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

from pipeline.stage import Record
from pipeline.stages import boilerplate

DEFAULT_DEVSET = Path("/work/shared/devsets/dragnet-train")
TOKEN = re.compile(r"\w+")
TIMING_RUNS = 3  # throughput is the median of this many full runs


@dataclass(frozen=True)
class PageScore:
    """Bag-of-words precision, recall and F1 of one page's kept text against its gold article."""

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
    """Multiset-intersection P/R/F1; an empty side scores 0 unless both are empty."""
    predicted, expected = tokens(kept), tokens(gold)
    overlap = sum((predicted & expected).values())
    n_pred, n_gold = sum(predicted.values()), sum(expected.values())
    if n_pred == 0 and n_gold == 0:
        return PageScore(page, 1.0, 1.0, 1.0, 0, 0)
    precision = overlap / n_pred if n_pred else 0.0
    recall = overlap / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return PageScore(page, precision, recall, f1, n_gold, overlap)


def load_devset(devset: Path) -> tuple[list[Record], dict[str, str]]:
    """Pages as stage records (site_key "") and the gold article text per page id."""
    records: list[Record] = []
    gold: dict[str, str] = {}
    for path in sorted(devset.glob("*.txt")):
        gold_path = path.with_name(f"{path.stem}.gold.json")
        if not gold_path.is_file():
            continue
        records.append({"id": path.stem, "text": path.read_text(encoding="utf-8"), "site_key": ""})
        gold[path.stem] = json.loads(gold_path.read_text(encoding="utf-8")).get("article") or ""
    return records, gold


def run_stage(records: Sequence[Record], config: boilerplate.Config) -> list[Record]:
    """learn over all pages, then process each; the output records in input order."""
    state = boilerplate.learn(records, config)
    output: list[Record] = []
    for record in records:
        output.extend(boilerplate.process(record, config, state).records)
    return output


def throughput(records: Sequence[Record], config: boilerplate.Config, runs: int = TIMING_RUNS) -> float:
    """Median MB/s (UTF-8 input bytes) of learn + process over all pages, on this one core."""
    size = sum(len(record["text"].encode("utf-8")) for record in records)
    timings: list[float] = []
    for _ in range(runs):
        boilerplate.classify_text.cache_clear()  # each run starts cold, as a fresh process would
        start = time.perf_counter()
        run_stage(records, config)
        timings.append(time.perf_counter() - start)
    return size / 1e6 / statistics.median(timings)


def mean(values: Iterable[float]) -> float:
    items = list(values)
    return sum(items) / len(items) if items else 0.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devset", type=Path, default=DEFAULT_DEVSET)
    parser.add_argument("--show", type=int, default=0, help="print the N pages with the lowest recall")
    parser.add_argument("--no-timing", action="store_true", help="skip the throughput runs")
    args = parser.parse_args(argv)

    config = boilerplate.Config()
    records, gold = load_devset(args.devset)
    if not records:
        parser.error(f"no pages with gold in {args.devset}")
    outputs = run_stage(records, config)
    baseline = [score_page(r["id"], r["text"], gold[r["id"]]) for r in records]
    scores = [score_page(out["id"], out["text"], gold[out["id"]]) for out in outputs]
    removed = Counter(marker[1] for out in outputs for marker in out["markers"])
    gold_total = sum(s.gold_tokens for s in scores)

    print(f"pages: {len(scores)}   devset: {args.devset}")
    print(f"keep-everything baseline: mean F1 {mean(s.f1 for s in baseline):.3f}")
    print(
        f"(a) kept text vs gold article: mean P {mean(s.precision for s in scores):.3f}  "
        f"R {mean(s.recall for s in scores):.3f}  F1 {mean(s.f1 for s in scores):.3f}"
    )
    print(
        f"(b) article-token recall: pooled {sum(s.kept_gold_tokens for s in scores) / max(gold_total, 1):.4f}  "
        f"mean per page {mean(s.recall for s in scores if s.gold_tokens):.4f}  "
        f"pages under 0.97: {sum(1 for s in scores if s.gold_tokens and s.recall < 0.97)}"
    )
    print(f"removed lines by reason: {dict(removed.most_common())}")
    if not args.no_timing:
        print(f"(c) throughput: {throughput(records, config):.2f} MB/s (median of {TIMING_RUNS}, one core)")
    for score in sorted(scores, key=lambda s: s.recall)[: args.show]:
        print(f"  {score.page}: recall {score.recall:.3f} of {score.gold_tokens} tokens, F1 {score.f1:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
