import codecs
from pathlib import Path

import pytest

from pipeline.stages import ingest

TEXT = "Syria’s second city – café\n"


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (TEXT.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + TEXT.encode("utf-8"), "utf-8-sig"),
        (codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"), "utf-16"),
        (TEXT.encode("cp1252"), "cp1252"),
    ],
)
def test_decodes_common_encodings(tmp_path: Path, data: bytes, encoding: str) -> None:
    (tmp_path / "page.txt").write_bytes(data)
    record, fate = ingest.read_page(tmp_path / "page.txt", tmp_path, ingest.Config())
    assert record is not None and record["text"] == TEXT
    assert fate.status == "included" and fate.encoding == encoding


def test_ids_come_from_relative_paths_and_sites_from_folders(tmp_path: Path) -> None:
    (tmp_path / "site-a").mkdir()
    (tmp_path / "site-a" / "page 1.txt").write_text("Some text here.", encoding="utf-8")
    (tmp_path / "top.txt").write_text("More text.", encoding="utf-8")
    (tmp_path / "notes.md").write_text("not a page", encoding="utf-8")
    paths = list(ingest.find_inputs(tmp_path, ingest.Config()))
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == ["site-a/page 1.txt", "top.txt"]
    record, _ = ingest.read_page(paths[0], tmp_path, ingest.Config())
    assert record is not None
    assert (record["id"], record["site_key"]) == ("site-a/page 1", "site-a")


@pytest.mark.parametrize(
    ("data", "status", "reason"),
    [
        (b"", "dropped", "empty"),
        (b"  \n\n ", "dropped", "empty"),
        (b"\x00\x01PNG\x00\x00binary", "quarantined", "binary"),
    ],
)
def test_bad_files_get_a_fate(tmp_path: Path, data: bytes, status: str, reason: str) -> None:
    (tmp_path / "bad.txt").write_bytes(data)
    record, fate = ingest.read_page(tmp_path / "bad.txt", tmp_path, ingest.Config())
    assert record is None
    assert (fate.status, fate.reason) == (status, reason)


def test_too_large_is_quarantined_without_reading(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_text("x" * 2000, encoding="utf-8")
    record, fate = ingest.read_page(tmp_path / "big.txt", tmp_path, ingest.Config(max_bytes=1000))
    assert record is None and fate.reason == "too_large"


def test_symlink_outside_input_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("secret", encoding="utf-8")
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "link.txt").symlink_to(outside)
    record, fate = ingest.read_page(inp / "link.txt", inp, ingest.Config())
    assert record is None and fate.reason == "symlink_outside"


def test_french_cp1252_is_not_read_as_central_european(tmp_path: Path) -> None:
    text = "Caf\xe9 cr\xe8me \u2013 na\xefve text for the article body that goes on.\n"
    (tmp_path / "p.txt").write_bytes(text.encode("cp1252"))
    record, fate = ingest.read_page(tmp_path / "p.txt", tmp_path, ingest.Config())
    assert record is not None and record["text"] == text and fate.encoding == "cp1252"


def test_utf8_with_a_few_bad_bytes_is_replaced_and_counted(tmp_path: Path) -> None:
    data = "Syria’s second city – café, “quoted”. ".encode("utf-8") + b"\xff\xfe" + b" end.\n"
    (tmp_path / "p.txt").write_bytes(data)
    record, fate = ingest.read_page(tmp_path / "p.txt", tmp_path, ingest.Config())
    assert record is not None and fate.encoding == "utf-8"
    assert record["replaced_bytes"] == 2 and fate.replaced_bytes == 2
    assert record["text"].startswith("Syria’s second city – café") and "\ufffd\ufffd end." in record["text"]


def test_control_bytes_are_counted_against_the_binary_ratio() -> None:
    config = ingest.Config()
    # Tab, newline, vertical tab, form feed and carriage return are text; other controls are not.
    assert not ingest.looks_binary(b"a\tb\nc\x0bd\x0ce\rf" * 100, config)
    limit = int(config.binary_ratio * 1000)
    assert ingest.looks_binary(b"\x01" * (limit + 10) + b"a" * (1000 - limit - 10), config)
    assert not ingest.looks_binary(b"\x1b" * (limit - 10) + b"a" * (1000 - limit + 10), config)


def test_inputs_come_in_the_order_of_their_relative_paths(tmp_path: Path) -> None:
    """"-" and "." sort before "/": a folder's files are not simply listed before the next folder's."""
    names = ["a/x.txt", "a-b/y.txt", "a.txt", "a b/z.txt", "a/b/c.txt", "a/b.txt", "a/b-c.txt", "a0.txt",
             "é/x.txt", "Z.txt", ".hidden/x.txt", "a/.x.txt", "notes.md"]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("text", encoding="utf-8")
    (tmp_path / "linked").symlink_to(tmp_path / "a", target_is_directory=True)
    (tmp_path / "link.txt").symlink_to(tmp_path / "a.txt")
    found = [p.relative_to(tmp_path).as_posix() for p in ingest.find_inputs(tmp_path, ingest.Config())]
    expected = [n for n in names if n.endswith(".txt") and "/." not in f"/{n}"] + ["link.txt"]
    assert found == sorted(expected)


def test_inputs_are_listed_a_folder_at_a_time(tmp_path: Path) -> None:
    """The paths stream: a folder is listed when the walk reaches it, not all before the first page."""
    for site in ("a", "b"):
        (tmp_path / site).mkdir()
        (tmp_path / site / "1.txt").write_text("text", encoding="utf-8")
    found = ingest.find_inputs(tmp_path, ingest.Config())
    assert next(found) == tmp_path / "a" / "1.txt"
    (tmp_path / "b" / "2.txt").write_text("added after the walk started", encoding="utf-8")
    assert list(found) == [tmp_path / "b" / "1.txt", tmp_path / "b" / "2.txt"]
