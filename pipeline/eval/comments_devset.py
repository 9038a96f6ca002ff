"""Measure comment-section extraction on a dev set of pages with gold comments.

Each page is `<id>.txt` (the page text, one block per line) beside
`<id>.gold.json` ({"article": ..., "comments": str | null}). For every page the
text goes through `split_lines` + `find_comment_section` with no markers (no
boilerplate stage runs first here, so widget lines are still in the text).

Reported:
* mean bag-of-words F1 of the found comment text (bodies + header lines, as the
  gold keeps author/date/"Reply" lines) against the gold comments, over the
  pages that have gold comments; a page where nothing is found scores 0;
* the share of pages WITHOUT gold comments where a section was found.

Tokens are lowercased `\\w+` runs; precision and recall use multiset
intersection and are computed per page, then averaged.

    python -m pipeline.eval.comments_devset [--devset DIR] [--worst N]
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.document import split_lines
from pipeline.extract.comments import CommentSection, find_comment_section

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DEVSET = REPO_ROOT.parent / "shared" / "devsets" / "dragnet-train"
_TOKEN = re.compile(r"\w+")


@dataclass(frozen=True)
class PageScore:
    """Precision, recall and F1 of one page with gold comments."""

    page: str
    precision: float
    recall: float
    f1: float


def tokens(text: str) -> Counter[str]:
    """Lowercased word tokens of `text` as a multiset."""
    return Counter(_TOKEN.findall(text.lower()))


def bow_scores(predicted: str, gold: str) -> tuple[float, float, float]:
    """Bag-of-words precision, recall and F1 of `predicted` against `gold`."""
    pred, ref = tokens(predicted), tokens(gold)
    overlap = sum((pred & ref).values())
    precision = overlap / sum(pred.values()) if pred else 0.0
    recall = overlap / sum(ref.values()) if ref else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def section_text(section: CommentSection | None) -> str:
    """All comment text found: header lines and bodies, in page order."""
    if section is None:
        return ""
    rows = sorted({line.index: line.text for c in section.comments for line in (*c.header, *c.body)}.items())
    return "\n".join(text for _, text in rows)


def evaluate(devset: Path) -> tuple[list[PageScore], list[str], int]:
    """Scores of pages with gold comments, ids of false sections, count of pages without."""
    scores: list[PageScore] = []
    false_sections: list[str] = []
    without = 0
    for gold_path in sorted(devset.glob("*.gold.json")):
        page = gold_path.name[: -len(".gold.json")]
        text = (devset / f"{page}.txt").read_text(encoding="utf-8")
        gold = json.loads(gold_path.read_text(encoding="utf-8")).get("comments")
        section = find_comment_section(split_lines(text))
        if gold:
            scores.append(PageScore(page, *bow_scores(section_text(section), gold)))
        else:
            without += 1
            if section is not None:
                false_sections.append(page)
    return scores, false_sections, without


def main(argv: Sequence[str] | None = None) -> int:
    """Print the dev-set numbers; `--worst N` also lists the N lowest-F1 pages."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devset", type=Path, default=DEFAULT_DEVSET)
    parser.add_argument("--worst", type=int, default=0, help="list the N pages with the lowest F1")
    args = parser.parse_args(argv)
    scores, false_sections, without = evaluate(args.devset)
    if not scores:
        print(f"no pages with gold comments in {args.devset}")
        return 1
    count = len(scores)
    print(f"pages with gold comments: {count}")
    print(f"  mean precision {sum(s.precision for s in scores) / count:.3f}")
    print(f"  mean recall    {sum(s.recall for s in scores) / count:.3f}")
    print(f"  mean F1        {sum(s.f1 for s in scores) / count:.3f}")
    print(f"  pages with no section found: {sum(1 for s in scores if s.precision == 0 and s.recall == 0)}")
    rate = 100 * len(false_sections) / without if without else 0.0
    print(f"pages without gold comments: {without}; section found on {len(false_sections)} ({rate:.1f}%)")
    if args.worst:
        for s in sorted(scores, key=lambda s: s.f1)[: args.worst]:
            print(f"  {s.page}: P {s.precision:.2f} R {s.recall:.2f} F1 {s.f1:.2f}")
        print(f"  false sections: {' '.join(false_sections)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
