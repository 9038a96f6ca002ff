"""The catalogue of bad input: each kind is a row of data (a file and its exact outcome), and
one run over a folder holding all of them must not crash and must account for every file.
Also: a full disk while writing a stage output or a corpus version."""

from __future__ import annotations

import codecs
import errno
import json
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pipeline import io as pipeline_io
from pipeline.cli import main
from pipeline.config import load_config
from pipeline.corpus import verify
from pipeline.errors import DiskFullError
from pipeline.io import read_jsonl
from pipeline.runner import run
from pipeline.stages import ingest

REPO = Path(__file__).resolve().parents[1]
LIMITS = ["ingest.max_bytes=400000", "ingest.max_line_chars=20000"]  # small, so the cases stay small

# --- page builders: distinct English prose per case, so dedup keeps them apart ---------------

NOUNS = ("council budget river bridge school teacher hospital doctor farmer harvest station train "
         "festival museum painter election mayor senator court judge factory worker harbour ship forest "
         "storm village market library student bakery clinic nurse airport pilot garden stadium").split()
VERBS = "approved delayed criticised praised rebuilt inspected reopened closed funded visited expanded".split()
PLACES = "Lyon Porto Leeds Krakow Gdansk Tartu Bergen Cork Turin Ghent Basel Graz Aarhus Split".split()
DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()


def sentence(rng: random.Random) -> str:
    def noun() -> str:
        return rng.choice(NOUNS)

    return (f"The {noun()} of the {noun()} said on {rng.choice(DAYS)} that the {noun()} "
            f"{rng.choice(VERBS)} the {noun()} in {rng.choice(PLACES)}, and that the {noun()} would be "
            f"{rng.choice(VERBS)} before the {noun()} of {rng.randint(1990, 2030)}.")


def article(key: str, paragraphs: int = 6) -> str:
    rng = random.Random(key)
    title = f"The {rng.choice(NOUNS)} of {rng.choice(PLACES)} is {rng.choice(VERBS)} again"
    body = [" ".join(sentence(rng) for _ in range(3)) for _ in range(paragraphs)]
    return "\n\n".join([title, *body]) + "\n"


def thread(key: str, comments: int, depth: int) -> str:
    """An article and a comment thread ("Name says" headers); reply i is nested i % depth deep."""
    rng = random.Random(key + "/thread")
    lines = [article(key), "", f"{comments} Responses", ""]
    for number in range(comments):
        pad = "  " * (number % depth)
        lines += [f"{pad}• reader{number} says", "", f"{pad}  {sentence(rng)}", ""]
    return "\n".join(lines) + "\n"


def text(content: str, encoding: str = "utf-8") -> bytes:
    return content.encode(encoding)


# --- the catalogue -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One bad input and what must become of it."""

    kind: str
    name: str  # file name in the input folder
    content: bytes | None  # None: built by the test (links)
    status: str  # fate status
    reason: str | None = None  # fate reason
    encoding: str | None = None
    articles: int = 0  # rows in articles.jsonl from this file
    comments: int = 0  # rows in comments.jsonl from this file
    clean_reasons: frozenset[str] = field(default_factory=frozenset)  # clean spans that must appear
    extra: dict[str, Any] = field(default_factory=dict)  # more fate fields that must match


CR_ONLY = article("cr-only").replace("\n", "\r")
MIXED = article("mixed-endings").replace("\n\n", "\r\n\r\n", 2).replace("\n\n", "\r\r", 2)
CONTROL = article("control").replace(" the ", " the\x07 ", 3).replace(" of ", " of\x1b ", 2)
BOILERPLATE_ONLY = "\n".join(["Home", "News", "Sport", "Share on Facebook", "Share on Twitter", "Subscribe",
                              "Privacy policy", "Terms of use", "Cookie settings", "© 2024 Example Media"]) + "\n"
CP1252 = article("cp1252").replace("The ", "The café’s “new” ", 1) + "Price: 5 € – “fine”…\n"
LATIN1 = article("latin-1").replace("The ", "The naïve façade of Señor Müller’s ", 1).replace("’", "'")
BAD_UTF8 = text(article("bad-utf8").replace("The ", "The café in Kraków and Gdańsk, ", 1)).replace(b" that ", b" th\xffat ", 1)

