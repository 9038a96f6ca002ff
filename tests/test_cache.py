"""The per-record cache: a second run recomputes nothing; a new page is the only page the
document stages compute; a torn or corrupt entry is recomputed; the cache stays bounded."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import load_config
from pipeline.executors import RecordLines
from pipeline.runner import code_fingerprint  # the real one: a fixture below stands in for it
import numpy as np

from pipeline.executors.cache import MISSING, RecordCache, entry
from pipeline.io import WRITE_BYTES, read_jsonl
from pipeline.runner import run
from tests.test_workers import CONFIG, SEEDS, assert_same, write_pages

DOCUMENT_STAGES = ["02-clean", "03-boilerplate", "04-split", "05-metadata"]


def timing(out: Path, stage: str) -> dict[str, Any]:
    return json.loads((out / "stages" / stage / "stats.json").read_text(encoding="utf-8"))["timing"]


def ids_of(out: Path, stage: str) -> list[str]:
    return [record["id"] for record in read_jsonl(out / "stages" / stage / "records.jsonl")]


@pytest.fixture(scope="module", autouse=True)
def fixed_code() -> Any:
    """The code does not change between the runs of a test (other edits to the package
    while the tests run would otherwise re-run everything)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("pipeline.runner.code_fingerprint", lambda: "code")
        yield


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Pages and the output of a first run over them."""
    folder = tmp_path_factory.mktemp("cache")
    pages = write_pages(folder / "pages", 4, seed=1)
    out = folder / "out"
    run(load_config(CONFIG), pages, out, progress=False, workers=2)
    return pages, out


def test_a_second_run_recomputes_nothing(first: tuple[Path, Path]) -> None:
    pages, out = first
    result = run(load_config(CONFIG), pages, out, progress=False, workers=2)
    assert result.stages_run == []
    assert "clean" in result.stages_cached and "dedup" in result.stages_cached


def test_a_new_page_is_the_only_page_computed(first: tuple[Path, Path], tmp_path: Path) -> None:
    pages, out = first
    grown, again = tmp_path / "pages", tmp_path / "out"
    shutil.copytree(pages, grown)
    shutil.copytree(out, again)
    new = grown / "site9" / "new.txt"  # a site of its own: the other sites' templates stay as they were
    new.parent.mkdir()
    new.write_text("A page added later.\n\n" + (SEEDS / "000_3ff87b482df5ac51.txt").read_text(encoding="utf-8"),
                   encoding="utf-8")
    run(load_config(CONFIG), grown, again, progress=False, workers=2, force=True)
    for stage in DOCUMENT_STAGES:
        ids = ids_of(again, {"02-clean": "01-ingest", "03-boilerplate": "02-clean", "04-split": "03-boilerplate",
                             "05-metadata": "04-split"}[stage])
        new_ids = [record_id for record_id in ids if record_id.startswith("site9/new")]
        stats = timing(again, stage)
        assert stats["records_computed"] == len(new_ids) > 0, stage
        assert stats["records_from_cache"] == len(ids) - len(new_ids), stage
    dedup = timing(again, "06-dedup")
    new_records = [i for i in ids_of(again, "05-metadata") if i.startswith("site9/new")]
    assert dedup["summaries_computed"] == len(new_records)
    fresh = tmp_path / "fresh"
    run(load_config(CONFIG), grown, fresh, progress=False, workers=2, cache=False)
    assert_same(again, fresh)


def _locations(cache_dir: Path) -> dict[bytes, tuple[Path, int, int]]:
    """Where each key's entry lies: (data file, offset, length), from the sorted indexes."""
    found: dict[bytes, tuple[Path, int, int]] = {}
    for index in sorted(cache_dir.glob("*.sorted")):
        high, low, offsets, lengths = np.load(index)
        for row in range(len(high)):
            key = int(high[row]).to_bytes(8, "big") + int(low[row]).to_bytes(8, "big")
            found[key] = (index.with_suffix(".data"), int(offsets[row]), int(lengths[row]))
    return found


def _entries(cache_dir: Path) -> dict[bytes, bytes]:
    entries = {}
    for key, (data, offset, length) in _locations(cache_dir).items():
        with data.open("rb") as handle:
            handle.seek(offset)
            entries[key] = handle.read(length)
    return entries


def _damage(cache_dir: Path, key: bytes, value: bytes) -> None:
    """Overwrite the entry in place (its length stays: the index still says where it is)."""
    data, offset, length = _locations(cache_dir)[key]
    with data.open("r+b") as handle:
        handle.seek(offset)
        handle.write(value.ljust(length, b"\0")[:length])


