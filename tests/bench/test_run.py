"""The benchmark runner: what it measures of a run, and that it cleans up after itself."""

from __future__ import annotations

from pathlib import Path

from pipeline.bench.generate import generate
from pipeline.bench.run import OUTPUT_PARTS, render, run_once, speed_ups, summarise

REPO = Path(__file__).resolve().parents[2]


def test_a_run_is_measured_then_removed(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    summary = generate(corpus, 40_000, seed=1, source="seeds")
    kept = run_once(REPO, corpus, tmp_path / "kept", workers=1, keep=True)
    gone = run_once(REPO, corpus, tmp_path / "gone", workers=1, keep=False)
    assert (tmp_path / "kept" / "corpus").is_dir() and not (tmp_path / "gone").exists()
    assert set(gone["output_mb"]) == set(OUTPUT_PARTS) and gone["output_mb"]["stages"] > 0
    stages = gone["stages"]
    assert list(stages)[0] == "ingest" and "langid" in stages
    peaks = [stage["parent_peak_rss_mb"] for stage in stages.values()]
    assert all(peak > 10 for peak in peaks) and peaks == sorted(peaks)  # a running peak never falls
    result = summarise([kept, gone], summary["bytes"] / 1e6, summary["pages"], 1)
    text = render({"size": "40kB", "mb": summary["bytes"] / 1e6, "pages": summary["pages"], "seed": 1,
                   "source": "seeds", "syndicated": 0, "corpus": "c", "runs": 2, "date": "d", "commit": "x",
                   "code": "c", "machine": {}, "commands": [], "notes": [], "results": [result]})
    assert "peak RSS MB by the stage's end" in text and "Output on disk (MB, last run): stages " in text


def test_speed_ups_pair_each_round_s_runs() -> None:
    """Each round's 1-worker time over its 2-worker time, then the median: a slow round counts once."""
    runs = {1: [{"wall_s": 10.0}, {"wall_s": 20.0}, {"wall_s": 12.0}],
            2: [{"wall_s": 5.0}, {"wall_s": 16.0}, {"wall_s": 8.0}]}
    (note,) = speed_ups(runs)
    assert "median 1.50x" in note and "(2.00, 1.25, 1.50)" in note
    assert speed_ups({1: [{"wall_s": 1.0}]}) == []
