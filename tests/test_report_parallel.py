"""The audit report read and written a group of pages at a time (pipeline/ledger.py `cut_run`,
`read_group`; pipeline/report.py `write_report`): the byte ranges the cut finds hold exactly
each group's lines, whatever the page ids hold; a range that does not is caught; and the
report is the same for any number of workers, and the same as when the run is read whole."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

import pipeline.ledger
from pipeline.config import load_config
from pipeline.io import dumps
from pipeline.ledger import PageGroup, RunOutOfOrder, cut_run, load_run, page_of, page_of_id, read_group
from pipeline.report import write_report
from pipeline.runner import run

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO / "seeds"
CONFIG = REPO / "configs" / "default.yaml"

# Page ids a line's leading members must be read right for: escapes, non-ASCII, and ids
# that end like a record id (`page_of_id` alone would cut them short).
PAGES = ['a"b', "café/ü", "n#r1", "q#c2", "gone", "b\\s", "z"]


def article(page: str, record_id: str, kind: str = "article", **more: Any) -> dict[str, Any]:
    return {"id": record_id, "kind": kind, "page_id": page, "text": f"text of {record_id}", **more}


SPLIT = [
    article('a"b', 'a"b'), article('a"b', 'a"b#c1', "comment"),
    article("café/ü", "café/ü"), article("café/ü", "café/ü#r1"),
    article("n#r1", "n#r1"), article("n#r1", "n#r1#r1"),
    article("q#c2", "q#c2"), article("q#c2", "q#c2#c1", "comment"),
    # "gone": split kept nothing of it
    article("b\\s", "b\\s"),
    article("z", "z"),
]


def write_stage(root: Path, folder: str, records: list[dict[str, Any]], entries: list[dict[str, Any]],
                written: dict[str, str] | None = None) -> None:
    """A stage folder as the runner writes it; `written` names records (by id) written
    otherwise: "ascii" (escaped non-ASCII) or "spaced" (json.dumps' default separators)."""
    def line(record: dict[str, Any]) -> str:
        how = (written or {}).get(record["id"])
        if how == "ascii":
            return json.dumps(record, ensure_ascii=True, separators=(",", ":"))
        if how == "spaced":
            return json.dumps(record)
        return dumps(record)

    path = root / "stages" / folder
    path.mkdir(parents=True)
    (path / "records.jsonl").write_text("".join(line(r) + "\n" for r in records), encoding="utf-8")
    (path / "spans.jsonl").write_text("".join(dumps(e) + "\n" for e in entries), encoding="utf-8")
    (path / "stats.json").write_text("{}", encoding="utf-8")


@pytest.fixture()
def tricky(tmp_path: Path) -> Path:
    """A run of four stages over PAGES, written by hand: "gone" has no record after ingest."""
    root = tmp_path / "data"
    write_stage(root, "01-ingest", [{"id": p, "source": f"{p}.txt", "text": f"page {p}"} for p in PAGES], [])
    layout = [{"start": 0, "end": 1, "reason": "layout", "original": "p"}]
    write_stage(root, "02-split", SPLIT,
                [{"id": p, "spans": layout} for p in ('a"b', "café/ü", "n#r1")]
                + [{"id": "gone", "dropped": "no_article", "spans": []}, {"id": "b\\s", "spans": layout}])
    write_stage(root, "03-metadata", SPLIT,
                [{"id": i, "spans": [{"start": 0, "end": 4, "reason": "title", "original": "text"}]}
                 for i in ('a"b', "café/ü#r1", "n#r1", "n#r1#r1", "q#c2#c1", "z")])
    write_stage(root, "04-langid", [{**r, "language": "en"} for r in SPLIT], [],
                written={"café/ü#r1": "ascii", "n#r1": "spaced", 'a"b#c1': "ascii"})
    return root


def line_pages(root: Path) -> dict[Path, list[tuple[int, str]]]:
    """(byte offset, page) of every line of every stage file, as `load_run` assigns them."""
    found: dict[Path, list[tuple[int, str]]] = {}
    record_pages: dict[str, str] = {}
    for folder in sorted((root / "stages").iterdir()):
        for name in ("spans.jsonl", "records.jsonl"):
            path = folder / name
            lines = path.read_bytes().splitlines(keepends=True)
            offsets = [sum(len(x) for x in lines[:i]) for i in range(len(lines))]
            rows = [json.loads(x) for x in lines]
            if name == "spans.jsonl":
                found[path] = [(o, record_pages.get(str(r["id"])) or page_of_id(str(r["id"])))
                               for o, r in zip(offsets, rows)]
            else:
                found[path] = [(o, page_of(r)) for o, r in zip(offsets, rows)]
                record_pages = {str(r["id"]): page_of(r) for r in rows}
    return found


@pytest.mark.parametrize("pages_per_group", [1, 2, 3, 100])
def test_each_group_range_holds_exactly_its_pages_lines(tricky: Path, pages_per_group: int) -> None:
    cut = cut_run(tricky, pages_per_group)
    assert cut.order == PAGES
    assert [len(g.pages) for g in cut.groups][:-1] == [pages_per_group] * (len(cut.groups) - 1)
    truth = line_pages(tricky)
    for number, (_, folder) in enumerate(cut.chain):
        for name, ranges in (("records.jsonl", [g.records[number] for g in cut.groups]),
                             ("spans.jsonl", [g.entries[number] for g in cut.groups])):
            path = folder / name
            assert ranges[0][0] == 0 and ranges[-1][1] == path.stat().st_size
            assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))  # the ranges tile the file
            for offset, page in truth[path]:
                (group,) = [g for g, (start, end) in zip(cut.groups, ranges) if start <= offset < end]
                assert page in group.pages, (path.name, offset, page, group.pages)