def test_a_process_entry_holds_the_stage_folder_lines(first: tuple[Path, Path], tmp_path: Path) -> None:
    """A hit is written as it is: the cache holds the serialised lines, not objects to serialise."""
    _, out = first
    copy = tmp_path / "clean"
    shutil.copytree(out / "cache" / "clean", copy)
    cache = RecordCache(copy)
    values = [cache.get(key) for key in _entries(copy)]
    cache.close()
    assert values and all(isinstance(value, RecordLines) for value in values)
    written = (out / "stages/02-clean/records.jsonl").read_bytes().splitlines(keepends=True)
    assert sorted(value.records for value in values) == sorted(written)


def test_corrupt_entries_are_recomputed_and_unused_ones_removed(first: tuple[Path, Path], tmp_path: Path) -> None:
    pages, out = first
    smaller, again = tmp_path / "pages", tmp_path / "out"
    shutil.copytree(pages, smaller)
    shutil.copytree(out, again)
    entries = _entries(again / "cache" / "clean")
    assert len(entries) == 20
    first_key, second_key = sorted(entries)[:2]
    _damage(again / "cache" / "clean", first_key, entries[first_key][:-10])  # torn
    _damage(again / "cache" / "clean", second_key, b"\0" * 64)  # garbage
    removed = sorted(smaller.rglob("*.txt"))[0]
    removed.unlink()
    run(load_config(CONFIG), smaller, again, progress=False, workers=2, force=True)
    stats = timing(again, "02-clean")
    assert stats["records_from_cache"] + stats["records_computed"] == 19
    assert stats["records_computed"] <= 2
    assert len(_entries(again / "cache" / "clean")) == 19
    fresh = tmp_path / "fresh"
    run(load_config(CONFIG), smaller, fresh, progress=False, workers=1, cache=False)
    assert_same(again, fresh)


def test_an_unreadable_index_drops_its_generation(first: tuple[Path, Path], tmp_path: Path) -> None:
    pages, out = first
    again = tmp_path / "out"
    shutil.copytree(out, again)
    folder = again / "cache" / "clean"
    (folder / "sqlite-era-entries.sqlite").write_bytes(b"an older cache's file")
    [index] = folder.glob("*.sorted")
    index.write_bytes(b"not an index" * 100)
    (again / "stages" / "02-clean" / "stage.json").unlink()  # the stage runs again, reading its cache
    run(load_config(CONFIG), pages, again, progress=False, workers=1, force=True)
    assert timing(again, "02-clean")["records_computed"] == 20
    assert len(_entries(folder)) == 20
    assert sorted(path.suffix for path in folder.iterdir()) == [".data", ".sorted"]  # one generation, nothing else


def test_record_cache_round_trip(tmp_path: Path) -> None:
    cache = RecordCache(tmp_path / "c", "stage", "config", "code")
    key = cache.key("process", "abc")
    assert cache.get(key) is MISSING
    cache.put(key, {"value": [1, "two"]})
    cache.prune()
    reread = RecordCache(tmp_path / "c", "stage", "config", "code")
    assert reread.get(key) == {"value": [1, "two"]}
    assert RecordCache(tmp_path / "c", "stage", "other config", "code").key("process", "abc") != key
    assert reread.key("process", "abc", state_sha="s") != key
    reread.prune()  # the hit was carried into the new generation
    _damage(tmp_path / "c", key, _entries(tmp_path / "c")[key][:-1] + b"x")
    assert RecordCache(tmp_path / "c", "stage", "config", "code").get(key) is MISSING
    _damage(tmp_path / "c", key, b"")  # zeros
    assert RecordCache(tmp_path / "c", "stage", "config", "code").get(key) is MISSING
    unused = RecordCache(tmp_path / "c", "stage", "config", "code")
    unused.prune()
    assert _entries(tmp_path / "c") == {}


def test_keys_of_lines_are_one_per_line_and_differ_by_every_part(tmp_path: Path) -> None:
    cache = RecordCache(tmp_path / "c", "stage", "config", "code")
    lines = [b'{"id":"a"}\n', b'{"id":"b"}\n', b'{"id":"a"}\n']
    keys = cache.keys("process", lines)
    assert keys == [cache.key("process", line) for line in lines]
    assert keys[0] == keys[2] != keys[1] and {len(key) for key in keys} == {16}
    assert cache.key("process", '{"id":"a"}\n') == keys[0]  # text stands for its UTF-8 bytes
    others = [cache.keys("summarize", lines[:1]), cache.keys("process", lines[:1], state_sha="s"),
              RecordCache(tmp_path / "c", "stage", "config", "other code").keys("process", lines[:1])]
    assert len({keys[0], *(key for [key] in others)}) == 4


