"""Per-record cache: a stage's result for a record it has seen before is not recomputed.

An entry's key is the sha256 of the stage name, the phase, the stage's config section
fingerprint, the code fingerprint, a corpus stage's state (for `process`) and the
record's own content hash; so any change to one of them is a miss, never a stale hit.

A stage's entries live in one SQLite database, `<output>/cache/<stage>/entries.sqlite`
(one file rather than a file per record: a file per record cost a third of the run
time on the dev set). An entry is made where its value was computed (`entry`, in the
worker): the value's pickle behind its sha256; so this process only inserts it. A hit
is checked and unpickled; an entry that fails either is a miss.

Entries are not compressed. zlib at level 1, measured on the 5 MB bench (2 workers,
medians of 3), shrank the cache from 88 to 48 MB but cost the workers ~3 CPU s of a
run's ~18.7 (+16%), and a run taking every record from the cache 0.6 s more; throughput
is the pipeline's target and the cache is a disposable speed-up (`--no-cache`, or delete
`<output>/cache`), so the CPU wins. Writes are committed in
batches and not synced: a run killed mid-batch loses that batch (SQLite rolls it back),
a database that cannot be read is deleted and the stage recomputed.

The cache is bounded: once a stage completes, entries the run did not use are removed,
so a stage's cache holds at most one entry per record of its last run. What the run used
is kept on disk, not in memory: each key read or written is appended to the table
`used` (no index, so an append touches the last page only), and `prune` deletes every
entry whose key is not there, in one statement. `used` is emptied when the database is
opened, so the marks of a run that was killed are never taken for this run's. The cache
is our own output, read back by us only; do not point it at files from elsewhere.
"""

from __future__ import annotations

import hashlib
import pickle
import shutil
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.io import disk_full

MISSING = object()
DATABASE = "entries.sqlite"
BATCH = 512  # rows (entries and marks) per transaction
LOOKUP = 500  # keys per query (SQLite allows at least 999 parameters)
_DIGEST = 32


def entry(payload: bytes) -> bytes:
    """What the cache stores for a value's pickle `payload`: the pickle behind its sha256."""
    return hashlib.sha256(payload).digest() + payload


class RecordCache:
    """One stage's entries; `prefix` is what every key of this stage and run shares."""

    def __init__(self, folder: Path, *parts: str) -> None:
        self.folder = folder
        self.prefix = "\0".join(parts)
        self.hits = 0
        self.stored = 0
        self._db: sqlite3.Connection | None = None
        self._empty = True  # the database held no entries when opened: nothing to look up
        self._pending = 0

    def key(self, phase: str, record_sha: str, state_sha: str = "") -> str:
        return hashlib.sha256("\0".join([self.prefix, phase, state_sha, record_sha]).encode()).hexdigest()

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            try:
                self._db = self._open()
            except sqlite3.DatabaseError:  # not a database, or torn beyond SQLite's own repair
                shutil.rmtree(self.folder, ignore_errors=True)
                self._db = self._open()
        return self._db

    def _open(self) -> sqlite3.Connection:
        self.folder.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.folder / DATABASE, isolation_level=None)
        db.execute("PRAGMA synchronous=OFF")  # a lost entry is recomputed; no need to wait for the disk
        db.execute("CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
        db.execute("CREATE TABLE IF NOT EXISTS used (key TEXT NOT NULL)")
        db.execute("DELETE FROM used")  # a killed run's marks
        self._empty = db.execute("SELECT count(*) FROM entries").fetchone()[0] == 0  # a damaged file fails here
        return db

    def get(self, key: str) -> Any:
        """The cached value, or MISSING (absent, torn or unreadable)."""
        return self.get_many([key])[0]

    def get_many(self, keys: Sequence[str]) -> list[Any]:
        """The cached value of each key, or MISSING: a query per `LOOKUP` keys, none at all
        while the database was empty when opened (a first run). Hits are marked used."""
        found: dict[str, bytes] = {}
        try:
            db = self._connect()
            if self._empty:
                return [MISSING] * len(keys)
            for start in range(0, len(keys), LOOKUP):
                part = keys[start:start + LOOKUP]
                marks = ",".join("?" * len(part))
                found.update(db.execute(f"SELECT key, value FROM entries WHERE key IN ({marks})", part))
        except sqlite3.DatabaseError:
            return [MISSING] * len(keys)
        values = [_value(found.get(key)) for key in keys]
        hits = [(key,) for key, value in zip(keys, values) if value is not MISSING]
        self._write("INSERT INTO used VALUES (?)", hits)
        self.hits += len(hits)
        return values

    def put(self, key: str, value: Any) -> None:
        self.put_many([(key, entry(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)))])

    def put_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        """Store entries made by `entry`, and mark them used."""
        self._write("INSERT OR REPLACE INTO entries VALUES (?, ?)", items)
        self._write("INSERT INTO used VALUES (?)", [(key,) for key, _ in items])
        self.stored += len(items)

    def _write(self, statement: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """`statement` for each row; committed a transaction per `BATCH` rows."""
        db = self._connect()
        try:
            for start in range(0, len(rows), BATCH):
                if self._pending == 0:
                    db.execute("BEGIN")
                part = rows[start:start + BATCH]
                db.executemany(statement, part)
                self._pending += len(part)
                if self._pending >= BATCH:
                    self._commit()
        except sqlite3.OperationalError as err:
            if "full" in str(err).lower():  # SQLITE_FULL: the disk or quota
                full = disk_full(OSError(28, str(err)), self.folder / DATABASE)
                assert full is not None
                raise full from err
            raise

    def _commit(self) -> None:
        if self._db is not None and self._pending:
            self._db.execute("COMMIT")
        self._pending = 0

    def prune(self) -> None:
        """Commit, then remove every entry this run did not read or write."""
        if self._db is None and not (self.folder / DATABASE).is_file():
            return
        db = self._connect()
        self._commit()
        db.execute("BEGIN")
        db.execute("DELETE FROM entries WHERE key NOT IN (SELECT key FROM used)")
        db.execute("DELETE FROM used")
        db.execute("COMMIT")
        self.close()

    def close(self) -> None:
        if self._db is not None:
            self._commit()
            self._db.close()
            self._db = None


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


def clear(folder: Path) -> None:
    """Drop a stage's cache (the stage is disabled or the cache is turned off)."""
    shutil.rmtree(folder, ignore_errors=True)
