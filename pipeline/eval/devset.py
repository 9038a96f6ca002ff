"""The whole pipeline measured on labelled pages: `python -m pipeline.eval.devset`.

Runs the default config over the seeds (scored by line against tests/gold) and,
when present, over ../shared/devsets/dragnet-train (scored by bag of words against
its gold article and comments) twice: as given (a block per line) and laid out with a
blank line between blocks, as the seeds and many scrapers write pages, in a temp folder;
a gap between the two is a signal leaning on the layout. Prints a Markdown report. The dev set is
evaluation data: it is read where it lies and nothing of it is written into the repo.

Metric (as in the dev set's README): lowercase `\\w+` tokens of prediction and gold,
multiset intersection, precision/recall/F1 per page, then the mean over pages.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from pipeline.config import load_config
from pipeline.io import read_jsonl
from pipeline.runner import run

REPO = Path(__file__).resolve().parents[2]
DEVSET = REPO.parent / "shared" / "devsets" / "dragnet-train"
TOKEN = re.compile(r"\w+")
DROP = {"boilerplate", "comment", "comment_header", "related"}
MARK = re.compile(r"^\s*(?:\d{1,4}[.)]|[•·*])?\s*")


def tokens(text: str) -> Counter[str]:
    return Counter(TOKEN.findall(text.lower()))


def prf(predicted: str, gold: str) -> tuple[float, float, float]:
    """Bag-of-words precision, recall and F1; two empty texts agree perfectly."""
    p, g = tokens(predicted), tokens(gold)
    if not p and not g:
        return 1.0, 1.0, 1.0
    overlap = sum((p & g).values())
    precision = overlap / sum(p.values()) if p else 0.0
    recall = overlap / sum(g.values()) if g else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def _corpus(output: Path) -> Path:
    return output / "corpus" / (output / "corpus" / "LATEST").read_text(encoding="utf-8").strip()


def _by_page(corpus: Path) -> tuple[dict[str, str], dict[str, list[str]]]:
    main: dict[str, str] = {}
    for row in read_jsonl(corpus / "articles.jsonl"):
        if row["role"] == "main":
            main[row["source"]] = row["text"]
    comments: dict[str, list[str]] = {}
    for row in read_jsonl(corpus / "comments.jsonl"):
        # The dev-set gold keeps author and date lines as shown; they are fields here.
        shown = [row.get("author") or "", row.get("posted_raw") or "", row["text"]]
        comments.setdefault(row["source"], []).append("\n".join(shown))
    return main, comments


def run_pipeline(input_dir: Path, output: Path, config: Path) -> float:
    started = time.perf_counter()
    run(load_config(config), input_dir, output, progress=False)
    return time.perf_counter() - started


def blank_layout(devset: Path, target: Path) -> Path:
    """The dev set's pages with a blank line between blocks (the seeds' layout; the dev set has a
    block per line and no blank lines), written to `target`, a temp folder outside the repo. The
    gold is read from `devset` as before: the ids are the file names."""
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(devset.glob("*.txt")):
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
        (target / path.name).write_text("\n\n".join(text.split("\n")), encoding="utf-8", errors="surrogateescape")
    return target


def score_seeds(output: Path) -> dict[str, Any]:
    """Line-level precision/recall of the main articles against the seed gold."""
    main, comments = _by_page(_corpus(output))
    tp = fp = fn = 0
    for gold_path in sorted((REPO / "tests" / "gold").glob("*.json")):
        gold = json.loads(gold_path.read_text(encoding="utf-8"))
        lines = (REPO / "seeds" / gold["source"]).read_text(encoding="utf-8").split("\n")
        paragraphs = {" ".join(MARK.sub("", p).split()) for p in main.get(gold["source"], "").split("\n\n")}
        for entry in gold["lines"]:
            present = " ".join(MARK.sub("", lines[entry["n"] - 1]).split()) in paragraphs
            if entry["label"] == "article":
                tp += present
                fn += not present
            elif entry["label"] in DROP:
                fp += present
    return {"precision": tp / (tp + fp) if tp + fp else 1.0, "recall": tp / (tp + fn) if tp + fn else 1.0,
            "comments": {source: len(texts) for source, texts in sorted(comments.items())}}


def score_devset(output: Path, devset: Path) -> dict[str, Any]:
    main, comments = _by_page(_corpus(output))
    article_f1: list[float] = []
    article_f1_with_comments: list[float] = []
    comment_f1: list[float] = []
    false_sections = no_comment_pages = 0
    for gold_path in sorted(devset.glob("*.gold.json")):
        gold = json.loads(gold_path.read_text(encoding="utf-8"))
        source = gold_path.name.replace(".gold.json", ".txt")
        f1 = prf(main.get(source, ""), gold["article"] or "")[2]
        article_f1.append(f1)
        found = "\n".join(comments.get(source, []))
        if gold.get("comments"):
            article_f1_with_comments.append(f1)
            comment_f1.append(prf(found, gold["comments"])[2])
        else:
            no_comment_pages += 1
            false_sections += bool(found)
    return {
        "pages": len(article_f1),
        "article_f1": statistics.fmean(article_f1),
        "pages_with_comments": len(comment_f1),
        "comment_f1": statistics.fmean(comment_f1) if comment_f1 else None,
        "article_f1_on_comment_pages": statistics.fmean(article_f1_with_comments) if comment_f1 else None,
        "comments_found_on_pages_without": false_sections / no_comment_pages if no_comment_pages else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.eval.devset", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "default.yaml")
    parser.add_argument("--devset", type=Path, default=DEVSET)
    parser.add_argument("--work", type=Path, default=None, help="output folder (default: a temp folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="devset-") as tmp:
        work = args.work or Path(tmp)
        seconds = run_pipeline(REPO / "seeds", work / "seeds", args.config)
        seeds = score_seeds(work / "seeds")
        print("## Seeds (line labels, tests/gold)\n")
        print(f"- main article lines: precision {seeds['precision']:.4f}, recall {seeds['recall']:.4f}")
        print(f"- comments per page: {seeds['comments']}")
        print(f"- full pipeline: {seconds:.2f} s\n")
        if not args.devset.is_dir():
            print(f"dev set not found at {args.devset}: skipped")
            return 0
        size = sum(p.stat().st_size for p in args.devset.glob("*.txt"))
        layouts = [("a block per line, as given", args.devset),
                   ("a blank line between blocks, as in the seeds", blank_layout(args.devset, work / "blank-pages"))]
        for number, (layout, pages) in enumerate(layouts):
            seconds = run_pipeline(pages, work / f"dev-{number}", args.config)
            dev = score_devset(work / f"dev-{number}", args.devset)
            print(f"## dragnet-train ({dev['pages']} pages, {size / 1e6:.1f} MB; {layout})\n")
            print(f"- main article bag-of-words F1, all pages: {dev['article_f1']:.4f}")
            print(f"- comment F1 on the {dev['pages_with_comments']} pages with gold comments: "
                  f"{dev['comment_f1']:.4f}")
            print(f"- main article F1 on those pages: {dev['article_f1_on_comment_pages']:.4f}")
            print(f"- pages without gold comments where comments were found: "
                  f"{dev['comments_found_on_pages_without']:.2%}")
            print(f"- full pipeline: {seconds:.1f} s ({size / 1e6 / seconds:.2f} MB/s)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
