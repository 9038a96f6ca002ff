"""File I/O with the guarantees the pipeline relies on: atomic, deterministic, hashed."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import yaml

from pipeline.errors import DiskFullError

CHUNK = 1 << 20
DISK_FULL = {errno.ENOSPC: "disk full", errno.EDQUOT: "disk quota exceeded"}


def _write(handle: IO[str], data: str, path: Path) -> None:
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


def dumps(record: Any) -> str:
    """One canonical JSON line: sorted keys would reorder fields users read, so we keep
    insertion order (stages build records in a fixed order) and fix the separators."""
    return _ENCODER.encode(record)


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
                yield json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{number}: not valid JSON ({err.msg})") from err


class JsonlWriter:
    """Writes records one per line and hashes what it wrote.

    A full disk raises DiskFullError naming the file, after closing it; the caller writes
    into a temp folder and removes it, so nothing half-written is left in place."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._digest = hashlib.sha256()
        self._handle = path.open("w", encoding="utf-8", newline="\n")

    def write(self, record: Any) -> None:
        data = dumps(record) + "\n"
        try:
            _write(self._handle, data, self.path)
        except OSError as err:
            self._fail(err)
        self._digest.update(data.encode("utf-8"))
        self.count += 1

    def write_lines(self, data: str, count: int) -> None:
        """`count` records already serialised, each as `dumps` makes it plus a newline (in a
        worker process, say): the same bytes `write` would write for them."""
        try:
            _write(self._handle, data, self.path)
        except OSError as err:
            self._fail(err)
        self._digest.update(data.encode("utf-8"))
        self.count += count

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
