"""The versioned corpus folder: written whole or not at all, never overwritten silently.

`<output>/corpus/<version>/` holds articles.jsonl, comments.jsonl, README.md (the
dataset card) and manifest.json, written last. A version that already exists
with the same content is left untouched (so its files stay byte-identical); with
different content the run stops unless --force. `<output>/corpus/LATEST` names
the newest version.

The rows and the dedup index are made from byte ranges of the final stage's
records.jsonl, read a batch of whole pages at a time (`ROWS_BATCH`). An article's
`n_comments` counts its comments wherever they are in the file: dedup moves a
copy's comments to the kept article, on another page. The parent finds the batches,
and the comment count of every article, in one pass over the lines that parses only
the few where a batch ends (`_comment_article` reads a comment's article id from
the bytes); the counts are corpus-level state, ~100 bytes per article with comments.
With several workers the batches are cut at page starts into segments; one pool
of forked workers reads, converts and serialises a segment each into part files
and returns the index entries of its articles (`dedup.index_entry`); the parent
joins the parts in order, hashing them, and puts the index together
(`dedup.assemble_index`). The files are the same for any number of workers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from pipeline import __version__
from pipeline.config import ConfigBase, resolved_config
from pipeline.errors import InputError, PipelineError, VersionExistsError
from pipeline.executors.pool import fork_map
from pipeline.io import (CHUNK, JsonlWriter, disk_full, dump_line, loads, read_jsonl, replace_dir, sha256_file,
                         sha256_text, write_json, write_text)
from pipeline.ledger import collector_paused, page_of
from pipeline.provenance import SourceIndex
from pipeline.stage import Record
from pipeline.stages import dedup, export
from pipeline.textstats import sentence_tokenizer

CONTENT_FILES = ("articles.jsonl", "comments.jsonl", "README.md", "dedup-index.npz")
MANIFEST = "manifest.json"


def git_commit() -> str | None:
    """The commit of the code that ran, with '-dirty' for uncommitted changes."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "."], cwd=here,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if dirty else commit


def write_version(output_dir: Path, config: ConfigBase, records_path: Path,
                  fates: list[dict[str, Any]], stage_stats: dict[str, dict[str, Any]],
                  export_config: export.Config, force: bool, input_dir: Path, workers: int = 1) -> tuple[Path, str]:
    """Write the corpus version; returns its folder and "written", "replaced" or "unchanged".
    With `workers` > 1 the rows are made in that many processes (the same files)."""
    version = config.corpus.version
    corpus_root = output_dir / "corpus"
    corpus_root.mkdir(parents=True, exist_ok=True)
    final = corpus_root / version
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=corpus_root))
    try:
        sources = SourceIndex(input_dir, config.ingest)  # type: ignore[attr-defined]
        # The index holds the signatures of the kept articles, so a later batch can be
        # deduplicated against this version without reprocessing it (dedup.against).
        with collector_paused():  # the records and rows hold no reference cycles
            outputs, index = _write_rows(tmp, records_path, export_config,
                                         config.dedup, sources, workers)  # type: ignore[attr-defined]
        try:
            dedup.save_index(index, tmp / "dedup-index.npz")
        except OSError as err:  # numpy writes it, not pipeline.io: the same clear message
            full = disk_full(err, tmp / "dedup-index.npz")
            if full is not None:
                raise full from err
            raise
        outputs["dedup-index.npz"] = {"sha256": sha256_file(tmp / "dedup-index.npz"), "records": None,
                                      "articles": len(index["ids"])}
        counts = {"articles": outputs["articles.jsonl"]["records"],
                  "comments": outputs["comments.jsonl"]["records"]}
        card = export.dataset_card(config.corpus.name, version, config.corpus.description,
                                   config.corpus.license, counts)
        write_text(tmp / "README.md", card)
        outputs["README.md"] = {"sha256": sha256_text(card), "records": None}
        resolved = resolved_config(config)
        manifest = {
            "corpus": {"name": config.corpus.name, "version": version},
            "pipeline": {"version": __version__, "git_commit": git_commit()},
            "config": resolved,
            "config_sha256": sha256_text(json.dumps(resolved, sort_keys=True)),
            "inputs": fates,
            "outputs": outputs,
            "stages": {name: {k: v for k, v in stats.items() if k != "timing"}
                       for name, stats in stage_stats.items()},
        }
        created = _source_date()
        if created is not None:
            manifest["created_at"] = created
        write_json(tmp / MANIFEST, manifest)
        status = "written"
        if final.exists():
            if _same_content(final, tmp):
                shutil.rmtree(tmp)
                status = "unchanged"
            elif not force:
                raise VersionExistsError(
                    f"{final}: corpus version {version} exists with different content; "
                    "set corpus.version to a new version, or pass --force to replace it")
            else:
                status = "replaced"
        if status != "unchanged":
            replace_dir(tmp, final)
        write_text(corpus_root / "LATEST", version + "\n")
        return final, status
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _source_date() -> str | None:
    """The build date for the manifest: only when SOURCE_DATE_EPOCH (the reproducible-builds
    convention: seconds since 1970, https://reproducible-builds.org/specs/source-date-epoch/)
    is set, so the same inputs, config and code give a byte-identical manifest by default."""
    value = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not value:
        return None
    try:
        seconds = int(value)
    except ValueError:
        raise InputError(f"SOURCE_DATE_EPOCH={value!r}: expected whole seconds since 1970-01-01") from None
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).isoformat()


