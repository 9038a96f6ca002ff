"""The HTML audit report (pipeline/report.py): static files, one page per input, lines
labelled and coloured as the ledger says; and, where Debian's Chromium is installed,
what a headless browser really renders (DOM and a screenshot)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import time
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest

import pipeline.io
import pipeline.ledger
from pipeline.config import load_config
from pipeline.errors import DiskFullError, InputError
from pipeline.executors.pool import fork_map
from pipeline.io import read_jsonl
from pipeline.ledger import StageData, page_lines, rebuild_run
from pipeline.report import (
    SOURCE_FILE,
    ReportConfig,
    needs_a_look,
    page_file,
    sample_pages,
    write_pages,
    write_report,
)
from pipeline.runner import run

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO / "seeds"
CONFIG = REPO / "configs" / "default.yaml"
GOLD_000 = json.loads((REPO / "tests" / "gold" / "000_3ff87b482df5ac51.json").read_text(encoding="utf-8"))
PAGE_000 = "000_3ff87b482df5ac51"
PAGE_004 = "004_093dd67b94dec410"
# Debian's package; AUDIT_CHROMIUM=/nonexistent shows the skip.
CHROMIUM = Path(os.environ.get("AUDIT_CHROMIUM", "/usr/bin/chromium"))


class Lines(HTMLParser):
    """Collects the attributes of every element with data-label, and every link."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, str | None]] = []
        self.links: list[str] = []
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if "data-label" in found:
            self.lines.append(found)
        if tag == "a" and found.get("href"):
            self.links.append(str(found["href"]))
        for name in ("src", "href"):
            if found.get(name):
                self.sources.append(str(found[name]))
        if tag == "link":
            self.sources.append(f"<link {found}>")


def parse(html: str) -> Lines:
    parser = Lines()
    parser.feed(html)
    return parser


def comment_depths(lines: list[dict[str, str | None]]) -> list[int]:
    """Depth of each comment, in page order, from the lines that carry data-comment."""
    depths: dict[str, int] = {}
    for line in lines:
        if line.get("data-comment"):
            depths.setdefault(str(line["data-comment"]), int(str(line["data-depth"])))
    return list(depths.values())


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "data"
    run(load_config(CONFIG), SEEDS, out, progress=False)
    index = write_report(out)
    assert index == out / "audit" / "index.html"
    return out


def test_one_page_per_input_linked_both_ways(report: Path) -> None:
    audit = report / "audit"
    pages = sorted(p.name for p in (audit / "pages").glob("*.html"))
    assert pages == sorted(f"{p.stem}.html" for p in SEEDS.glob("*.txt"))
    index = parse((audit / "index.html").read_text(encoding="utf-8"))
    for name in pages:
        assert f"pages/{name}" in index.links
        page = parse((audit / "pages" / name).read_text(encoding="utf-8"))
        assert "../index.html#pages" in page.links


def test_no_external_assets(report: Path) -> None:
    for path in (report / "audit").rglob("*.html"):
        html = path.read_text(encoding="utf-8")
        parsed = parse(html)
        assert not [s for s in parsed.sources if re.match(r"(https?:)?//|<link", s)], path
        assert "<script src" not in html and "@import" not in html and "url(" not in html
        assert html.startswith("<!doctype html>") and "<style>" in html


def test_lines_carry_the_ledger_labels(report: Path) -> None:
    for result in rebuild_run(report):
        expected = Counter(line.label for line in page_lines(result))
        html = (report / "audit" / "pages" / page_file(result.page)).read_text(encoding="utf-8")
        rendered = parse(html).lines
        assert Counter(str(line["data-label"]) for line in rendered) == expected
        for line in rendered:
            if line["data-label"] != "blank":
                assert line.get("title") and line.get("data-stage"), line
    page_004 = parse((report / "audit" / "pages" / page_file(PAGE_004)).read_text(encoding="utf-8")).lines
    labels = Counter(str(line["data-label"]) for line in page_004)
    assert labels["related"] > 0 and labels["boilerplate:donation"] > 0 and labels["title"] == 4


def test_comment_thread_depths_match_the_gold(report: Path) -> None:
    html = (report / "audit" / "pages" / page_file(PAGE_000)).read_text(encoding="utf-8")
    depths = comment_depths(parse(html).lines)
    assert len(depths) == 27
    assert depths == [c["depth"] for c in GOLD_000["comments"]]