def test_hits_are_carried_over_and_unused_entries_pruned(tmp_path: Path) -> None:
    cache = RecordCache(tmp_path / "c", "stage")
    keys = [cache.key("process", str(number)) for number in range(10)]
    cache.put_many([(key, entry(pickle.dumps(number))) for number, key in enumerate(keys)])
    cache.put_many([(keys[0], entry(pickle.dumps(0)))])  # stored twice in a run: kept once
    cache.prune()
    assert sorted(_entries(tmp_path / "c")) == sorted(keys)
    again = RecordCache(tmp_path / "c", "stage")
    assert again.get_many(keys[:4]) == [0, 1, 2, 3]
    again.put_many([(keys[9], entry(pickle.dumps("new")))])
    again.prune()
    assert sorted(_entries(tmp_path / "c")) == sorted(keys[:4] + [keys[9]])
    assert len(list((tmp_path / "c").glob("*.data"))) == 1
    assert RecordCache(tmp_path / "c", "stage").get_many([keys[9], keys[5]]) == ["new", MISSING]


def test_a_killed_runs_entries_are_still_found(tmp_path: Path) -> None:
    """A run that never reached `prune` (killed, or its stage failed) leaves an unsorted
    generation: read next time, cut at its last whole row, then pruned with the rest."""
    first = RecordCache(tmp_path / "c", "stage")
    keys = [first.key("process", str(number)) for number in range(6)]
    first.put_many([(key, entry(pickle.dumps(number))) for number, key in enumerate(keys[:3])])
    first.prune()
    killed = RecordCache(tmp_path / "c", "stage")
    assert killed.get_many(keys[:1]) == [0]
    killed.put_many([(key, entry(pickle.dumps(number))) for number, key in enumerate(keys) if number >= 3])
    killed.close()  # no prune: as if killed here
    [index] = (tmp_path / "c").glob("*.index")
    index.write_bytes(index.read_bytes()[:-5])  # the last row torn
    data = index.with_suffix(".data")
    data.write_bytes(data.read_bytes())
    later = RecordCache(tmp_path / "c", "stage")
    assert later.get_many(keys) == [0, 1, 2, 3, 4, MISSING]
    later.prune()
    assert sorted(_entries(tmp_path / "c")) == sorted(keys[:5])
    assert not list((tmp_path / "c").glob("*.index"))


def test_bulk_lookups_keep_key_order(tmp_path: Path) -> None:
    cache = RecordCache(tmp_path / "c", "stage", "config", "code")
    keys = [cache.key("process", str(number)) for number in range(10)]
    assert cache.get_many(keys) == [MISSING] * 10
    cache.put_many([(key, entry(pickle.dumps(number))) for number, key in enumerate(keys) if number % 3])
    cache.prune()
    reread = RecordCache(tmp_path / "c", "stage", "config", "code")
    assert reread.get_many(list(reversed(keys))) == [
        number if number % 3 else MISSING for number in reversed(range(10))]
    assert reread.hits == 6
    reread.close()


def test_keys_sharing_their_high_half_are_told_apart(tmp_path: Path) -> None:
    cache = RecordCache(tmp_path / "c", "stage")
    keys = [bytes(8) + number.to_bytes(8, "big") for number in (5, 1, 3)]
    cache.put_many([(key, entry(pickle.dumps(number))) for number, key in enumerate(keys)])
    cache.prune()
    again = RecordCache(tmp_path / "c", "stage")
    assert again.get_many(keys + [bytes(16)]) == [0, 1, 2, MISSING]
    again.close()


def test_a_full_disk_while_caching_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from pipeline.errors import DiskFullError

    cache = RecordCache(tmp_path / "cache", "stage", "fingerprint")
    cache.get(cache.key("process", "a"))  # opens the run's files

    class Full:
        name = str(tmp_path / "cache" / "000001.data")

        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache, "_data", Full())
    with pytest.raises(DiskFullError, match="disk full while writing .*000001.data"):
        cache.put(cache.key("process", "a"), {"records": []})


def test_the_code_fingerprint_covers_run_code_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline import runner

    package = tmp_path / "pipeline"
    for relative in ("stages/clean.py", "eval/devset.py", "bench/run.py", "runner.py"):
        (package / relative).parent.mkdir(parents=True, exist_ok=True)
        (package / relative).write_text(f"# {relative}\n", encoding="utf-8")
    monkeypatch.setattr(runner, "PACKAGE_DIR", package)
    before = code_fingerprint()
    (package / "eval" / "devset.py").write_text("# measured differently\n", encoding="utf-8")
    (package / "bench" / "run.py").write_text("# timed differently\n", encoding="utf-8")
    assert code_fingerprint() == before
    (package / "stages" / "clean.py").write_text("# cleans differently\n", encoding="utf-8")
    assert code_fingerprint() != before