CASES = [
    Case("empty file", "empty.txt", b"", "dropped", "empty"),
    Case("whitespace only", "blank.txt", b"  \n\t\n \r\n   ", "dropped", "empty"),
    Case("binary (NUL bytes)", "image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4,
         "quarantined", "binary"),
    Case("UTF-16 with BOM", "utf16.txt", codecs.BOM_UTF16_LE + text(article("utf-16"), "utf-16-le"),
         "included", None, "utf-16", articles=1),
    Case("cp1252", "cp1252.txt", text(CP1252, "cp1252"), "included", None, "cp1252", articles=1),
    Case("latin-1", "latin1.txt", text(LATIN1, "latin-1"), "included", None, "cp1252", articles=1),
    Case("UTF-8 with BOM", "utf8bom.txt", codecs.BOM_UTF8 + text(article("utf-8-bom")),
         "included", None, "utf-8-sig", articles=1),
    Case("invalid UTF-8 byte", "badbyte.txt", BAD_UTF8, "included", None, "utf-8", articles=1,
         extra={"replaced_bytes": 1}),
    Case("too large", "huge.txt", text(article("too-large") * 160), "quarantined", "too_large"),
    Case("single huge line", "oneline.txt", b"word " * 5000, "dropped", "line_too_long",
         extra={"message": "line 1 has 25000 characters > ingest.max_line_chars=20000"}),
    Case("symlink outside the input", "link-out.txt", None, "dropped", "symlink_outside"),
    Case("name with spaces", "a page with spaces.txt", text(article("spaces")), "included", articles=1,
         encoding="utf-8"),
    Case("Unicode name", "ünïcödé 名前.txt", text(article("unicode-name")), "included", articles=1, encoding="utf-8"),
    Case("leading dash", "-rf.txt", text(article("dash")), "included", articles=1, encoding="utf-8"),
    Case("CR line endings only", "cr.txt", text(CR_ONLY), "included", articles=1, encoding="utf-8",
         clean_reasons=frozenset({"line_ending"})),
    Case("mixed line endings", "mixed.txt", text(MIXED), "included", articles=1, encoding="utf-8",
         clean_reasons=frozenset({"line_ending"})),
    Case("control characters", "control.txt", text(CONTROL), "included", articles=1, encoding="utf-8",
         clean_reasons=frozenset({"control_char"})),
    Case("deeply nested thread", "deep.txt", text(thread("deep", 300, 150)), "included", articles=1,
         comments=300, encoding="utf-8"),
    Case("extremely long thread", "long.txt", text(thread("long", 1500, 3)), "included", articles=1,
         comments=1500, encoding="utf-8"),
    Case("only boilerplate", "menu.txt", text(BOILERPLATE_ONLY), "included", encoding="utf-8"),
    Case("duplicate of another file", "zz-copy-of-plain.txt", text(article("plain")), "included",
         encoding="utf-8"),
    # Three copies of one page (with the link below): dedup keeps one, by its keep policy.
    Case("the original of the duplicate", "plain.txt", text(article("plain")), "included", encoding="utf-8"),
    Case("symlink inside the input", "link-in.txt", None, "included", articles=1, encoding="utf-8"),
]


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("bad")
    inp, out = root / "input", root / "out"
    inp.mkdir()
    (root / "secret.txt").write_text(article("outside"), encoding="utf-8")
    for case in CASES:
        if case.content is not None:
            (inp / case.name).write_bytes(case.content)
    os.symlink(root / "secret.txt", inp / "link-out.txt")
    os.symlink("plain.txt", inp / "link-in.txt")
    result = run(load_config(REPO / "configs" / "default.yaml", LIMITS), inp, out, progress=False)
    assert result.corpus_dir is not None
    corpus = result.corpus_dir
    manifest = json.loads((corpus / "manifest.json").read_text(encoding="utf-8"))
    clean_spans: dict[str, set[str]] = {}
    for entry in read_jsonl(out / "stages" / "02-clean" / "spans.jsonl"):
        clean_spans[entry["id"]] = {span["reason"] for span in entry.get("spans", [])}
    return {
        "fates": {fate["source"]: fate for fate in manifest["inputs"]},
        "articles": Counter(row["source"] for row in read_jsonl(corpus / "articles.jsonl")),
        "comments": Counter(row["source"] for row in read_jsonl(corpus / "comments.jsonl")),
        "clean": clean_spans,
        "out": out,
        "corpus": corpus,
    }


@pytest.mark.parametrize("case", CASES, ids=[case.kind for case in CASES])
def test_catalogue(outcome: dict[str, Any], case: Case) -> None:
    fate = outcome["fates"][case.name]
    assert (fate["status"], fate.get("reason")) == (case.status, case.reason), fate
    if case.encoding is not None:
        assert fate.get("encoding") == case.encoding
    for key, value in case.extra.items():
        assert fate.get(key) == value
    assert outcome["articles"][case.name] == case.articles
    assert outcome["comments"][case.name] == case.comments
    page = case.name[: -len(".txt")]
    assert case.clean_reasons <= outcome["clean"].get(page, set())


def test_one_run_accounts_for_every_file_without_a_crash(outcome: dict[str, Any]) -> None:
    assert sorted(outcome["fates"]) == sorted(case.name for case in CASES)
    for stage in sorted((outcome["out"] / "stages").iterdir()):
        quarantine = stage / "quarantine.jsonl"
        assert not quarantine.exists() or not quarantine.read_text(encoding="utf-8"), stage.name
    assert verify(outcome["corpus"]) == []


