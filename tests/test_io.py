"""pipeline.io's YAML loader: libyaml's where PyYAML has it, with the pure-Python loader's data;
its JSON: orjson's speed with `json`'s bytes and values, on every edge case where the two differ."""

from __future__ import annotations

import collections
import datetime
import enum
import errno
import json
import math
import os
import threading
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import corpus, executors, io
from pipeline.errors import DiskFullError
from pipeline.executors import Task
from pipeline.io import YAML_LOADER, dump_line, dumps, load_yaml

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted((REPO / "configs").rglob("*.yaml"))


def test_every_shipped_config_is_found() -> None:
    assert len(SHIPPED) >= 8 and REPO / "configs" / "default.yaml" in SHIPPED


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.relative_to(REPO).as_posix())
def test_shipped_yaml_loads_to_the_same_data_with_either_loader(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert load_yaml(text) == yaml.load(text, Loader=yaml.SafeLoader)  # noqa: S506 - a safe loader


def test_edge_cases_load_as_the_safe_loader_does() -> None:
    text = ('a: "caf\\u00e9 \\t"\nb: [1, 2.5, .inf, null, ~, yes, no, on, 0x1F, 0o17, 1_000]\n'
            "c: 2016-01-13\nd: |\n  two\n  lines\ne: 'it''s'\nf: !!str 12\n")
    assert load_yaml(text) == yaml.load(text, Loader=yaml.SafeLoader)  # noqa: S506


def test_errors_are_yaml_errors_with_a_line() -> None:
    with pytest.raises(yaml.MarkedYAMLError) as caught:
        load_yaml("a: 1\nb: [unclosed\n")
    assert caught.value.problem_mark is not None and caught.value.problem_mark.line >= 1


def test_no_python_objects() -> None:
    with pytest.raises(yaml.YAMLError):
        load_yaml("!!python/object/apply:os.system ['true']")
    assert YAML_LOADER in (getattr(yaml, "CSafeLoader", None), yaml.SafeLoader)


# --- JSON: orjson's speed, `json`'s bytes and values (pipeline/io.py) ---

class Text(str):
    pass


class Number(int):
    pass


class Reordered(dict):  # `json` writes a dict subclass through its items()
    def items(self):  # type: ignore[override]
        return reversed(list(super().items()))


class Colour(enum.Enum):
    RED = 1


class Level(enum.IntEnum):
    HIGH = 3


class Tag(enum.StrEnum):
    NEWS = "news"


Pair = collections.namedtuple("Pair", "a b")

ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
SURROGATES = st.text(st.sampled_from(["\ud800", "\udcff", "a", "é", "\x00", "\u2028", '"', "\\", "😀"]))
SCALARS = (st.none() | st.booleans() | st.integers() | st.floats() | st.text() | SURROGATES
           | st.sampled_from([1e-5, -9.99e-5, 1e-7, 1e-10, 1e16, 5e-324, -0.0, 2**63, 2**64, -2**63 - 1,
                              Text("s"), Number(7), Level.HIGH, Tag.NEWS]))
KEYS = st.text() | SURROGATES | st.integers() | st.floats() | st.booleans() | st.none() | st.just(Text("k"))
VALUES = st.recursive(SCALARS, lambda inner: (st.lists(inner, max_size=5) | st.tuples(inner, inner)
                                              | st.dictionaries(KEYS, inner, max_size=5)
                                              | st.dictionaries(st.text(), inner, max_size=3).map(Reordered)
                                              | st.builds(Pair, inner, inner)), max_leaves=20)


def outcome(function: Any, *args: Any) -> tuple[str, Any]:
    """What a call returns, or the type and message of what it raises (NaN compared by repr)."""
    try:
        return "value", repr(function(*args))
    except Exception as err:  # noqa: BLE001 - the error is the outcome compared
        return type(err).__name__, str(err)


EDGE_CASES = [1e-5, -1e-5, 9.99e-5, 1e-6, 1.5e-9, 1e-4, 1e16, 1.5e300, float("nan"), float("inf"), -float("inf"),
              [{"a": (1, [float("nan")])}], {"x": [1e-7]}, "\ud800", {"\udc80": 1}, {"a": "b\udcffc"},
              2**64, -2**63 - 1, 2**64 - 1, {1: 2}, {True: 1, None: 2, 1.5: 3, 1e-5: 4}, Text("s"),
              {Text("k"): 1}, Number(3), Reordered(a=1, b=2), Level.HIGH, Tag.NEWS, Colour.RED,
              uuid.UUID(int=1), (1, "a"), Pair(1, 2), [datetime.date(2026, 11, 21)], {"a": {1, 2}}]


@pytest.mark.parametrize("value", EDGE_CASES, ids=repr)
def test_dumps_writes_what_json_writes_on_each_edge_case(value: Any) -> None:
    assert outcome(io.dumps, value) == outcome(ENCODER.encode, value)
    assert outcome(io.dump_line, value) == outcome(lambda v: (ENCODER.encode(v) + "\n").encode("utf-8"), value)


def test_dumps_writes_what_json_writes_on_recursive_and_deep_values() -> None:
    loop: list[Any] = []
    loop.append(loop)
    deep: list[Any] = []
    for _ in range(300):  # orjson stops at 255 levels
        deep = [deep, 1e-5]
    for value in (loop, deep):
        assert outcome(io.dumps, value) == outcome(ENCODER.encode, value)


@settings(max_examples=600, deadline=None)
@given(VALUES)
def test_dumps_is_json_on_generated_values(value: Any) -> None:
    assert outcome(io.dumps, value) == outcome(ENCODER.encode, value)
    assert outcome(io.dump_line, value) == outcome(lambda v: (ENCODER.encode(v) + "\n").encode("utf-8"), value)


@settings(max_examples=300, deadline=None)
@given(st.floats() | st.floats(min_value=-1e-3, max_value=1e-3) | st.floats(min_value=1e14, max_value=1e18))
def test_dumps_writes_every_float_as_json_does(number: float) -> None:
    assert io.dumps([number, {"f": number}]) == ENCODER.encode([number, {"f": number}])


LOAD_CASES = ["NaN", "[Infinity,-Infinity]", "1e400", "[-1e400]", "1e-400", "123456789012345678901234567890",
              "-9223372036854775809", "18446744073709551615", "18446744073709551616", '"\\ud800"', '"\\udc80x"',
              '{"a":1,"a":2,"b":[1.5,-0.0,-0]}', "\ufeff{}", "[01]", "[1.]", '"\x01"', "1 x", "", " \t\r\n[]\n",
              "0.1000000000000000055511151231257827021181583404541015625", "2.4703282292062328e-324",
              # No 19 digits in a row: no walk (`LONG_NUMBER`); 19 digits in a string: the walk.
              "[1e19,-1E19,9.3e18,922337203685477580.7]", '{"id":"1234567890123456789","x":18446744073709551616}',
              '{"id":"1234567890123456789","x":1.5}', "9223372036854775807", "-9223372036854775808",
              '["\u0031234567890123456789",1e300]']


@pytest.mark.parametrize("text", LOAD_CASES, ids=repr)
def test_loads_reads_what_json_reads_on_each_edge_case(text: str) -> None:
    assert outcome(io.loads, text) == outcome(json.loads, text)
    for data in (text.encode("utf-8"), text.encode("utf-8-sig"), text.encode("utf-16"), text.encode("utf-8") + b"\xff"):
        assert outcome(io.loads, data) == outcome(json.loads, data)


@settings(max_examples=600, deadline=None)
@given(VALUES, st.booleans())
def test_loads_is_json_on_generated_texts(value: Any, ascii_only: bool) -> None:
    try:
        text = json.dumps(value, ensure_ascii=ascii_only)
    except (TypeError, ValueError):
        return
    assert outcome(io.loads, text) == outcome(json.loads, text)
    data = text.encode("utf-8", "surrogatepass")
    assert outcome(io.loads, data) == outcome(json.loads, data)


@settings(max_examples=400, deadline=None)
@given(st.text(st.sampled_from('[]{}":, 0123456789.eE+-trufalsnNIiy\\u\t\n')))
def test_loads_is_json_on_generated_near_json(text: str) -> None:
    assert outcome(io.loads, text) == outcome(json.loads, text)


def test_a_malformed_line_still_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    path.write_text('{"id":"a","score":NaN}\n\n{"id":"b",}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"records\.jsonl:3: not valid JSON \(Expecting property name"):
        list(io.read_jsonl(path))
    assert math.isnan(next(io.read_jsonl(path))["score"])
    task = Task(stage="clean", phase="process", config=None, source=str(path))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"records\.jsonl:7: not valid JSON \(Expecting property name"):
        executors._parse(task, 7, b'{"id":"b",}')
    with pytest.raises(ValueError, match=r"records\.jsonl:3: not valid JSON \(Expecting property name"):
        corpus._parse(b'{"id":"b",}\n', path, len('{"id":"a","score":NaN}\n\n'))


def test_jsonl_writer_writes_records_and_lines_alike(tmp_path: Path) -> None:
    records = [{"id": "a", "text": "café\n\"x\"", "score": 1e-5}, {"id": "b", "n": [1, 2.5, None]}]
    one, two = io.JsonlWriter(tmp_path / "one.jsonl"), io.JsonlWriter(tmp_path / "two.jsonl")
    one.write_all(records)
    two.write_lines(io.dumps(records[0]) + "\n", 1)
    two.write_lines(io.dump_line(records[1]), 1)
    assert one.close() == two.close() == io.sha256_file(tmp_path / "one.jsonl")
    expected = "".join(ENCODER.encode(record) + "\n" for record in records).encode("utf-8")
    assert (tmp_path / "one.jsonl").read_bytes() == (tmp_path / "two.jsonl").read_bytes() == expected
    assert one.count == two.count == 2


# --- StagedWriter: files written by threads ------------------------------------------------------


def full_disk_at(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Writing a file called `name` fails as a full disk would (in any thread or process)."""
    real = io._write

    def write(handle: Any, data: Any, path: Path) -> None:
        if path.name == name:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(handle, data, path)

    monkeypatch.setattr(io, "_write", write)


@pytest.mark.parametrize("threads", [1, 3])
def test_the_staged_writer_writes_what_a_serial_write_writes(tmp_path: Path, threads: int) -> None:
    texts = {f"sub/{n:03d}.html": f"<p>page {n} é\n" * (n * 97) for n in range(60)}
    for name, text in texts.items():
        io.write_text_staged(tmp_path / "serial" / name, text)
    with io.StagedWriter(threads, queued=2) as writer:
        for name, text in texts.items():
            writer.write(tmp_path / "threads" / name, text)
    serial = {p.relative_to(tmp_path / "serial"): p.read_bytes() for p in (tmp_path / "serial").rglob("*.html")}
    threaded = {p.relative_to(tmp_path / "threads"): p.read_bytes() for p in (tmp_path / "threads").rglob("*.html")}
    assert len(threaded) == 60 and threaded == serial


def test_a_full_disk_in_the_staged_writer_is_raised_naming_the_file(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    full_disk_at(monkeypatch, "007.html")
    with pytest.raises(DiskFullError, match=r"disk full while writing .*007\.html"):
        with io.StagedWriter(queued=1) as writer:
            for n in range(10):
                writer.write(tmp_path / f"{n:03d}.html", "text")
    assert {f"{n:03d}.html" for n in range(7)} <= {p.name for p in tmp_path.iterdir()}  # those before it
    assert all(p.read_text(encoding="utf-8") == "text" for p in tmp_path.iterdir() if p.name != "007.html")


def test_the_staged_writer_waits_for_its_threads_when_the_caller_fails(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="render failed"):
        with io.StagedWriter() as writer:
            writer.write(tmp_path / "a.html", "text")
            raise RuntimeError("render failed")
    assert not [thread for thread in threading.enumerate() if thread.name.startswith("staged-writer")]


def test_a_line_kept_holds_its_own_size_not_the_encoders_buffer() -> None:
    """orjson's bytes sit in its whole working buffer (4 kB for a short line): `dump_line`
    copies them, so lines kept until written (a worker's results) hold only themselves."""
    record = {"id": "c1", "kind": "comment", "text": "A short reader comment."}
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        lines = [dump_line(record) for _ in range(200)]
        held = (tracemalloc.get_traced_memory()[0] - before) / len(lines)
    finally:
        tracemalloc.stop()
    assert lines[0] == (dumps(record) + "\n").encode("utf-8")
    assert held < 4 * len(lines[0]), f"{held:.0f} bytes held for a {len(lines[0])}-byte line"


def test_joined_pieces_are_bounded_and_add_up_to_the_parts() -> None:
    parts = [bytes([65 + n % 26]) * (n % 7 + 1) for n in range(300)] + [b"x" * 50, b"", b"yz"]
    pieces = list(io.joined(parts, limit=20))
    assert b"".join(pieces) == b"".join(parts)
    assert all(len(piece) <= 20 for piece in pieces if piece != b"x" * 50)  # a longer part goes alone
    assert len(pieces) < len(parts) // 3  # still few writes
    long_part = b"y" * 100
    assert next(io.joined([long_part], limit=20)) is long_part  # not copied


def test_many_lines_are_written_in_bounded_pieces_with_the_same_bytes_and_hash(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A chunk's output is not joined whole (a transient copy of it, issue #8): a write per
    WRITE_BYTES, and the file and its hash as one write would make them."""
    lines = [dump_line({"id": str(n), "text": "word " * (300 + n % 50)}) for n in range(2000)]  # 3 MB
    whole = io.JsonlWriter(tmp_path / "whole.jsonl")
    whole.write_lines(b"".join(lines), len(lines))
    sizes: list[int] = []
    write = io._write
    monkeypatch.setattr(io, "_write", lambda handle, data, path: (sizes.append(len(data)), write(handle, data, path)))
    parts = io.JsonlWriter(tmp_path / "parts.jsonl")
    parts.write_parts(lines, len(lines))
    assert parts.close() == whole.close()
    assert (tmp_path / "parts.jsonl").read_bytes() == (tmp_path / "whole.jsonl").read_bytes()
    assert parts.count == whole.count == len(lines)
    assert len(sizes) > 1 and max(sizes) <= io.WRITE_BYTES