def test_index_has_stage_table_chart_and_filter(report: Path) -> None:
    html = (report / "audit" / "index.html").read_text(encoding="utf-8")
    assert "<svg" in html and "comment_header" in html and 'id="filter"' in html
    for stage in ("ingest", "clean", "boilerplate", "split", "metadata", "dedup", "langid"):
        assert f"<strong>{stage}</strong>" in html
    assert "Every page was rebuilt" in html


def test_report_is_deterministic(report: Path, tmp_path: Path) -> None:
    before = {p.relative_to(report): p.read_bytes() for p in (report / "audit").rglob("*.html")}
    write_report(report)
    after = {p.relative_to(report): p.read_bytes() for p in (report / "audit").rglob("*.html")}
    assert before == after


def test_report_made_by_several_workers_is_byte_identical(report: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"  # the index names the output folder: same name as the fixture's
    shutil.copytree(report, out)
    shutil.rmtree(out / "audit")
    write_report(out, workers=3)

    def files(root: Path) -> dict[Path, bytes]:
        return {p.relative_to(root): p.read_bytes() for p in (root / "audit").rglob("*")
                if p.is_file() and p.name != ".source"}  # .source: sizes and times of the inputs

    assert len(files(out)) == 6 and files(out) == files(report)


def _audit_files(root: Path) -> dict[Path, bytes]:
    return {p.relative_to(root): p.read_bytes() for p in (root / "audit").rglob("*")
            if p.is_file() and p.name != ".source"}  # .source: sizes and times of the inputs


@pytest.mark.parametrize("pages_per_batch", [1, 2])
def test_report_made_a_few_pages_at_a_time_is_byte_identical(report: Path, tmp_path: Path, pages_per_batch: int,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "data"
    shutil.copytree(report, out)
    shutil.rmtree(out / "audit")
    monkeypatch.setattr("pipeline.report.PAGES_PER_BATCH", pages_per_batch)
    cuts = []
    real = pipeline.ledger.cut_run

    def counted(output_dir: Path, pages: int, size: int | None = None) -> pipeline.ledger.RunCut:
        cuts.append(real(output_dir, pages, size))
        return cuts[-1]

    monkeypatch.setattr("pipeline.report.cut_run", counted)
    write_report(out, workers=2)
    assert len(cuts[0].groups) == -(-5 // pages_per_batch)  # the five seeds, a group at a time
    assert _audit_files(out) == _audit_files(report)


def test_stage_files_out_of_page_order_are_read_whole(report: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "data"
    shutil.copytree(report, out)
    shutil.rmtree(out / "audit")
    records = out / "stages" / "07-langid" / "records.jsonl"
    lines = records.read_text(encoding="utf-8").splitlines(keepends=True)
    records.write_text("".join(lines[-1:] + lines[:-1]), encoding="utf-8")  # the last page's record first
    with pytest.raises(pipeline.ledger.RunOutOfOrder, match="07-langid/records.jsonl"):
        for _ in pipeline.ledger.iter_run(out, 2):
            pass
    monkeypatch.setattr("pipeline.report.PAGES_PER_BATCH", 2)  # so the batches meet the misplaced record
    whole = []
    monkeypatch.setattr("pipeline.report.load_run", lambda folder: whole.append(folder) or pipeline.ledger.load_run(folder))
    write_report(out)
    assert whole == [out]
    assert (out / "audit" / "index.html").is_file() and len(_audit_files(out)) == 6
    assert not list(out.glob(".tmp*")) and not list(out.glob("audit*/.tmp*"))


def test_a_worker_that_fails_fails_the_report(report: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "data"
    shutil.copytree(report, out)
    shutil.rmtree(out / "audit")

    def broken(*args: object) -> str:
        raise RuntimeError("render failed")

    monkeypatch.setattr("pipeline.report.render_page", broken)
    with pytest.raises(RuntimeError, match="render failed"):
        write_report(out, workers=2)
    assert not (out / "audit").exists()  # nothing half-written in place


def test_fork_map_keeps_the_order_and_uses_other_processes() -> None:
    parent = os.getpid()
    results = fork_map(lambda n: (n * n, os.getpid()), range(40), workers=3)
    assert [square for square, _ in results] == [n * n for n in range(40)]
    assert parent not in {pid for _, pid in results}
    assert set(fork_map(lambda n: os.getpid(), range(5), workers=1)) == {parent}


def test_fork_map_runs_a_chunk_of_the_given_size_in_one_process() -> None:
    def pid(n: int) -> tuple[int, int]:
        time.sleep(0.01)  # so that, cut smaller, the items would be shared out
        return n, os.getpid()

    results = fork_map(pid, range(16), workers=2, chunk=16)
    assert [n for n, _ in results] == list(range(16)) and len({p for _, p in results}) == 1
    assert [n for n, _ in fork_map(pid, range(5), workers=2, chunk=1)] == list(range(5))


def test_fork_map_raises_what_a_worker_raised() -> None:
    def check(n: int) -> int:
        if n == 17:
            raise ValueError(f"bad item {n}")
        return n

    with pytest.raises(ValueError, match="bad item 17"):
        fork_map(check, range(30), workers=2)


def test_page_file_names_are_safe_and_distinct() -> None:
    names = {page_file(page) for page in ("site/a", "site_a", "a#b", "../x", "plain")}
    assert len(names) == 5
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+\.html", name) and not name.startswith(".") for name in names)
    assert page_file("plain") == "plain.html"


def test_a_page_the_ledger_cannot_rebuild_says_so(report: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    shutil.copytree(report, out)
    path = out / "stages" / "05-metadata" / "spans.jsonl"
    rows = [row for row in read_jsonl(path) if row["id"] != PAGE_000]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    write_report(out)
    index = (out / "audit" / "index.html").read_text(encoding="utf-8")
    assert "1 of 5 pages cannot be rebuilt" in index
    page = (out / "audit" / "pages" / page_file(PAGE_000)).read_text(encoding="utf-8")
    assert "The ledger does not rebuild this page" in page


def test_duplicates_are_shown(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for path in SEEDS.glob("*.txt"):
        shutil.copy(path, inputs / path.name)
    shutil.copy(SEEDS / f"{PAGE_000}.txt", inputs / "zz_copy.txt")
    run(load_config(CONFIG), inputs, tmp_path / "data", progress=False)
    write_report(tmp_path / "data")
    lines = parse((tmp_path / "data" / "audit" / "pages" / "zz_copy.html").read_text(encoding="utf-8")).lines
    labels = Counter(str(line["data-label"]) for line in lines)
    assert labels["duplicate"] > 50 and labels["comment"] == 0
    assert "Duplicate clusters (" in (tmp_path / "data" / "audit" / "index.html").read_text(encoding="utf-8")


# --- in a real browser --------------------------------------------------------------------------


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium as root, each call with a new empty profile."""
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        return subprocess.run(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=120, check=False)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(),
                                    reason=f"{CHROMIUM} not installed: apt-get install -y chromium "
                                           "to run the browser tests")


@needs_chromium
def test_browser_renders_the_labelled_lines_and_the_thread(report: Path) -> None:
    page = report / "audit" / "pages" / page_file(PAGE_000)
    result = chromium("--dump-dom", page.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    rendered = parse(result.stdout).lines
    expected = Counter(line.label for line in page_lines(next(r for r in rebuild_run(report) if r.page == PAGE_000)))
    assert Counter(str(line["data-label"]) for line in rendered) == expected
    depths = comment_depths(rendered)
    assert len(depths) == 27 and depths == [c["depth"] for c in GOLD_000["comments"]]


@needs_chromium
def test_browser_runs_the_index_script(report: Path) -> None:
    result = chromium("--dump-dom", (report / "audit" / "index.html").as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    # The filter script ran: it writes the count of shown pages.
    assert re.search(r'id="shown"[^>]*>5 of 5 pages<', result.stdout)


@needs_chromium
def test_browser_screenshots(report: Path, tmp_path: Path) -> None:
    for name, url in (("page.png", (report / "audit" / "pages" / page_file(PAGE_000)).as_uri()),
                      ("index.png", (report / "audit" / "index.html").as_uri())):
        shot = tmp_path / name
        result = chromium(f"--screenshot={shot}", "--window-size=1280,2000", url)
        assert result.returncode == 0, result.stderr[-2000:]
        assert shot.is_file() and shot.stat().st_size > 50_000  # a blank 1280x2000 PNG is a few KB
        assert png_size(shot) == (1280, 2000)



class SerialWriter:
    """pipeline.io.StagedWriter without threads: each file written when it is handed over."""

    def __enter__(self) -> SerialWriter:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def write(self, path: Path, text: str) -> None:
        pipeline.io.write_text_staged(path, text)


def test_pages_written_by_threads_are_those_written_serially(report: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "data"
    shutil.copytree(report, out)
    shutil.rmtree(out / "audit")
    monkeypatch.setattr("pipeline.report.StagedWriter", SerialWriter)
    write_report(out)
    assert len(_audit_files(out)) == 6 and _audit_files(out) == _audit_files(report)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_full_disk_while_writing_a_page_keeps_the_previous_report(report: Path, tmp_path: Path, workers: int,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "data"
    shutil.copytree(report, out)
    (out / "audit" / SOURCE_FILE).write_text("stale", encoding="utf-8")  # so the report is made again
    before = {p.relative_to(out): p.read_bytes() for p in (out / "audit").rglob("*") if p.is_file()}
    failing = page_file(PAGE_004)
    real = pipeline.io._write

    def write(handle: object, data: str, path: Path) -> None:
        if path.name == failing:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(handle, data, path)

    monkeypatch.setattr(pipeline.io, "_write", write)
    with pytest.raises(DiskFullError, match=f"disk full while writing .*pages/{re.escape(failing)}"):
        write_report(out, workers=workers)
    assert {p.relative_to(out): p.read_bytes() for p in (out / "audit").rglob("*") if p.is_file()} == before
    assert not [p.name for p in out.iterdir() if p.name.startswith((".tmp-", ".old-"))]


# --- a bounded sample of page files ------------------------------------------------------------


NAV = re.compile(r'<nav class="top">.*?</nav>')


def _page_files(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (root / "audit" / "pages").glob("*.html")}


def _without_nav(data: bytes) -> str:
    return NAV.sub("", data.decode("utf-8"), count=1)


def _assert_no_dead_links(root: Path) -> list[str]:
    """Every page link of the index and of the page files names a file that exists; returns
    the page files the index's page table links, in its order."""
    audit = root / "audit"
    index = (audit / "index.html").read_text(encoding="utf-8")
    for link in parse(index).links:
        if link.startswith("pages/"):
            assert (audit / link).is_file(), link
    for path in (audit / "pages").glob("*.html"):
        for link in parse(path.read_text(encoding="utf-8")).links:
            assert (path.parent / link.split("#", 1)[0]).is_file(), (path.name, link)
    table = index.split('<table id="pages">', 1)[1].split("</table>", 1)[0]
    return re.findall(r'href="pages/([^"]+)"', table)


def _copy_without_audit(report: Path, tmp_path: Path) -> Path:
    out = tmp_path / "data"
    shutil.copytree(report, out)
    shutil.rmtree(out / "audit")
    return out


def test_sample_is_bounded_spread_over_sites_and_independent_of_order() -> None:
    pages = [f"{site}/{n:04d}" for site in ("b", "a", "c") for n in range(50 if site != "c" else 3)]
    chosen = sample_pages(pages, 10)
    assert len(chosen) == 10
    assert Counter(page.split("/")[0] for page in chosen) == {"a": 4, "b": 3, "c": 3}  # round-robin, sites sorted
    shuffled = list(reversed(pages[::2])) + pages[1::2]
    assert sample_pages(shuffled, 10) == chosen
    assert chosen != set(sorted(pages)[:10]) and chosen != set(pages[:10])  # not the first pages in any order
    first_of_a = min((p for p in pages if p.startswith("a/")), key=lambda p: hashlib.sha1(p.encode()).hexdigest())
    assert first_of_a in chosen
    assert sample_pages(pages, 0) == set(pages) == sample_pages(pages, len(pages))
    assert len(sample_pages(pages, 103)) == 103 == len(sample_pages(pages, 102)) + 1


@pytest.mark.parametrize("workers", [1, 2])
def test_a_bounded_report_renders_the_sample_and_the_same_bytes(report: Path, tmp_path: Path, workers: int) -> None:
    out = _copy_without_audit(report, tmp_path)
    write_report(out, workers=workers, config=ReportConfig(max_pages=2))
    order = [result.page for result in rebuild_run(report)]
    chosen = sample_pages(order, 2)
    expected = [page_file(page) for page in order if page in chosen]
    assert sorted(_page_files(out)) == sorted(expected)
    assert _assert_no_dead_links(out) == expected  # the table lists the rendered pages, in input order
    full = _page_files(report)
    for name, data in _page_files(out).items():
        assert _without_nav(data) == _without_nav(full[name])
    first = (out / "audit" / "pages" / expected[0]).read_text(encoding="utf-8")
    assert f'<a href="{expected[1]}">next ›</a>' in first and "page 1 of 2" in first
    index = (out / "audit" / "index.html").read_text(encoding="utf-8")
    assert "3 of 5 pages were not rendered" in index and "--page" in index
    assert "Every page was rebuilt" in index and "5 pages</p>" in index  # every page checked and counted
    if workers == 2:
        again = tmp_path / "again" / "data"
        shutil.copytree(out, again)
        shutil.rmtree(again / "audit")
        write_report(again, workers=1, config=ReportConfig(max_pages=2))
        assert _audit_files(again) == _audit_files(out)


def test_a_page_with_a_problem_is_rendered_over_the_bound(report: Path, tmp_path: Path) -> None:
    out = _copy_without_audit(report, tmp_path)
    order = [result.page for result in rebuild_run(report)]
    chosen = sample_pages(order, 2)
    broken = next(page for page in order if page not in chosen)
    path = out / "stages" / "05-metadata" / "spans.jsonl"
    rows = [row for row in read_jsonl(path) if row["id"] != broken]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    write_report(out, workers=2, config=ReportConfig(max_pages=2))
    expected = [page_file(page) for page in order if page in chosen or page == broken]
    assert _assert_no_dead_links(out) == expected and sorted(_page_files(out)) == sorted(expected)
    for i, name in enumerate(expected):  # the navigation runs over the three rendered pages
        text = (out / "audit" / "pages" / name).read_text(encoding="utf-8")
        assert f"page {i + 1} of 3" in text
        assert (f'<a href="{expected[i + 1]}">next ›</a>' if i + 1 < 3 else "<span>next ›</span>") in text
    assert "The ledger does not rebuild this page" in (out / "audit" / "pages" / page_file(broken)).read_text(
        encoding="utf-8")
    assert "1 of 5 pages cannot be rebuilt" in (out / "audit" / "index.html").read_text(encoding="utf-8")


def test_a_quarantined_page_or_text_not_rebuilt_needs_a_look(report: Path) -> None:
    result = rebuild_run(report)[0]
    assert not needs_a_look(result, [])
    failed = StageData("clean", entries={result.page: [{"id": f"{result.page}#c1", "dropped": "error",
                                                        "error": "ValueError: boom"}]})
    assert needs_a_look(result, [failed])
    assert result.tape is not None and result.truth is not None
    result.truth = result.truth + "\nA line no record holds.\n"
    assert needs_a_look(result, [])


def test_the_bound_comes_from_the_config(report: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    shutil.copytree(report, out)
    result = run(load_config(CONFIG, ["report.max_pages=3"]), SEEDS, out, progress=False)
    assert result.stages_run == []  # the stages are taken from the folder; only the report is made again
    assert len(_page_files(out)) == 3
    run(load_config(CONFIG, ["report.max_pages=0"]), SEEDS, out, progress=False)
    assert _page_files(out) == _page_files(report)


def test_any_page_is_written_on_demand(report: Path, tmp_path: Path) -> None:
    out = _copy_without_audit(report, tmp_path)
    write_report(out, config=ReportConfig(max_pages=1))
    order = [result.page for result in rebuild_run(report)]
    missing = [page for page in order if not (out / "audit" / "pages" / page_file(page)).exists()]
    assert len(missing) == 4
    written = write_pages(out, [missing[0], f"{missing[1]}#c1"])
    assert written == [out / "audit" / "pages" / page_file(page) for page in missing[:2]]
    full = _page_files(report)
    for path in written:
        text = path.read_text(encoding="utf-8")
        assert _without_nav(path.read_bytes()) == _without_nav(full[path.name])
        i = order.index(path.stem)
        assert "<span>‹ previous</span><span>next ›</span>" in text and f"page {i + 1} of 5" in text
    rendered = next(page for page in order if page not in missing)
    before = (out / "audit" / "pages" / page_file(rendered)).read_bytes()
    assert write_pages(out, [rendered]) == [out / "audit" / "pages" / page_file(rendered)]
    assert (out / "audit" / "pages" / page_file(rendered)).read_bytes() == before  # its file is kept
    with pytest.raises(InputError, match="--page nowhere: no such input page"):
        write_pages(out, ["nowhere"])