def test_catalogue_covers_twelve_kinds() -> None:
    assert len({case.kind for case in CASES}) >= 12


# --- a full disk --------------------------------------------------------------------------------


def small_input(root: Path) -> Path:
    inp = root / "input"
    inp.mkdir()
    for key in ("one", "two", "three"):
        (inp / f"{key}.txt").write_text(article(key), encoding="utf-8")
    return inp


def fill_disk_at(monkeypatch: pytest.MonkeyPatch, file_name: str, code: int = errno.ENOSPC) -> None:
    """The next write to a file called `file_name`, or to a worker's part of it (export's
    workers write `.part-N-articles.jsonl`, then the parts are joined), fails as a full
    disk would."""
    real = pipeline_io._write

    def write(handle: Any, data: str, path: Path) -> None:
        if path.name == file_name or (path.name.startswith(".part-") and path.name.endswith("-" + file_name)):
            raise OSError(code, os.strerror(code))
        real(handle, data, path)

    monkeypatch.setattr(pipeline_io, "_write", write)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".lock"}


# (file that fails, error, message, folder that must be as before: a failed export leaves the
# stage folders the run completed, which are correct, and the previous corpus version)
@pytest.mark.parametrize(("file_name", "code", "words", "intact"), [
    ("records.jsonl", errno.ENOSPC, "disk full", "."),  # a stage output
    ("articles.jsonl", errno.ENOSPC, "disk full", "corpus"),  # the corpus version (export)
    ("manifest.json", errno.EDQUOT, "disk quota exceeded", "corpus"),  # the version's last file
])
def test_full_disk_keeps_previous_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str], file_name: str, code: int,
                                          words: str, intact: str) -> None:
    inp, out = small_input(tmp_path), tmp_path / "out"
    args = ["run", "--input", str(inp), "--output", str(out), "--quiet",
            "--config", str(REPO / "configs" / "default.yaml")]
    assert main(args) == 0
    before = snapshot(out / intact)
    (inp / "four.txt").write_text(article("four"), encoding="utf-8")  # the next run has work to do
    fill_disk_at(monkeypatch, file_name, code)
    assert main([*args, "--force"]) != 0
    error = capsys.readouterr().err
    assert f"error: {words} while writing " in error and file_name in error, error
    assert snapshot(out / intact) == before  # previous version (and stage outputs) intact
    assert all((stage / "stage.json").is_file() for stage in (out / "stages").iterdir())
    leftovers = [p.name for p in out.rglob("*") if p.name.startswith((".tmp-", ".old-")) or p.name.endswith(".tmp")]
    assert leftovers == []
    version = (out / "corpus" / "LATEST").read_text(encoding="utf-8").strip()
    assert verify(out / "corpus" / version) == []


def test_other_write_errors_are_not_called_disk_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inp, out = small_input(tmp_path), tmp_path / "out"
    fill_disk_at(monkeypatch, "records.jsonl", errno.EIO)
    with pytest.raises(OSError) as err:
        run(load_config(REPO / "configs" / "default.yaml"), inp, out, progress=False)
    assert not isinstance(err.value, DiskFullError) and err.value.errno == errno.EIO
    assert not list((out / "stages").glob(".tmp-*"))


def test_disk_full_is_a_pipeline_error_naming_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fill_disk_at(monkeypatch, "x.json")
    with pytest.raises(DiskFullError, match=r"disk full while writing .*x\.json"):
        pipeline_io.write_json(tmp_path / "x.json", {"a": 1})
    assert list(tmp_path.iterdir()) == []  # the temp file is gone, nothing half-written


@pytest.mark.parametrize(("text", "expected"), [
    ("", (1, 0)), ("abc", (1, 3)), ("a\nbbb\ncc", (2, 3)), ("a\r\nbbbb\rcc\n", (2, 4)),
    ("aa\r\r\nbbbb", (3, 4)), ("x" * 10 + "\n" + "y" * 10, (1, 10)),
])
def test_longest_line_counts_cr_lf_and_crlf(text: str, expected: tuple[int, int]) -> None:
    assert ingest.longest_line(text) == expected


def test_deep_indentation_is_cleaned_in_linear_time() -> None:
    """50 replies indented 20,000 spaces deep (1 MB): a trailing-space scan that restarted at
    every space of the indentation took minutes; it is one pass now."""
    from pipeline.stages import clean

    text = "".join(" " * 20_000 + f"• reader{n} says  \n" for n in range(50))
    record = {"id": "deep", "source": "deep.txt", "text": text}
    started = time.process_time()
    outcome = clean.process(record, clean.Config())
    assert time.process_time() - started < 5
    assert outcome.records[0]["text"].count(" " * 20_000 + "•") == 50
    assert {span.reason for spans in outcome.all_passes() for span in spans} == {"trailing_space"}
