"""Ingest: find the input pages, decode them, give each a stable id.

Every file found is accounted for: it becomes a record, or it is dropped or
quarantined with a reason that ends up in the manifest. One bad file never
stops the run.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
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
        "line_too_long",  # a line longer than `max_line_chars`: not a page (a dump, a minified blob)
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
    fallback_encodings: tuple[str, ...] = ("cp1252", "latin-1")  # preferred, in order, when detection ties
    # A UTF-8 file with a few corrupt bytes stays UTF-8 (bytes replaced and counted) when its
    # valid non-ASCII characters outnumber the invalid bytes this many times; else it is legacy.
    utf8_valid_ratio: float = 1.0
    # A page with a longer line (CR, LF or CRLF ends a line) is dropped: later stages hold a
    # line and its spans several times over, so one 50 MB line would cost gigabytes. The
    # longest line of the 965 dev-set pages is 2,589 characters; 40x that is still prose.
    max_line_chars: int = 100_000


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
    replaced_bytes: int | None = None  # invalid bytes replaced by U+FFFD, when any


def find_inputs(input_dir: Path, config: Config) -> Iterator[Path]:
    """Input files in a stable order (sorted relative paths), links included; hidden names
    and links to folders are not searched.

    A stream: one folder's names are listed and sorted at a time (~100 bytes a name),
    and a path exists only while it is used. The whole tree's `Path` objects, listed
    first, held ~360 bytes a file (tracemalloc: 8.4 MB for the 200 MB bench's 23,031)
    through the whole ingest. A folder's entries are sorted by name, with "/" after a
    folder's: that is the order of the relative paths (every path in folder `d` starts
    with `d/`, and a name holds no "/")."""
    yield from _walk(input_dir, config)


def _walk(folder: Path, config: Config) -> Iterator[Path]:
    """`find_inputs` under `folder`; a folder that cannot be listed holds nothing."""
    entries: list[tuple[str, bool]] = []  # (sort key, is a folder to search)
    try:
        with os.scandir(folder) as found:
            for entry in found:
                if entry.name.startswith("."):
                    continue
                try:
                    is_dir = entry.is_dir()  # a link to a folder is a folder: not a page, not searched
                except OSError:
                    is_dir = False
                if not is_dir:
                    entries.append((entry.name, False))
                elif not entry.is_symlink():
                    entries.append((entry.name + "/", True))
    except OSError:
        return
    entries.sort()
    for key, is_dir in entries:
        if is_dir:
            yield from _walk(folder / key[:-1], config)
        elif (folder / key).match(config.pattern):
            yield folder / key


def page_id(relative: str) -> str:
    """Stable id from the relative path: the path without its extension."""
    stem = relative[: -len(Path(relative).suffix)] if Path(relative).suffix else relative
    return stem


def site_key(relative: str) -> str:
    """The top-level sub-folder: pages of one site are usually stored together."""
    parts = Path(relative).parts
    return parts[0] if len(parts) > 1 else ""


def decode(data: bytes, config: Config) -> tuple[str, str, int]:
    """Decode bytes: BOM first, then UTF-8 (with replacement when the invalid bytes are
    a small part of otherwise valid UTF-8), then detection among legacy code pages.

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
    text = data.decode("utf-8", errors="replace")
    replaced = text.count("\ufffd")
    valid_non_ascii = sum(1 for char in text if char > "\x7f") - replaced
    if valid_non_ascii >= config.utf8_valid_ratio * replaced:
        return text, "utf-8", replaced
    encoding = _detect_legacy(data, config)
    if encoding is not None:
        return data.decode(encoding, errors="replace"), encoding, 0
    return text, "utf-8", replaced


def _detect_legacy(data: bytes, config: Config) -> str | None:
    """charset-normalizer's best guess; on a tie, or when a common code page reads the
    same text, name the common one (short pages fit several code pages equally)."""
    matches = list(from_bytes(data))
    if not matches:
        for encoding in config.fallback_encodings:
            try:
                data.decode(encoding)
                return encoding
            except UnicodeDecodeError:
                continue
        return None
    best = min(matches, key=lambda m: (m.chaos, -m.coherence))
    best_text = str(best)
    for common in config.fallback_encodings:
        tied = any(codecs.lookup(m.encoding).name == codecs.lookup(common).name
                   and (m.chaos, m.coherence) == (best.chaos, best.coherence) for m in matches)
        try:
            same = data.decode(common) == best_text
        except UnicodeDecodeError:
            same = False
        if tied or same:
            return codecs.lookup(common).name
    return codecs.lookup(best.encoding).name


# Control bytes other than tab, line feed, vertical tab, form feed and carriage return.
CONTROL_BYTES = bytes(byte for byte in range(32) if not 9 <= byte <= 13)


def looks_binary(data: bytes, config: Config) -> bool:
    """NUL bytes or many control bytes mean the file is not a text page.

    UTF-16/32 text has NUL bytes by nature, so a BOM exempts a file.
    """
    if any(data.startswith(bom) for bom, _ in BOMS):
        return False
    sample = data[:65536]
    if b"\x00" in sample:
        return True
    controls = len(sample) - len(sample.translate(None, CONTROL_BYTES))  # counted in C
    return bool(sample) and controls / len(sample) > config.binary_ratio


LINE_BREAK = re.compile(r"\r\n?|\n")


def longest_line(text: str) -> tuple[int, int]:
    """(1-based number, length) of the first longest line; one pass, no copies of the lines."""
    best_number, best_length = 1, 0
    start = 0
    number = 1
    for match in LINE_BREAK.finditer(text):
        if match.start() - start > best_length:
            best_number, best_length = number, match.start() - start
        start = match.end()
        number += 1
    if len(text) - start > best_length:
        best_number, best_length = number, len(text) - start
    return best_number, best_length


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
    if len(text) > config.max_line_chars:
        number, length = longest_line(text)
        if length > config.max_line_chars:
            return None, Fate(relative, "dropped", "line_too_long",
                              f"line {number} has {length} characters > ingest.max_line_chars="
                              f"{config.max_line_chars}", digest, len(data), encoding)
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
    return record, Fate(relative, "included", None, None, digest, len(data), encoding, replaced or None)