def test_a_group_of_one_page_and_a_dropped_page(tricky: Path) -> None:
    cut = cut_run(tricky, 1)
    gone = next(g for g in cut.groups if g.pages == ("gone",))
    assert [end - start for start, end in gone.records[1:]] == [0, 0, 0]  # no record after ingest
    assert gone.entries[1][1] > gone.entries[1][0]  # split's entry saying it dropped the page
    batch = read_group(cut, gone)
    assert [list(stage.records) for stage in batch] == [["gone"], [], [], []]
    assert batch[1].entries["gone"][0]["dropped"] == "no_article"


def test_the_groups_read_what_reading_whole_reads(tricky: Path) -> None:
    whole = load_run(tricky)
    for pages_per_group in (1, 3):
        cut = cut_run(tricky, pages_per_group)
        batches = [read_group(cut, group) for group in cut.groups]
        for position, stage in enumerate(whole):
            for field in ("records", "entries"):
                merged = {page: found for batch in batches for page, found in getattr(batch[position], field).items()}
                assert json.dumps(merged) == json.dumps(getattr(stage, field)), (stage.name, field)


def test_the_groups_read_lines_as_text_mode_does(tricky: Path) -> None:
    # read_group splits a range's bytes itself: "\r\n" and "\r" end a line as "\n" does, blank
    # lines are skipped, and a line the stage before wrote alike is still shared.
    for path in sorted((tricky / "stages").glob("*/*.jsonl")):
        lines = path.read_bytes().splitlines(keepends=True)
        end = b"\r" if path.parent.name == "02-split" and path.name == "records.jsonl" else b"\r\n"
        path.write_bytes(b"".join(line.replace(b"\n", end) for line in lines[:1]) + b" \t\r\n"
                         + b"".join(lines[1:]))
    whole = load_run(tricky)
    assert sum(len(found) for found in whole[0].records.values()) == len(PAGES)
    cut = cut_run(tricky, 2)
    batches = [read_group(cut, group) for group in cut.groups]
    for position, stage in enumerate(whole):
        for field in ("records", "entries"):
            merged = {page: found for batch in batches for page, found in getattr(batch[position], field).items()}
            assert json.dumps(merged) == json.dumps(getattr(stage, field)), (stage.name, field)
    for batch in batches:  # split and metadata wrote the same lines: one record for both
        for page, found in batch[2].records.items():
            assert [id(r) for r in found] == [id(r) for r in batch[1].records[page]], page


def test_a_range_holding_another_groups_line_is_caught(tricky: Path) -> None:
    cut = cut_run(tricky, 1)
    first, second = cut.groups[0], cut.groups[1]  # 'a"b', then "café/ü"
    start, end = first.records[2]
    _, after = second.records[2]
    stolen = PageGroup(first.pages, first.records[:2] + ((start, after),) + first.records[3:], first.entries)
    with pytest.raises(RunOutOfOrder, match="03-metadata/records.jsonl"):
        read_group(cut, stolen)
    assert end < after
    short = PageGroup(first.pages, first.records[:2] + ((start, end - 2),) + first.records[3:], first.entries)
    with pytest.raises(ValueError, match="03-metadata/records.jsonl:2: not valid JSON"):
        read_group(cut, short)  # half a line


def test_a_page_whose_lines_are_apart_is_read_whole(tricky: Path) -> None:
    path = tricky / "stages" / "01-ingest" / "records.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines + lines[:1]), encoding="utf-8")
    with pytest.raises(RunOutOfOrder, match="01-ingest/records.jsonl"):
        cut_run(tricky, 2)


