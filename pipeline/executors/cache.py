"""Per-record cache: a stage's result for a record it has seen before is not recomputed.

An entry's key is the first 16 bytes of a sha256 over the stage name, the phase, the
stage's config section fingerprint, the code fingerprint, a corpus stage's state (for
`process`) and the record's own line (a collision among a corpus's keys has
probability ~n²/2^129); so any change to one of them is a miss, never a stale hit.
An entry is made where its value was computed (`entry`, in the worker): the value's
pickle behind its sha256; so this process only stores it. A hit is checked and
unpickled; an entry that fails either is a miss.

Generations
-----------
A stage's entries live in `<output>/cache/<stage>/` as *generations*, one per run of
the stage. A generation is two files: `NNNNNN.data`, the entries one after another,
and `NNNNNN.index`, a row of four uint64 per entry (the key as two numbers, the
entry's offset and length in the data file). While a run goes, `put_many` appends
each chunk's entries to the data file (a write per megabyte) and their rows to the index,
in arrival order; a hit read from an older generation is appended the same way. At
the stage's end `prune` sorts the new index by key (rewritten as `NNNNNN.sorted`,
the four columns one after another, so the key column is contiguous for
`np.searchsorted` on a memory map), and deletes every older generation. The new
generation then holds exactly the entries this run read or wrote: that is the prune,
with no scan of what was there and no list of used keys.

A lookup (`get_many`) searches every older generation, newest first, with
`np.searchsorted` over the key column of its index, then reads each hit with one
`os.pread`. A generation a run did not finish (killed, or a stage that failed) is
still read: its unsorted index is sorted in memory when the cache is opened, and
an index row cut short at the end, or one pointing past its data file's end, is
dropped. So a killed run keeps the entries it wrote, as SQLite's committed batches
did. An index that cannot be read drops its generation (those records are
recomputed); a torn or corrupt entry is a miss.

Why not SQLite (the design until now): one row per entry in a table keyed by
hex text. Measured on this machine: `put_many` cost 12 us an entry at 30k entries
and 26 us at 300k (random inserts into the key's B-tree), and the prune 2.8 s at
300k; SQLite variants (BLOB keys, a 64 MB page cache, WAL) reached 16 us at 300k.
The cache then cost a 20 MB bench run 11.5 s of 54.6 s with one worker (against
`--no-cache`), and more per MB as the corpus grew. Appending costs a memory copy
and a write per megabyte of entries, whatever the size of the cache.

Memory: the sort at a stage's end holds the new index (32 bytes an entry) and its
order (8 bytes) in memory: ~60 MB for 1.5M values, the metadata stage's count
at 1 GB of pages. A lookup reads the memory-mapped key column only where
the binary search goes.

Entries are not compressed. zlib at level 1, measured on the 5 MB bench (2 workers,
medians of 3), shrank the cache from 88 to 48 MB but cost the workers ~3 CPU s of a
run's ~18.7 (+16%), and a run taking every record from the cache 0.6 s more; throughput
is the pipeline's target and the cache is a disposable speed-up (`--no-cache`, or delete
`<output>/cache`), so the CPU wins. Nothing is synced to disk: a lost or torn
entry is recomputed. The cache is our own output, read back by us only; do not
point it at files from elsewhere.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from pipeline.io import disk_full, joined

MISSING = object()
KEY_BYTES = 16
_DIGEST = 32  # an entry's leading sha256 of its pickle
_ROW = 4  # uint64 columns of an index row: key high, key low, offset, length
_NAME = re.compile(r"(\d{6})\.(index|sorted|data)")


def entry(payload: bytes) -> bytes:
    """What the cache stores for a value's pickle `payload`: the pickle behind its sha256."""
    return hashlib.sha256(payload).digest() + payload


def payload(made: bytes) -> memoryview:
    """The pickle inside an entry `entry` made in this run (not checked: it was not stored)."""
    return memoryview(made)[_DIGEST:]


