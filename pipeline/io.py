"""File I/O with the guarantees the pipeline relies on: atomic, deterministic, hashed."""

from __future__ import annotations

import errno
import gc
import hashlib
import json
import math
import os
import queue
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, AnyStr

import orjson
import yaml

from pipeline.errors import DiskFullError

CHUNK = 1 << 20
WRITE_BYTES = 1 << 20
"""Bytes joined into one write at most (`joined`; a longer part goes alone). The runner joined
a chunk's results whole, one write per file: a transient copy of the chunk's output on top of
the chunks in flight (the split stage at 2 workers, 1,024 pages a chunk: ~18 MB of records,
then ~23 MB of cache entries). 1 MB pieces keep that copy small and the writes few (~20 a chunk
where there was one); joining 1,024 parts of 17.6 kB in pieces took 1.7 ms of CPU, whole 2.4 ms.
With the fates read after the stages, the 200 MB bench's split stage then peaked at 193 MB, not 233."""
DISK_FULL = {errno.ENOSPC: "disk full", errno.EDQUOT: "disk quota exceeded"}


def _write(handle: IO[AnyStr], data: AnyStr, path: Path) -> None:
    """The one place output text goes to a file, `path` (tests inject a full disk here)."""
    handle.write(data)


def disk_full(err: OSError, path: Path) -> DiskFullError | None:
    """The clear error for a full disk or quota while writing `path`; None for other errors."""
    what = DISK_FULL.get(err.errno or 0)
    if what is None:
        return None
    return DiskFullError(f"{what} while writing {path}; free space and run again "
                         "(outputs already in place are unchanged)")


YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader where PyYAML was built with it (its wheels are), else the pure-Python one:
the same constructors, so the same data (tests/test_io.py loads every shipped YAML file with both),
~10x faster on our configs (all of configs/: 230 -> 24 ms of CPU at every start)."""


def load_yaml(text: str) -> Any:
    """`yaml.safe_load` with `YAML_LOADER`; errors are the same `yaml.YAMLError`s, with marks."""
    return yaml.load(text, Loader=YAML_LOADER)  # noqa: S506 - a safe loader


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # one, not one per call

# JSON goes through orjson, but the bytes are `_ENCODER`'s and the values `json.loads`'s:
# where the two differ, `json` does the work. Writing, orjson raises on a lone surrogate,
# an int beyond 64 bits, a key that is not a str, and a value 255 deep or recursive, which
# `json` writes (or refuses with its own error); once it succeeded, a walk of the value
# (`_plain`) finds what it writes otherwise: NaN and infinities (as null), floats below
# `SMALLEST_ALIKE_FLOAT`, and every type but the plain JSON ones (subclasses of str, int,
# dict and list, enum members, UUIDs...). Reading, orjson refuses NaN, Infinity, 1e400,
# an escaped lone surrogate, a UTF-8 BOM and UTF-16/32 bytes, which `json` reads, and
# reads an integer beyond 64 bits as a float, which the walk finds where the text has one
# (`LONG_NUMBER`). On a sample of the 5 MB bench's records, walk included, `dumps` costs
# 38% of `json`'s instructions and `loads` 76% (orjson alone: 11% and 38%), before
# `LONG_NUMBER` spared most records the walk. tests/test_io.py checks both against `json`
# on each of these cases and on generated values.
SMALLEST_ALIKE_FLOAT = 1e-4
"""Below it (0 aside) `json` writes a float with a two-digit exponent, 1e-05, orjson 3.13
as 0.00001 or 1e-6; from it up they agree (tried: 2M random bit patterns, 1, 1.5 and
9.999 in every decade from 1e-30 to 1e30; tests/test_io.py draws more)."""
LARGEST_EXACT_INT = float(2**63)
"""orjson reads an integer literal below -2**63 or above 2**64-1 as a float: a float this
large is read again by `json` (an int for such a literal, the same float for 1e19)."""
LONG_NUMBER = b"0" * 19
"""Such a literal has 19 digits or more (2**63 has 19): where no 19 digits follow each other
(in `_DIGITS`' translation), no number is one and `loads` skips the walk, which costs about
2.5 times the search on our records (a 1.8 kB record: 52k instructions against 21k)."""
_DIGITS = bytes(48 if 48 <= code <= 57 else 32 for code in range(256))  # b"0" for every digit, b" " else
_PLAIN = frozenset({str, int, bool, type(None)})
_JSON_TYPES = _PLAIN | {float, dict, list, tuple}


def _plain(value: Any, float_alike: Callable[[float], bool]) -> bool:
    """Whether `value` holds only the JSON types (exactly those) and floats that pass
    `float_alike`. Walked a depth at a time with C loops (value by value in Python costs
    twice as much): the set of a level's types, then the items of the level's containers,
    which is what `gc.get_referents` returns for dicts, lists and tuples (and nothing for
    scalars); tests/test_io.py fails if a Python version changes that."""
    level = [value]
    while level:
        kinds = set(map(type, level))
        if kinds <= _PLAIN:
            return True
        if not kinds <= _JSON_TYPES:
            return False
        if float in kinds and not all(float_alike(item) for item in level if type(item) is float):
            return False
        level = gc.get_referents(*level)
    return True


def _written_alike(number: float) -> bool:
    return SMALLEST_ALIKE_FLOAT <= abs(number) < math.inf or number == 0


def _read_alike(number: float) -> bool:
    return abs(number) < LARGEST_EXACT_INT


def _orjson(record: Any, option: int) -> bytes | None:
    """orjson's bytes for `record`, None where they would not be `_ENCODER`'s."""
    try:
        data = orjson.dumps(record, option=option)
    except orjson.JSONEncodeError:
        return None
    return data if _plain(record, _written_alike) else None


def dumps(record: Any) -> str:
    """One canonical JSON line: sorted keys would reorder fields users read, so we keep
    insertion order (stages build records in a fixed order) and fix the separators."""
    data = _orjson(record, 0)
    return _ENCODER.encode(record) if data is None else data.decode("utf-8")


def dump_line(record: Any) -> bytes:
    """`dumps(record)` and a newline, in UTF-8: what a JSONL file gets, without a round
    trip through str. The bytes are a copy of orjson's, which sit in its whole working
    buffer (measured with tracemalloc, orjson 3.13: a 269-byte line holds 4 kB, a 24 kB
    line 256 kB): a line kept, as a worker's results and export's rows are until written,
    would hold that much memory (a 20 MB run's peak RSS +100 MB, 1 worker); the copy costs
    a memcpy."""
    data = _orjson(record, orjson.OPT_APPEND_NEWLINE)
    return (_ENCODER.encode(record) + "\n").encode("utf-8") if data is None else bytes(memoryview(data))


def loads(data: bytes | str) -> Any:
    """`json.loads(data)`: the same value, or the same error (a `json.JSONDecodeError` with
    json's message, a UnicodeDecodeError for bytes that are not text)."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)
    # orjson read it, so a str `data` is valid UTF-8 (no lone surrogate) and encodes: once
    # orjson has read a str, its UTF-8 is kept with it, and `encode` copies that.
    utf8 = data.encode("utf-8") if isinstance(data, str) else data
    if utf8.translate(_DIGITS).find(LONG_NUMBER) < 0 or _plain(value, _read_alike):
        return value
    return json.loads(data)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Yield records; a malformed line raises ValueError naming file and line."""
    with path.open("r", encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                yield loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{number}: not valid JSON ({err.msg})") from err


def joined(parts: Iterable[bytes], limit: int = WRITE_BYTES) -> Iterator[bytes]:
    """`parts` concatenated, in pieces of at most `limit` bytes unless one part is longer (it is
    then a piece of its own, not copied): many lines written with few calls and a bounded buffer."""
    batch: list[bytes] = []
    size = 0
    for part in parts:
        if batch and size + len(part) > limit:
            yield b"".join(batch)
            batch, size = [], 0
        batch.append(part)
        size += len(part)
    if batch:
        yield b"".join(batch)


class JsonlWriter:
    """Writes records one per line and hashes what it wrote; the file is opened in binary,
    so each line is encoded once, for the file and the hash alike.

    A full disk raises DiskFullError naming the file, after closing it; the caller writes
    into a temp folder and removes it, so nothing half-written is left in place."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._digest = hashlib.sha256()
        self._handle = path.open("wb")

    def write(self, record: Any) -> None:
        self.write_lines(dump_line(record), 1)

    def write_lines(self, data: str | bytes, count: int) -> None:
        """`count` records already serialised, each as `dump_line` makes it (or as `dumps`
        makes it plus a newline, in a str: in a worker process, say): the same bytes `write`
        would write for them."""
        self._put(data.encode("utf-8") if isinstance(data, str) else data)
        self.count += count

    def write_parts(self, parts: Iterable[bytes], count: int) -> None:
        """`count` records given as consecutive parts of what `write_lines` takes (one record's
        lines a part, say): the same bytes, written in pieces (`joined`), not joined whole."""
        for piece in joined(parts):
            self._put(piece)
        self.count += count

    def _put(self, encoded: bytes) -> None:
        try:
            _write(self._handle, encoded, self.path)
        except OSError as err:
            self._fail(err)
        self._digest.update(encoded)

    def write_all(self, records: Iterable[Any]) -> None:
        for record in records:
            self.write(record)

    def close(self) -> str:
        """Flush to disk and return the sha256 of the file."""
        try:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
        except OSError as err:
            self._fail(err)
        return self._digest.hexdigest()

    def _fail(self, err: OSError) -> None:
        """Close the file without flushing what the disk refused, then raise."""
        try:
            self._handle.close()
        except OSError:
            pass  # the buffered rest fails the same way; the error below says why
        full = disk_full(err, self.path)
        if full is not None:
            raise full from err
        raise err


def write_json(path: Path, data: Any) -> None:
    """Write pretty JSON atomically (temp file in the same folder, fsync, rename)."""
    write_text(path, json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
                _write(handle, text, path)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as err:
            full = disk_full(err, path)
            if full is not None:
                raise full from err
            raise
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_staged(path: Path, text: str) -> None:
    """A file inside a `staging_dir` folder that can be rebuilt (the audit report): the folder's
    rename makes it appear whole, so it needs no temp file or fsync of its own."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with path.open("w", encoding="utf-8", newline="\n") as handle:
            _write(handle, text, path)
    except OSError as err:
        full = disk_full(err, path)
        if full is not None:
            raise full from err
        raise


STAGED_WRITER_THREADS = 1
"""Threads of a `StagedWriter`. One takes the creation of files off the thread that renders
them; 2 and 4 were no faster on the 20 MB bench's audit report (2,318 pages, 1 and 2
workers, right after writing 400 MB), and the files all go to one folder."""
STAGED_WRITER_QUEUE = 8
"""Files a `StagedWriter` holds before `write` waits: several slow `open`s (~1 ms each while
the disk writes back) against one page's ~5 ms of rebuilding and rendering, while memory
stays bounded (the 20 MB bench's largest page is 108 KB)."""


class StagedWriter:
    """Writes files into a `staging_dir` folder (`write_text_staged`) on background threads,
    so that the caller makes the next file while one is created and written: creating a
    file takes ~1 ms while the disk has dirty data (right after a run's stages), and the GIL
    is released meanwhile. Use it as a context manager: leaving the block waits until every
    file is written, and raises the first error a write raised (a full disk is the
    DiskFullError naming the file); `write` raises it too, once it is known. Leaving the
    block on an exception drops the files not written yet and waits for the threads, so
    none of them writes into a folder the caller is about to remove."""

    def __init__(self, threads: int = STAGED_WRITER_THREADS, queued: int = STAGED_WRITER_QUEUE) -> None:
        self._queue: queue.Queue[tuple[Path, str] | None] = queue.Queue(queued)
        self._error: BaseException | None = None
        self._dropping = False
        self._threads = [threading.Thread(target=self._run, name=f"staged-writer-{n}", daemon=True)
                         for n in range(threads)]
        for thread in self._threads:
            thread.start()

    def __enter__(self) -> StagedWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self._dropping = kind is not None
        for _thread in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()
        if kind is None:
            self._raise()

    def write(self, path: Path, text: str) -> None:
        """`write_text_staged(path, text)`, done by a thread; waits while the queue is full."""
        self._raise()
        self._queue.put((path, text))

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None and not self._dropping:  # after an error, the rest is dropped
                try:
                    write_text_staged(*item)
                except BaseException as err:  # noqa: BLE001 - raised in the caller's thread
                    self._error = self._error or err


@contextmanager
def staging_dir(final: Path) -> Iterator[Path]:
    """Yield a fresh temp folder beside `final`; on success it replaces `final`.

    A crash leaves `final` as it was (plus a `.tmp-` folder the next run removes).
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=final.parent))
    try:
        yield tmp
        replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def replace_dir(source: Path, final: Path) -> None:
    """Move `source` to `final`, replacing any old `final` with two renames."""
    if final.exists():
        trash = final.with_name(f".old-{final.name}-{os.getpid()}")
        os.replace(final, trash)
        os.replace(source, final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(source, final)
    fsync_dir(final.parent)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temps(folder: Path) -> None:
    """Remove temp folders and files a killed run left behind."""
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if entry.name.startswith((".tmp-", ".old-")) or (
            entry.name.startswith(".") and entry.name.endswith(".tmp")
        ):
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
