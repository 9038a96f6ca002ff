"""Ingest: find the input pages, decode them, give each a stable id.

Every file found is accounted for: it becomes a record, or it is dropped or
quarantined with a reason that ends up in the manifest. One bad file never
stops the run.
"""

from __future__ import annotations

import codecs
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from charset_normalizer import from_bytes

from pipeline.stage import Record, StageConfig

NAME = "ingest"
REASONS = frozenset(
    {
        "empty",  # the file has no text (0 bytes or whitespace only)
        "too_large",  # larger than `max_bytes`
        "binary",  # NUL bytes or mostly non-text: not a scraped page
        "undecodable",  # no encoding fits
        "symlink_outside",  # a link leading outside the input folder; not followed
        "unreadable",  # the OS refused to read it
    }
)

BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


class Config(StageConfig):
    pattern: str = "*.txt"  # file names to read, searched recursively
    max_bytes: int = 64 * 1024 * 1024  # larger files are quarantined, not read into memory
    binary_ratio: float = 0.05  # share of NUL/control bytes above which a file is binary
    fallback_encodings: tuple[str, ...] = ("cp1252", "latin-1")  # tried in order when detection is unsure


@dataclass(frozen=True)
class Fate:
    """What became of one input file."""

    source: str
    status: str  # "included", "dropped" or "quarantined"
    reason: str | None = None
    message: str | None = None
    sha256: str | None = None
    bytes: int = 0
    encoding: str | None = None


def find_inputs(input_dir: Path, config: Config) -> Iterator[Path]:
    """Input files in a stable order (sorted relative paths), links included."""
    found: list[Path] = []
    for root, dirs, files in os.walk(input_dir, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            path = Path(root) / name
            if path.match(config.pattern) and not name.startswith("."):
                found.append(path)
    yield from sorted(found, key=lambda p: p.relative_to(input_dir).as_posix())


def page_id(relative: str) -> str:
    """Stable id from the relative path: the path without its extension."""
    stem = relative[: -len(Path(relative).suffix)] if Path(relative).suffix else relative
    return stem


def site_key(relative: str) -> str:
    """The top-level sub-folder: pages of one site are usually stored together."""
    parts = Path(relative).parts
    return parts[0] if len(parts) > 1 else ""


def decode(data: bytes, config: Config) -> tuple[str, str, int]:
    """Decode bytes: BOM first, then strict UTF-8, then detection, then fallbacks.

    Returns (text, encoding, number of replaced invalid bytes).
    """
    for bom, encoding in BOMS:
        if data.startswith(bom):
            text = data.decode(encoding, errors="replace")
            return text, encoding, text.count("\ufffd")
    try:
        return data.decode("utf-8"), "utf-8", 0
    except UnicodeDecodeError:
        pass
    best = from_bytes(data).best()
    if best is not None and best.encoding:
        encoding = codecs.lookup(best.encoding).name
        text = data.decode(encoding, errors="replace")
        for common in config.fallback_encodings:
            # Short pages fit several code pages; name the common one when it reads the same.
            try:
                if data.decode(common) == text:
                    return text, codecs.lookup(common).name, 0
            except UnicodeDecodeError:
                continue
        return text, encoding, text.count("\ufffd")
    for encoding in config.fallback_encodings:
        try:
            return data.decode(encoding), encoding, 0
        except UnicodeDecodeError:
            continue
    text = data.decode("utf-8", errors="replace")
    return text, "utf-8", text.count("\ufffd")


def looks_binary(data: bytes, config: Config) -> bool:
    """NUL bytes or many control bytes mean the file is not a text page.

    UTF-16/32 text has NUL bytes by nature, so a BOM exempts a file.
    """
    if any(data.startswith(bom) for bom, _ in BOMS):
        return False
    sample = data[:65536]
    if b"\x00" in sample:
        return True
    controls = sum(1 for byte in sample if byte < 9 or 13 < byte < 32)
    return bool(sample) and controls / len(sample) > config.binary_ratio


def read_page(path: Path, input_dir: Path, config: Config) -> tuple[Record | None, Fate]:
    """Read one input file into a page record, or say why not."""
    relative = path.relative_to(input_dir).as_posix()
    if path.is_symlink():
        target = path.resolve()
        if not target.is_relative_to(input_dir.resolve()):
            return None, Fate(relative, "dropped", "symlink_outside", f"links to {target}")
    try:
        size = path.stat().st_size
        if size > config.max_bytes:
            return None, Fate(relative, "quarantined", "too_large",
                              f"{size} bytes > ingest.max_bytes={config.max_bytes}", bytes=size)
        data = path.read_bytes()
    except OSError as err:
        return None, Fate(relative, "quarantined", "unreadable", str(err))
    digest = hashlib.sha256(data).hexdigest()
    if looks_binary(data, config):
        return None, Fate(relative, "quarantined", "binary", "NUL or control bytes: not a text page",
                          digest, len(data))
    text, encoding, replaced = decode(data, config)
    if not text.strip():
        return None, Fate(relative, "dropped", "empty", "no text", digest, len(data), encoding)
    record: Record = {
        "id": page_id(relative),
        "source": relative,
        "source_sha256": digest,
        "site_key": site_key(relative),
        "bytes": len(data),
        "encoding": encoding,
        "replaced_bytes": replaced,
        "text": text,
    }
    return record, Fate(relative, "included", None, None, digest, len(data), encoding)