def test_prune_keeps_exactly_what_the_run_read_or_wrote(tmp_path: Path) -> None:
    cache = RecordCache(tmp_path / "c", "stage", "config", "code")
    keys = [cache.key("process", str(number)) for number in range(10)]
    cache.put_many([(key, entry(pickle.dumps(number))) for number, key in enumerate(keys)])
    cache.prune()
    again = RecordCache(tmp_path / "c", "stage", "config", "code")
    assert again.get_many(keys[:4]) == [0, 1, 2, 3]
    new = again.key("process", "new")
    again.put(new, "new")
    again.prune()
    assert sorted(_entries(tmp_path / "c")) == sorted([*keys[:4], new])


def test_a_killed_runs_marks_do_not_keep_entries(tmp_path: Path) -> None:
    """A run killed after reading entries leaves its marks behind; the next run does not
    count them as its own, so its prune removes what it did not use itself."""
    cache = RecordCache(tmp_path / "c", "stage", "config", "code")
    keys = [cache.key("process", str(number)) for number in range(4)]
    cache.put_many([(key, entry(pickle.dumps(number))) for number, key in enumerate(keys)])
    cache.close()  # killed before its prune: the marks are committed, not acted on
    killed = RecordCache(tmp_path / "c", "stage", "config", "code")
    assert killed.get_many(keys) == [0, 1, 2, 3]
    killed.close()
    after = RecordCache(tmp_path / "c", "stage", "config", "code")
    assert after.get(keys[0]) == 0
    after.prune()
    assert list(_entries(tmp_path / "c")) == [keys[0]]


def test_an_entry_whose_digest_matches_but_does_not_unpickle_is_a_miss(tmp_path: Path) -> None:
    import hashlib

    cache = RecordCache(tmp_path / "c", "stage", "config", "code")
    good, truncated, not_pickle = (cache.key("process", name) for name in ("good", "truncated", "not pickle"))
    cut = pickle.dumps("value" * 100)[:-10]  # its digest matches: only unpickling can tell
    plain = b"not a pickle"
    cache.put_many([(good, entry(pickle.dumps("value"))),
                    (truncated, hashlib.sha256(cut).digest() + cut),
                    (not_pickle, hashlib.sha256(plain).digest() + plain)])
    cache.close()
    reread = RecordCache(tmp_path / "c", "stage", "config", "code")
    assert reread.get_many([good, truncated, not_pickle]) == ["value", MISSING, MISSING]
    assert reread.hits == 1
    reread.close()


def test_what_the_run_used_is_not_held_in_memory(tmp_path: Path) -> None:
    """The memory the cache keeps (Python objects) is the same after 300 or 3000 records:
    what the run used is in its generation's files, not in a set of keys."""
    import tracemalloc

    def kept(count: int) -> int:
        cache = RecordCache(tmp_path / str(count), "stage", "config", "code")
        keys = [cache.key("process", str(number)) for number in range(count)]
        rows = [(key, entry(pickle.dumps(number))) for number, key in enumerate(keys)]
        cache.put_many(rows)
        cache.prune()  # sorted: looked up on a memory map, not read into memory
        cache = RecordCache(tmp_path / str(count), "stage", "config", "code")
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for start in range(0, count, 100):  # as the runner does: a chunk of hits, a chunk stored
            cache.get_many(keys[start:start + 50])
            cache.put_many(rows[start + 50:start + 100])
        grown = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        cache.prune()
        return grown

    small, large = kept(300), kept(3000)
    assert large < small + 20_000, (small, large)  # a set of the keys used grew by 128 kB more


def test_a_chunks_entries_are_written_in_bounded_pieces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not one copy of the whole chunk's entries (issue #8): a write per `joined` piece."""
    cache = RecordCache(tmp_path / "c", "stage", "config", "code")
    values = {cache.key("process", str(n)): {"text": f"{n} " + "word " * 1000} for n in range(600)}  # 3 MB
    cache.get_many(list(values))  # opens the run's files
    assert cache._data is not None
    sizes: list[int] = []
    data = cache._data

    class Recording:
        name = data.name

        def write(self, piece: bytes) -> int:
            sizes.append(len(piece))
            return data.write(piece)

        def flush(self) -> None:
            data.flush()

        def close(self) -> None:
            data.close()

    monkeypatch.setattr(cache, "_data", Recording())
    cache.put_many([(key, entry(pickle.dumps(value))) for key, value in values.items()])
    assert len(sizes) > 1 and max(sizes) <= WRITE_BYTES
    cache.prune()
    reread = RecordCache(tmp_path / "c", "stage", "config", "code")
    assert reread.get_many(list(values)) == list(values.values())