def test_groups_are_cut_by_bytes_too(tricky: Path) -> None:
    assert [len(g.pages) for g in cut_run(tricky, 100, bytes_per_group=1).groups] == [1] * len(PAGES)
    assert len(cut_run(tricky, 100, bytes_per_group=10**6).groups) == 1


# --- the report ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tricky_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seeds under names that are hard to read from a line, plus a copy (dedup drops it)."""
    inputs = tmp_path_factory.mktemp("inputs")
    names = ['000_y#c2', '001 "quoted"', "002_café ü", "003_back\\slash", "004_x#r1"]  # 000: comments, 004: related
    for name, path in zip(names, sorted(SEEDS.glob("*.txt"))):
        shutil.copy(path, inputs / f"{name}.txt")
    shutil.copy(sorted(SEEDS.glob("*.txt"))[1], inputs / "zz_copy.txt")
    out = tmp_path_factory.mktemp("run") / "data"
    run(load_config(CONFIG), inputs, out, progress=False, report=False)
    return out


def audit_files(root: Path) -> dict[Path, bytes]:
    return {p.relative_to(root): p.read_bytes() for p in (root / "audit").rglob("*")
            if p.is_file() and p.name != ".source"}  # .source: sizes and times of the inputs


def report_of(source: Path, tmp_path: Path, name: str, workers: int) -> dict[Path, bytes]:
    out = tmp_path / name / "data"  # the index names the output folder: the same name each time
    shutil.copytree(source, out, ignore=shutil.ignore_patterns("audit"))
    write_report(out, workers=workers)
    return audit_files(out)


def test_reports_are_the_same_for_any_number_of_workers_and_read_whole(tricky_run: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    cut = cut_run(tricky_run, 256)
    assert cut.order[:5] == ['000_y#c2', '001 "quoted"', "002_café ü", "003_back\\slash", "004_x#r1"]
    monkeypatch.setattr("pipeline.report.GROUP_BYTES", 1)  # a group per page
    reports = {workers: report_of(tricky_run, tmp_path, f"w{workers}", workers) for workers in (1, 2, 3)}
    monkeypatch.undo()
    reports[0] = report_of(tricky_run, tmp_path, "one-group", 2)

    def whole(*args: object) -> None:
        raise RunOutOfOrder("read whole")

    monkeypatch.setattr("pipeline.report.cut_run", whole)
    read_whole = report_of(tricky_run, tmp_path, "whole", 2)
    assert len(read_whole) == 7  # the index and six pages
    assert "Every page was rebuilt" in read_whole[Path("audit/index.html")].decode()
    for workers, files in reports.items():
        assert files == read_whole, workers


def test_the_report_reads_no_stage_file_in_the_parent_with_workers(tricky_run: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    parent: list[str] = []
    real = pipeline.ledger._Lines.__init__

    def opened(self: Any, path: Path, *args: Any) -> None:
        if os.getpid() == pid:
            parent.append(path.name)
        real(self, path, *args)

    pid = os.getpid()
    monkeypatch.setattr("pipeline.ledger._Lines.__init__", opened)
    monkeypatch.setattr("pipeline.report.GROUP_BYTES", 1)  # more groups than workers
    report_of(tricky_run, tmp_path, "w2", 2)
    assert parent == []
    report_of(tricky_run, tmp_path, "w1", 1)
    assert parent  # one worker: read here


def test_a_file_out_of_order_seen_by_a_worker_is_read_whole(tricky_run: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "tampered"
    shutil.copytree(tricky_run, source, ignore=shutil.ignore_patterns("audit"))
    records = source / "stages" / "05-metadata" / "records.jsonl"
    lines = records.read_text(encoding="utf-8").splitlines(keepends=True)
    records.write_text("".join(lines[-1:] + lines[:-1]), encoding="utf-8")  # the last page's record first
    cut = cut_run(source, 256, 1)  # the cut does not see it ...
    with pytest.raises(RunOutOfOrder, match="05-metadata/records.jsonl"):
        read_group(cut, cut.groups[0])  # ... the group that holds the line does
    whole: list[Path] = []
    monkeypatch.setattr("pipeline.report.GROUP_BYTES", 1)
    monkeypatch.setattr("pipeline.report.load_run", lambda folder: whole.append(folder) or load_run(folder))
    made = report_of(source, tmp_path, "w2", 2)
    assert len(whole) == 1  # after a worker raised RunOutOfOrder

    def read_whole(*args: object) -> None:
        raise RunOutOfOrder("read whole")

    monkeypatch.setattr("pipeline.report.cut_run", read_whole)
    assert made == report_of(source, tmp_path, "whole", 2)