# Records in a batch: at least this many, then to the end of the page. A batch bounds
# export's memory whatever the corpus size; the batches are the same for any number of workers.
ROWS_BATCH = 4096
# Segments of records.jsonl per worker (about: batch ends cut too): one each would leave a
# worker idle while the other finishes a segment of costlier pages (articles cost more
# than comments); each costs a task and two part files. 4 is pool.CHUNKS_PER_WORKER, so
# `fork_map` hands out about one segment at a time.
SEGMENTS_PER_WORKER = 4

# A comment's line as `dumps` writes a stage record: its id, then its kind. A key's
# opening quote can be neither an escaped quote (a letter follows) nor a closing one, so in
# a line these bytes are keys, at some depth of the record.
ID_KEY = b'{"id":"'
COMMENT_KIND = b',"kind":"comment"'
ARTICLE_ID = b'"article_id":'


class _Segment(NamedTuple):
    """Bytes [start, end) of records.jsonl, whole pages of one batch, and the comment
    counts of the corpus's articles (one Counter, shared by every segment)."""

    start: int
    end: int
    n_comments: Counter[str]


class _RangeRows(NamedTuple):
    """What a worker sends back for its segments: the checksums and counts of its files,
    and the index entries of its articles (`dedup.index_entry`: ~600 bytes an article)."""

    articles_sha256: str
    articles: int
    comments_sha256: str
    comments: int
    index: list[dedup.IndexEntry]


def _line_number(path: Path, offset: int) -> int:
    """The number of the line that starts at byte `offset` (for messages only)."""
    with path.open("rb") as handle:
        return handle.read(offset).count(b"\n") + 1