class _Generation:
    """An older generation, for lookups: its sorted key columns and its data file."""

    def __init__(self, keys: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, data: Path) -> None:
        self.high, self.low = keys[0], keys[1]
        self.offsets, self.lengths = offsets, lengths
        self.handle = data.open("rb")

    def find(self, high: np.ndarray, low: np.ndarray) -> np.ndarray:
        """For each key, the row holding it, or -1."""
        size = len(self.high)
        if not size:
            return np.full(len(high), -1, dtype=np.int64)
        start = np.searchsorted(self.high, high, side="left")
        at = np.minimum(start, size - 1)
        same_high = (start < size) & (self.high[at] == high)
        rows = np.where(same_high & (self.low[at] == low), start, -1)
        # Two keys sharing their high 64 bits (~n²/2^65 odds): the run of equal highs is walked.
        for number in np.flatnonzero(same_high & (rows < 0)):
            row = int(start[number]) + 1
            while row < size and self.high[row] == high[number]:
                if self.low[row] == low[number]:
                    rows[number] = row
                    break
                row += 1
        return rows

    def read(self, row: int) -> bytes:
        return os.pread(self.handle.fileno(), int(self.lengths[row]), int(self.offsets[row]))

    def close(self) -> None:
        self.handle.close()


def _split(keys: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    halves = np.frombuffer(b"".join(keys), dtype=">u8").reshape(-1, 2).astype(np.uint64)
    return halves[:, 0], halves[:, 1]


def _load(folder: Path, number: str, sorted_: bool) -> _Generation | None:
    """Generation `number` for lookups; None if its index cannot be read (it is then deleted)."""
    data = folder / f"{number}.data"
    try:
        if sorted_:
            columns = np.load(folder / f"{number}.sorted", mmap_mode="r", allow_pickle=False)
            if columns.ndim != 2 or columns.shape[0] != _ROW or columns.dtype != np.uint64:
                raise ValueError("not an index")
            return _Generation(columns[:2], columns[2], columns[3], data)
        raw = (folder / f"{number}.index").read_bytes()
        rows = np.frombuffer(raw[:len(raw) - len(raw) % (8 * _ROW)], dtype=np.uint64).reshape(-1, _ROW)
        size = data.stat().st_size
        rows = rows[rows[:, 2] + rows[:, 3] <= size]  # a row written before its entry reached the disk
        order = np.lexsort((rows[:, 1], rows[:, 0]))
        rows = rows[order]
        return _Generation(rows[:, :2].T, rows[:, 2], rows[:, 3], data)
    except (OSError, ValueError):
        for suffix in ("data", "index", "sorted"):
            (folder / f"{number}.{suffix}").unlink(missing_ok=True)
        return None


class RecordCache:
    """One stage's entries; `prefix` is what every key of this stage and run shares."""

    def __init__(self, folder: Path, *parts: str) -> None:
        self.folder = folder
        self.prefix = "\0".join(parts)
        self.hits = 0
        self.stored = 0
        self._old: list[_Generation] | None = None  # opened on first use
        self._old_numbers: list[str] = []
        self._number = ""  # this run's generation
        self._data: BinaryIO | None = None
        self._index: BinaryIO | None = None
        self._size = 0  # bytes in this run's data file

    def key(self, phase: str, record: bytes | str, state_sha: str = "") -> bytes:
        """The key of one record (its raw line, or any text that stands for it)."""
        data = record.encode("utf-8", "surrogatepass") if isinstance(record, str) else record
        return self.keys(phase, [data], state_sha)[0]

    def keys(self, phase: str, records: Iterable[bytes], state_sha: str = "") -> list[bytes]:
        """The keys of records given as their raw lines: the sha256 of what every key of the
        phase shares (hashed once, a fixed 32 bytes) followed by the line, so one hash a
        record (hashing the line and then its digest with the rest took twice the time)."""
        shared = hashlib.sha256(hashlib.sha256("\0".join([self.prefix, phase, state_sha]).encode()).digest())
        found = []
        for record in records:
            digest = shared.copy()
            digest.update(record)
            found.append(digest.digest()[:KEY_BYTES])
        return found

    def _open(self) -> list[_Generation]:
        """The older generations (newest first), and this run's files, made on first use."""
        if self._old is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            found: dict[str, set[str]] = {}
            for path in self.folder.iterdir():
                match = _NAME.fullmatch(path.name)
                if match is None:
                    path.unlink(missing_ok=True)  # not ours: an older cache's files
                else:
                    found.setdefault(match.group(1), set()).add(match.group(2))
            self._old = []
            for number in sorted(found, reverse=True):
                generation = _load(self.folder, number, "sorted" in found[number])
                if generation is not None:
                    self._old.append(generation)
                    self._old_numbers.append(number)
            self._number = f"{int(max(found, default='0')) + 1:06d}"
            self._data = (self.folder / f"{self._number}.data").open("wb")
            self._index = (self.folder / f"{self._number}.index").open("wb")
        return self._old

    def get(self, key: bytes) -> Any:
        """The cached value, or MISSING (absent, torn or unreadable)."""
        return self.get_many([key])[0]

    def get_many(self, keys: Sequence[bytes]) -> list[Any]:
        """The cached value of each key, or MISSING. Hits are carried into this run's generation."""
        values: list[Any] = [MISSING] * len(keys)
        old = self._open()
        if not old or not keys:
            return values
        high, low = _split(keys)
        carried: list[tuple[bytes, bytes]] = []
        for generation in old:
            wanted = np.array([number for number, value in enumerate(values) if value is MISSING], dtype=np.int64)
            if not len(wanted):
                break
            for number, row in zip(wanted.tolist(), generation.find(high[wanted], low[wanted]).tolist()):
                if row < 0:
                    continue
                try:
                    data = generation.read(row)
                except OSError:
                    continue
                value = _value(data)
                if value is not MISSING:
                    values[number] = value
                    carried.append((keys[number], data))
        self._append(carried)
        self.hits += len(carried)
        return values

    def put(self, key: bytes, value: Any) -> None:
        self.put_many([(key, entry(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)))])

    def put_many(self, items: Sequence[tuple[bytes, bytes]]) -> None:
        """Store entries made by `entry`."""
        self._open()
        self._append(items)
        self.stored += len(items)

    def _append(self, items: Sequence[tuple[bytes, bytes]]) -> None:
        """Entries to this run's data file, then their index rows (so a row never names
        bytes that were not written first)."""
        if not items:
            return
        assert self._data is not None and self._index is not None
        lengths = np.array([len(data) for _, data in items], dtype=np.uint64)
        offsets = self._size + np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.uint64)
        high, low = _split([key for key, _ in items])
        rows = np.stack([high, low, offsets, lengths], axis=1).astype(np.uint64)
        path = self._data.name
        try:
            for piece in joined(data for _, data in items):  # not one copy of the whole chunk
                self._data.write(piece)
            self._data.flush()
            path = self._index.name
            self._index.write(rows.tobytes())
            self._index.flush()
        except OSError as err:
            full = disk_full(err, Path(path))
            if full is not None:
                raise full from err
            raise
        self._size += int(lengths.sum())

    def prune(self) -> None:
        """This run's generation sorted and made the only one: every entry the run did not
        read or write is gone."""
        self._open()
        self._close_files()
        folder, number = self.folder, self._number
        rows = np.fromfile(folder / f"{number}.index", dtype=np.uint64).reshape(-1, _ROW)
        rows = rows[np.lexsort((rows[:, 1], rows[:, 0]))]
        if len(rows):  # a key stored twice in a run (two equal records) is kept once
            keep = np.ones(len(rows), dtype=bool)
            keep[1:] = (rows[1:, 0] != rows[:-1, 0]) | (rows[1:, 1] != rows[:-1, 1])
            rows = rows[keep]
        staged = folder / f"{number}.sorted.tmp.npy"
        try:
            np.save(staged, np.ascontiguousarray(rows.T))
        except OSError as err:
            staged.unlink(missing_ok=True)
            full = disk_full(err, staged)
            if full is not None:
                raise full from err
            raise
        os.replace(staged, folder / f"{number}.sorted")
        (folder / f"{number}.index").unlink()
        for old in self._old_numbers:
            for suffix in ("data", "index", "sorted"):
                (folder / f"{old}.{suffix}").unlink(missing_ok=True)
        self._old, self._old_numbers = None, []

    def _close_files(self) -> None:
        for handle in (self._data, self._index):
            if handle is not None:
                handle.close()
        self._data = self._index = None
        for generation in self._old or []:
            generation.close()

    def close(self) -> None:
        """Stop here: this run's entries stay, unsorted, beside the older ones (`prune` was not called)."""
        self._close_files()
        self._old, self._old_numbers = None, []


def _value(data: bytes | None) -> Any:
    """An entry's value, or MISSING if it is absent, torn or corrupt."""
    if data is None or len(data) < _DIGEST:
        return MISSING
    stored = memoryview(data)[_DIGEST:]
    if hashlib.sha256(stored).digest() != data[:_DIGEST]:
        return MISSING
    try:
        return pickle.loads(stored)
    except Exception:  # noqa: BLE001 - a corrupt entry is a miss, whatever it raises
        return MISSING
