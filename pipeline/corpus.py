"""The versioned corpus folder: written whole or not at all, never overwritten silently.

`<output>/corpus/<version>/` holds articles.jsonl, comments.jsonl, README.md (the
dataset card) and manifest.json, written last. A version that already exists
with the same content is left untouched (so its files stay byte-identical); with
different content the run stops unless --force. `<output>/corpus/LATEST` names
the newest version.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pipeline import __version__
from pipeline.config import ConfigBase, resolved_config
from pipeline.errors import InputError, PipelineError, VersionExistsError
from pipeline.executors.pool import fork_map
from pipeline.io import (JsonlWriter, disk_full, dumps, read_jsonl, replace_dir, sha256_file, sha256_text, write_json,
                         write_text)
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
        with collector_paused():  # the records and rows hold no reference cycles
            outputs = _write_rows(tmp, records_path, export_config, sources, workers)
        # Signatures of the kept articles, so a later batch can be deduplicated against
        # this version without reprocessing it (dedup.against).
        index = dedup.build_index(read_jsonl(tmp / "articles.jsonl"), config.dedup)  # type: ignore[attr-defined]
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


# Records made into rows at a time (whole pages): bounds export's memory whatever the corpus size.
ROWS_BATCH = 4096


def _page_batches(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    """The records in order, cut into batches of whole pages (a page's records are
    contiguous in every stage's output) of about `size` records."""
    batch: list[Record] = []
    last_page = None
    for record in records:
        page = page_of(record)
        if len(batch) >= size and page != last_page:
            yield batch
            batch = []
        batch.append(record)
        last_page = page
    if batch:
        yield batch


def _write_rows(folder: Path, records_path: Path, config: export.Config, sources: SourceIndex,
                workers: int = 1) -> dict[str, Any]:
    """articles.jsonl and comments.jsonl, a batch of whole pages at a time (a page's
    comments are counted for its article within the batch); checksums and counts."""
    articles = JsonlWriter(folder / "articles.jsonl")
    comments = JsonlWriter(folder / "comments.jsonl")
    tokenizer_loaded = False
    for records in _page_batches(read_jsonl(records_path), ROWS_BATCH):
        n_comments = Counter(record["article_id"] for record in records if record.get("kind") == "comment")

        def row(record: Record) -> tuple[bool, str]:
            """The record's row as a JSON line: serialised where it is made, so that workers
            send back one string, and the batch goes to its file in one write."""
            record["source_lines"], record["source_offsets"] = sources.locate(
                record.get("source", ""), record.get("source_sha256", ""), record.get("line_numbers", []))
            if record.get("kind") == "comment":
                return True, dumps(export.comment_row(record, config)) + "\n"
            return False, dumps(export.article_row(record, n_comments[record["id"]], config)) + "\n"

        if workers > 1 and not tokenizer_loaded and n_comments.total() < len(records):
            sentence_tokenizer()  # loaded once here, for the forked workers to share
            tokenizer_loaded = True
        rows = fork_map(row, records, workers)
        comment_lines = [line for is_comment, line in rows if is_comment]
        article_lines = [line for is_comment, line in rows if not is_comment]
        comments.write_lines("".join(comment_lines), len(comment_lines))
        articles.write_lines("".join(article_lines), len(article_lines))
    return {
        "articles.jsonl": {"sha256": articles.close(), "records": articles.count},
        "comments.jsonl": {"sha256": comments.close(), "records": comments.count},
    }


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
