"""`python -m pipeline audit`: the terminal summary and `--doc ID`, git blame for a page."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.audit import describe_page, summarize
from pipeline.cli import main
from pipeline.config import load_config
from pipeline.runner import run

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO / "seeds"
CONFIG = REPO / "configs" / "default.yaml"
PAGE_000 = "000_3ff87b482df5ac51"
PAGE_004 = "004_093dd67b94dec410"


@pytest.fixture(scope="module")
def seeds_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("audit") / "data"
    run(load_config(CONFIG), SEEDS, out, progress=False)
    return out


def rows(text: str) -> dict[int, str]:
    """The page lines of `describe_page` output, by line number."""
    found: dict[int, str] = {}
    for line in text.splitlines():
        head = line[:5].strip()
        if head.isdigit():
            found[int(head)] = line
    return found


def test_summary_has_characters_reasons_and_templates(seeds_run: Path) -> None:
    text = summarize(seeds_run)
    header = text.splitlines()[0]
    assert "chars in" in header and "chars out" in header and "removed" in header and "unrecorded" in header
    stats = json.loads((seeds_run / "stages" / "03-boilerplate" / "stats.json").read_text(encoding="utf-8"))
    boilerplate = next(line for line in text.splitlines() if line.startswith("boilerplate "))
    chars_in, chars_out = stats["characters_in"], stats["characters_out"]
    assert boilerplate.split()[3:7] == [str(chars_in), str(chars_out), str(chars_in - chars_out), "0"]
    assert "characters removed or changed, by reason" in text
    assert "most frequent removals, boilerplate:" in text
    assert "learned site templates: 0" in text
    assert "split: whitespace between and around lines is not recorded (rule W)" in text


def test_summary_lists_learned_and_pinned_templates(tmp_path: Path) -> None:
    site = tmp_path / "in" / "site"
    site.mkdir(parents=True)
    for n in range(3):
        (site / f"p{n}.txt").write_text(
            "Home News Sport\n\n"
            f"Story {n}: the council said on Monday that it would review plan number {n * 7} for the bridge, "
            f"which has been delayed for {n + 2} years by a dispute over who pays for it.\n\n"
            "Subscribe to our feed\n", encoding="utf-8")
    run(load_config(CONFIG, ["boilerplate.template_min_pages=2", 'boilerplate.pin=["Subscribe to our feed"]',
                             "dedup.enabled=false"]), tmp_path / "in", tmp_path / "out", progress=False)
    text = summarize(tmp_path / "out")
    assert "learned site templates: 2 (by site: * 1, site 1)" in text
    assert "      3        3  [site] home news sport" in text
    assert "      3        3  [*] subscribe to our feed  (pinned)" in text
    page = describe_page(tmp_path / "out", "site/p1")
    assert "template (seen on 3 pages of site site)" in rows(page)[1]
    assert "boilerplate:pinned" in rows(page)[5]


def test_doc_prints_every_non_blank_line_with_label_stage_and_reason(seeds_run: Path) -> None:
    text = describe_page(seeds_run, PAGE_000)
    assert text.startswith(f"page {PAGE_000}: {PAGE_000}.txt (18959 bytes, utf-8")
    assert "ledger: rebuilt from the final records and the spans" in text
    lines = rows(text)
    source = (SEEDS / f"{PAGE_000}.txt").read_text(encoding="utf-8").split("\n")
    assert set(lines) == {n for n, line in enumerate(source, 1) if line.strip()}
    assert lines[1].split()[1:3] == ["title", "metadata"]
    assert lines[3].split()[1:3] == ["byline", "metadata"]
    assert lines[5].split()[1:4] == ["article", "split", "main"]
    assert "comment depth 1" in lines[38] and "thread_markup" in lines[38]
    assert lines[40].split()[1:3] == ["comment_header", "split"]
    assert "comment depth 0" in lines[43] and "by mikael" in lines[43]


def test_doc_labels_boilerplate_related_and_metadata(seeds_run: Path) -> None:
    lines = rows(describe_page(seeds_run, PAGE_004))
    assert lines[1].split()[1:4] == ["boilerplate:share", "boilerplate", "share"]
    labels = {line.split()[1] for line in lines.values()}
    assert {"related", "title", "subtitle", "byline", "boilerplate:donation", "article"} <= labels


def test_doc_accepts_record_ids_and_source_paths(seeds_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in (f"{PAGE_004}#r2", f"{PAGE_004}.txt", "004_"):
        assert main(["audit", "--output", str(seeds_run), "--doc", name]) == 0
        assert capsys.readouterr().out.startswith(f"page {PAGE_004}:")


def test_doc_unknown_id_is_a_one_line_error(seeds_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "--output", str(seeds_run), "--doc", "000_3ff87b482df5ac5X"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"did you mean {PAGE_000}" in err


def _cpu_seconds(args: list[str]) -> float:
    """CPU time (user + system) of one child process: steadier than wall time on a busy machine."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO, env=env, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert result.returncode == 0, result.stderr
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def test_audit_adds_little_to_the_command_line_start_up(seeds_run: Path) -> None:
    """`make audit` must take < 5 s on the seeds. Most of it is `import pipeline.cli` (which imports
    every stage, NLTK and SciPy included); the audit's own work must stay a small part of that.
    Measured as CPU time against the start-up measured here, so a busy machine does not fail it."""
    start_up = _cpu_seconds(["-c", "import pipeline.cli"])
    for extra in ([], ["--doc", PAGE_000]):
        took = _cpu_seconds(["-m", "pipeline", "audit", "--output", str(seeds_run), *extra])
        assert took - start_up < 1.0, f"audit {' '.join(extra)}: {took:.2f} s CPU, start-up alone {start_up:.2f} s"
        assert took < 5.0


def test_audit_work_in_process_is_fast(seeds_run: Path) -> None:
    started = time.process_time()
    summarize(seeds_run)
    describe_page(seeds_run, "002_ab9f896ab881ce26")  # the largest seed page
    assert time.process_time() - started < 1.0