def _parse(line: bytes, path: Path, offset: int) -> Record:
    """The record on the line that starts at byte `offset`; a malformed line raises
    ValueError naming file and line, as `read_jsonl` does."""
    try:
        record: Record = loads(line.decode("utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{_line_number(path, offset)}: not valid JSON ({err.msg})") from err
    return record


def _comment_article(line: bytes, path: Path, offset: int) -> str | None:
    """The article_id of the line's record if it is a comment, else None: read from the
    bytes when the line starts as `dumps` writes a comment and its first article_id key
    is at the top level (no object opens before it) with a string value without escapes;
    else parsed."""
    # `find`, not `in`: for bytes, `in` first tries its operand as an int, at the cost of an exception.
    if line.find(b'"comment"') < 0:  # `dumps` writes the kind of a comment as is
        return None
    id_end = line.find(b'"', len(ID_KEY))
    key = line.find(ARTICLE_ID) + len(ARTICLE_ID)
    end = line.find(b'"', key + 1)
    if (line.startswith(ID_KEY) and line.startswith(COMMENT_KIND, id_end + 1) and key >= len(ARTICLE_ID)
            and line[key:key + 1] == b'"' and end > key and line.find(b"{", 1, key) < 0
            and line.find(b"\\", len(ID_KEY), id_end) < 0 and line.find(b"\\", key, end) < 0):
        return line[key + 1:end].decode("utf-8")
    record = _parse(line, path, offset)
    return record["article_id"] if record.get("kind") == "comment" else None


def _batches(path: Path) -> list[_Segment]:
    """The batches of records.jsonl (`ROWS_BATCH`) and the comment count of every
    article in the file, in one pass over its lines: only the lines where a batch may end
    are parsed whole. Until 2026-11-21 an article's comments were counted within its batch
    only, so comments moved to it from a page in another batch were left out."""
    batches: list[_Segment] = []
    start = offset = count = 0
    n_comments: Counter[str] = Counter()
    last_page = None
    with path.open("rb") as handle:
        for line in handle:
            if not line.isspace():
                if count >= ROWS_BATCH - 1:  # the batch's last record so far, or past it
                    page = page_of(_parse(line, path, offset))
                    if count >= ROWS_BATCH and page != last_page:
                        batches.append(_Segment(start, offset, n_comments))
                        start, count = offset, 0
                    last_page = page
                article = _comment_article(line, path, offset)
                if article is not None:
                    n_comments[article] += 1
                count += 1
            offset += len(line)
    return [*batches, _Segment(start, offset, n_comments)]


def _page_start(handle: BinaryIO, path: Path, offset: int) -> int:
    """The first byte at or after `offset` where a page's records begin: the start of the
    next line, moved past the rest of the page it belongs to. Only these few lines are
    parsed, whole (a page id may hold escapes and any character)."""
    if offset > 0:
        handle.seek(offset - 1)
        handle.readline()  # to the start of the next line
    else:
        handle.seek(0)
    page = None
    while True:
        start = handle.tell()
        line = handle.readline()
        if not line:
            return start
        if line.isspace():
            continue
        current = page_of(_parse(line, path, start))
        if page is not None and current != page:
            return start
        page = current


def _split(path: Path, batches: list[_Segment], size: float) -> list[_Segment]:
    """The batches cut at page starts into segments of about `size` bytes."""
    segments: list[_Segment] = []
    with path.open("rb") as handle:
        for batch in batches:
            parts = max(1, round((batch.end - batch.start) / size))
            cuts = [batch.start]
            for part in range(1, parts):
                target = batch.start + (batch.end - batch.start) * part // parts
                cut = _page_start(handle, path, max(target, cuts[-1]))
                if cuts[-1] < cut < batch.end:
                    cuts.append(cut)
            cuts.append(batch.end)
            segments.extend(_Segment(a, b, batch.n_comments) for a, b in zip(cuts[:-1], cuts[1:]))
    return segments


def _read_range(path: Path, start: int, end: int) -> Iterator[Record]:
    """The records of the lines that start in bytes [start, end) of a JSONL file. The range is
    read in one piece and its lines found with `find`: `readline` looks for a line's end a
    byte at a time (2% of export's instructions). The piece is a segment (whole pages of one
    batch), about as many bytes as its rows, which are held until they are written too."""
    with path.open("rb") as handle:
        handle.seek(start)
        data = handle.read(end - start)
        if data and not data.endswith(b"\n"):
            data += handle.readline()  # the last line runs on past `end`
    position = 0
    while position < len(data):
        line_end = data.find(b"\n", position) + 1 or len(data)
        line = data[position:line_end]  # with its newline, as `read_jsonl` parses a line
        if not line.isspace():
            yield _parse(line, path, start + position)
        position = line_end


def _range_rows(records_path: Path, config: export.Config, dedup_config: dedup.Config, sources: SourceIndex,
                job: tuple[list[_Segment], Path, Path]) -> _RangeRows:
    """The rows of some segments of records.jsonl into an articles and a comments file, a
    segment at a time, and the index entries of the articles; run in a worker, which reads
    its segments itself."""
    segments, articles_path, comments_path = job
    articles = JsonlWriter(articles_path)
    comments = JsonlWriter(comments_path)
    index: list[dedup.IndexEntry] = []
    for segment in segments:
        article_lines: list[bytes] = []
        comment_lines: list[bytes] = []
        for record in _read_range(records_path, segment.start, segment.end):
            record["source_lines"], record["source_offsets"] = sources.locate(
                record.get("source", ""), record.get("source_sha256", ""), record.get("line_numbers", []))
            if record.get("kind") == "comment":
                comment_lines.append(dump_line(export.comment_row(record, config)))
                continue
            row = export.article_row(record, segment.n_comments[record["id"]], config)
            article_lines.append(dump_line(row))
            # The row as articles.jsonl holds it: `build_index` of the written file.
            entry = dedup.index_entry(row, dedup_config)
            if entry is not None:
                index.append(entry)
        comments.write_lines(b"".join(comment_lines), len(comment_lines))
        articles.write_lines(b"".join(article_lines), len(article_lines))
    return _RangeRows(articles.close(), articles.count, comments.close(), comments.count, index)


def _concatenate(parts: list[Path], target: Path) -> str:
    """`parts` one after another into `target`, each removed once copied; the sha256 of
    `target`."""
    digest = hashlib.sha256()
    try:
        with target.open("wb") as out:
            for part in parts:
                with part.open("rb") as handle:
                    while chunk := handle.read(CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                part.unlink()
            out.flush()
            os.fsync(out.fileno())
    except OSError as err:
        full = disk_full(err, target)
        if full is not None:
            raise full from err
        raise
    return digest.hexdigest()


def _write_rows(folder: Path, records_path: Path, config: export.Config, dedup_config: dedup.Config,
                sources: SourceIndex, workers: int = 1) -> tuple[dict[str, Any], dict[str, Any]]:
    """articles.jsonl and comments.jsonl, their checksums and counts, and the dedup index
    of the articles. With one worker the batches are written in place, in this process;
    with more, the batches are cut into segments of whole pages, each made into part
    files by a worker of one pool for the whole export, and the parts are joined in order."""
    segments = _batches(records_path)
    if workers > 1:
        size = records_path.stat().st_size / (workers * SEGMENTS_PER_WORKER)
        segments = _split(records_path, segments, max(size, 1))
    if len(segments) == 1 or workers <= 1:
        jobs = [(segments, folder / "articles.jsonl", folder / "comments.jsonl")]
    else:
        jobs = [([segment], folder / f".part-{i:05d}-articles.jsonl", folder / f".part-{i:05d}-comments.jsonl")
                for i, segment in enumerate(segments)]
        sentence_tokenizer()  # loaded once here, for the forked workers to share
    parts = fork_map(partial(_range_rows, records_path, config, dedup_config, sources), jobs, workers)
    if len(parts) == 1:
        articles_sha256, comments_sha256 = parts[0].articles_sha256, parts[0].comments_sha256
    else:
        articles_sha256 = _concatenate([articles for _, articles, _ in jobs], folder / "articles.jsonl")
        comments_sha256 = _concatenate([comments for _, _, comments in jobs], folder / "comments.jsonl")
    outputs = {
        "articles.jsonl": {"sha256": articles_sha256, "records": sum(part.articles for part in parts)},
        "comments.jsonl": {"sha256": comments_sha256, "records": sum(part.comments for part in parts)},
    }
    index = dedup.assemble_index((entry for part in parts for entry in part.index), dedup_config)
    return outputs, index


def _same_content(old: Path, new: Path) -> bool:
    """Same files and same manifest apart from created_at."""
    for name in CONTENT_FILES:
        if not (old / name).is_file() or sha256_file(old / name) != sha256_file(new / name):
            return False
    try:
        a = json.loads((old / MANIFEST).read_text(encoding="utf-8"))
        b = json.loads((new / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    a.pop("created_at", None)
    b.pop("created_at", None)
    return bool(a == b)


def verify(corpus_dir: Path) -> list[str]:
    """Problems found by recomputing checksums and counts against the manifest."""
    manifest_path = corpus_dir / MANIFEST
    if not manifest_path.is_file():
        raise PipelineError(f"{manifest_path}: no manifest; not a corpus version folder")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        outputs: dict[str, Any] = manifest["outputs"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        return [f"{manifest_path}: unreadable manifest ({err})"]
    problems: list[str] = []
    for name, expected in sorted(outputs.items()):
        path = corpus_dir / name
        if not path.is_file():
            problems.append(f"{path}: missing")
            continue
        actual = sha256_file(path)
        if actual != expected["sha256"]:
            problems.append(f"{path}: sha256 {actual[:12]}… does not match the manifest's "
                            f"{expected['sha256'][:12]}…")
        if expected.get("records") is not None:
            try:
                count = sum(1 for _ in read_jsonl(path))
            except ValueError as err:
                problems.append(str(err))
                continue
            if count != expected["records"]:
                problems.append(f"{path}: {count} records, the manifest says {expected['records']}")
    known = set(outputs) | {MANIFEST}
    for extra in sorted(p.name for p in corpus_dir.iterdir() if p.name not in known):
        problems.append(f"{corpus_dir / extra}: not listed in the manifest")
    return problems
