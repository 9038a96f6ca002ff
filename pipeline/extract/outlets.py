"""Name a page's site from a list of known outlets (configs/metadata/outlets.yaml).

Used when the page's widgets do not name the site (pipeline/extract/head.py:find_site):
- a masthead line (a line above the headline; often a logo's alt text, "Moon of Alabama
  Brecht quote") that starts with an outlet's name, or holds one of its domains;
- else the page's input sub-folder, when it is named after an outlet's domain
  ("theduran.com/2017/raqqa.txt").

A name that is one word once articles are left out ("Time", "The Duran", "Le Monde") must be
the whole line, or be followed by a separator or a word like "logo": "Time to act" is not
Time magazine. Longer names ("Moon of Alabama") may be followed by anything.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.io import load_yaml

OUTLETS_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "metadata" / "outlets.yaml"

# Words that do not make a name specific: "The Duran" is as short as "Duran".
ARTICLES = frozenset({"the", "le", "la", "les", "l'", "al", "el"})
# What may follow a short name on its masthead line.
SEPARATORS = "|-–—:·•/»›("
MASTHEAD_WORDS = frozenset({"logo", "home", "homepage", "accueil", "menu"})
MAX_NAME_WORDS = 8  # the longest name looked up at the start of a line

_HOST = re.compile(r"(?<![\w.@-])(?:https?://)?(?:www\.)?((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24})\b",
                   re.IGNORECASE)
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Outlets:
    """Names (folded spelling -> the name to record) and domains (-> the name)."""

    names: dict[str, str]
    specific: frozenset[str]  # folded names that may be followed by any words
    domains: dict[str, str]


def _fold(text: str) -> str:
    return _SPACE.sub(" ", text).strip().casefold()


def _is_specific(name: str) -> bool:
    words = [w for w in re.split(r"[\s'’]+", name.casefold()) if w]
    return len([w for w in words if w not in ARTICLES and w + "'" not in ARTICLES]) >= 2


def load_outlets(path: Path = OUTLETS_CONFIG) -> Outlets:
    """Load and check an outlets.yaml; an error names the file and the entry."""
    data: Any = load_yaml(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("outlets"), list):
        raise ValueError(f"{path}: expected a mapping with an 'outlets' list")
    names: dict[str, str] = {}
    domains: dict[str, str] = {}
    for number, entry in enumerate(data["outlets"], 1):
        where = f"{path}: outlets[{number}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"].strip():
            raise ValueError(f"{where}: each outlet needs a 'name' string, got {entry!r}")
        unknown = set(entry) - {"name", "aliases", "domains"}
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}; expected name, aliases, domains")
        name = entry["name"].strip()
        for key in ("aliases", "domains"):
            value = entry.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
                raise ValueError(f"{where} ({name}): '{key}' must be a list of strings")
        for spelling in [name, *entry.get("aliases", [])]:
            folded = _fold(spelling)
            if names.get(folded, name) != name:
                raise ValueError(f"{where}: {spelling!r} already names {names[folded]!r}")
            names[folded] = name
        for domain in entry.get("domains", []):
            host = domain.strip().lower().removeprefix("www.")
            if not _HOST.fullmatch(host):
                raise ValueError(f"{where} ({name}): {domain!r} is not a host name")
            if domains.get(host, name) != name:
                raise ValueError(f"{where}: domain {domain!r} already belongs to {domains[host]!r}")
            domains[host] = name
    return Outlets(names, frozenset(n for n in names if _is_specific(n)), domains)


@functools.lru_cache(maxsize=8)
def cached_outlets(path: Path) -> Outlets:
    return load_outlets(path)


def from_masthead(line: str, outlets: Outlets) -> str | None:
    """The outlet a masthead line names: by the longest name it starts with, else by a
    domain in it."""
    text = _SPACE.sub(" ", line).strip()
    folded = text.casefold()
    words = folded.split(" ")
    for count in range(min(MAX_NAME_WORDS, len(words)), 0, -1):
        key = " ".join(words[:count])
        # A name may end in punctuation of its own ("Antiwar.com"); else cut trailing marks.
        for candidate in (key, key.rstrip(SEPARATORS + ".,;!?\"'")):
            name = outlets.names.get(candidate)
            if name is None:
                continue
            rest = folded[len(candidate):].strip()
            if (not rest or candidate in outlets.specific or rest[0] in SEPARATORS
                    or rest.split(" ")[0].strip(SEPARATORS) in MASTHEAD_WORDS):
                return name
    for match in _HOST.finditer(text):
        name = from_host(match.group(1), outlets)
        if name is not None:
            return name
    return None


def from_host(host: str, outlets: Outlets) -> str | None:
    """The outlet a host name belongs to: itself or a parent domain ("edition.cnn.com")."""
    parts = host.lower().removeprefix("www.").split(".")
    for start in range(len(parts) - 1):
        name = outlets.domains.get(".".join(parts[start:]))
        if name is not None:
            return name
    return None


def name_site(masthead: Sequence[str], folder: str, outlets: Outlets | Path) -> str | None:
    """The site from the masthead lines (top first), else from the input sub-folder's name."""
    if isinstance(outlets, Path):
        outlets = cached_outlets(outlets)
    for line in masthead:
        name = from_masthead(line, outlets)
        if name is not None:
            return name
    if folder and _HOST.fullmatch(folder.strip()):
        return from_host(folder.strip(), outlets)
    return None
