"""Per-record cache: a stage's result for a record it has seen before is not recomputed.

An entry's key is the sha256 of the stage name, the phase, the stage's config section
fingerprint, the code fingerprint, a corpus stage's state (for `process`) and the
record's own content hash; so any change to one of them is a miss, never a stale hit.

Entries live in `<output>/cache/<stage>/<key[:2]>/<key>`, each a pickle behind the
sha256 of its bytes: written to a temp file and renamed (not fsynced: a torn entry
fails its checksum after a crash and is recomputed), ignored when unreadable. The
cache is bounded: once a stage completes, entries the run did not use are removed,
so a stage's cache holds at most one entry per record of its last run. The cache is
our own output, read back by us only; do not point it at files from elsewhere.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import Any

from pipeline.io import disk_full

MISSING = object()
_DIGEST = 32


class RecordCache:
    """One stage's entries; `prefix` is what every key of this stage and run shares."""

    def __init__(self, folder: Path, *parts: str) -> None:
        self.folder = folder
        self.prefix = "\0".join(parts)
        self.used: set[str] = set()
        self.hits = 0
        self.stored = 0

    def key(self, phase: str, record_sha: str, state_sha: str = "") -> str:
        return hashlib.sha256("\0".join([self.prefix, phase, state_sha, record_sha]).encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / key

    def get(self, key: str) -> Any:
        """The cached value, or MISSING (absent, torn or unreadable)."""
        try:
            data = self._path(key).read_bytes()
        except OSError:
            return MISSING
        payload = data[_DIGEST:]
        if len(data) < _DIGEST or hashlib.sha256(payload).digest() != data[:_DIGEST]:
            return MISSING
        try:
            value = pickle.loads(payload)
        except Exception:  # noqa: BLE001 - a corrupt entry is a miss, whatever it raises
            return MISSING
        self.used.add(key)
        self.hits += 1
        return value

    def put(self, key: str, value: Any) -> None:
        payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(hashlib.sha256(payload).digest())
                handle.write(payload)
            os.replace(tmp, path)
        except BaseException as err:
            Path(tmp).unlink(missing_ok=True)
            full = disk_full(err, path) if isinstance(err, OSError) else None
            if full is not None:
                raise full from err
            raise
        self.used.add(key)
        self.stored += 1

    def prune(self) -> None:
        """Remove every entry this run did not read or write (and temp files a crash left)."""
        if not self.folder.is_dir():
            return
        for shard in self.folder.iterdir():
            if not shard.is_dir():
                shard.unlink(missing_ok=True)
                continue
            for entry in shard.iterdir():
                if entry.name not in self.used:
                    if entry.is_dir():
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        entry.unlink(missing_ok=True)
            if not any(shard.iterdir()):
                shard.rmdir()


def clear(folder: Path) -> None:
    """Drop a stage's cache (the stage is disabled or the cache is turned off)."""
    shutil.rmtree(folder, ignore_errors=True)
