"""kill -9 at three points of a run: the output is the old state or the new one, never
a half-written folder a later run would trust; a re-run completes and verifies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.cli import main

REPO = Path(__file__).resolve().parents[1]
CONFIG = str(REPO / "configs" / "default.yaml")
POINTS = {
    "split": "stages/.tmp-04-split-",  # a per-document stage
    "dedup": "stages/.tmp-06-dedup-",  # a corpus stage
    "export": "corpus/.tmp-0.1.0-",  # the corpus version being written
}


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Enough pages that each point lasts long enough to be caught."""
    folder = tmp_path_factory.mktemp("pages")
    seeds = sorted((REPO / "seeds").glob("*.txt"))
    for copy in range(8):
        for seed in seeds:
            text = seed.read_text(encoding="utf-8")
            (folder / f"{copy}-{seed.name}").write_text(f"Copy {copy} of the page.\n\n{text}", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def reference(pages: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The corpus an uninterrupted run writes."""
    out = tmp_path_factory.mktemp("reference") / "out"
    assert main(["run", "--config", CONFIG, "--input", str(pages), "--output", str(out), "--quiet"]) == 0
    return out / "corpus" / "0.1.0"


def kill_when_seen(args: list[str], marker: str, out: Path, limit: float = 120.0) -> bool:
    """Start a run and SIGKILL it as soon as a path starting with `marker` exists."""
    process = subprocess.Popen([sys.executable, "-m", "pipeline", *args], cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    folder, prefix = (out / marker).parent, Path(marker).name
    deadline = time.monotonic() + limit
    try:
        while process.poll() is None and time.monotonic() < deadline:
            if folder.is_dir() and any(p.name.startswith(prefix) for p in folder.iterdir()):
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
                return True
            time.sleep(0.002)
        return False
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def assert_nothing_half_written(out: Path) -> None:
    for folder in (out / "stages").iterdir() if (out / "stages").is_dir() else []:
        if not folder.name.startswith("."):
            assert (folder / "stage.json").is_file(), f"{folder} has no stage.json"
    version = out / "corpus" / "0.1.0"
    if version.exists():
        assert main(["verify", str(version)]) == 0


@pytest.mark.parametrize("point", sorted(POINTS))
def test_kill_then_rerun_completes_and_verifies(pages: Path, reference: Path, tmp_path: Path,
                                                point: str) -> None:
    out = tmp_path / "out"
    args = ["run", "--config", CONFIG, "--input", str(pages), "--output", str(out), "--quiet"]
    assert kill_when_seen(args, POINTS[point], out), f"the run ended before reaching {point}"
    assert_nothing_half_written(out)
    assert main(args) == 0
    assert not any(p.name.startswith(".tmp-") for p in (out / "stages").iterdir())
    assert main(["verify", str(out / "corpus" / "0.1.0")]) == 0
    for name in ("articles.jsonl", "comments.jsonl"):
        assert (out / "corpus/0.1.0" / name).read_bytes() == (reference / name).read_bytes()


def test_kill_during_a_new_version_keeps_the_old_one(pages: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["run", "--config", CONFIG, "--input", str(pages), "--output", str(out), "--quiet"]
    assert main(args) == 0
    before = (out / "corpus/0.1.0/articles.jsonl").read_bytes()
    changed = args + ["--set", "split.related=drop", "--force"]
    assert kill_when_seen(changed, POINTS["export"], out)
    assert (out / "corpus/0.1.0/articles.jsonl").read_bytes() == before
    assert main(["verify", str(out / "corpus" / "0.1.0")]) == 0
