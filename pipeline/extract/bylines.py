"""Read author bylines ("By A and B", "Par X, 28 mars 2016", "Via Zerohedge") from one line.

The prefixes, connector words and stop words are data, in
configs/metadata/bylines.yaml; this module only holds the logic that applies them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.extract.comments import prefix_rule
from pipeline.extract.dates import MONTHS, WEEKDAYS, find_date, find_date_at_start, strip_weekday
from pipeline.io import load_yaml
from pipeline.patterns import Pattern, compile_pattern

# The shipped pattern file; tests may load another through load_byline_config.
BYLINES_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "metadata" / "bylines.yaml"

# A byline is a short line; a longer one starting with "By" is a sentence ("By then, ...").
MAX_BYLINE_WORDS = 24
# A role before the name has a word or two before its role word ("guest writer", "Senior
# Staff Writer", "notre envoyé spécial"): the role word is among this many first tokens.
ROLE_PREFIX_MAX_TOKENS = 4
# Personal names are rarely longer than this ("Eresh Omar Jamal", "Ludwig van Beethoven").
MAX_NAME_TOKENS = 5
# A lone name line is 2-4 words: one word is too often a label, five is usually a heading.
LONE_NAME_MIN_TOKENS = 2
LONE_NAME_MAX_TOKENS = 4
# An outlet after "via" is a short name ("Zerohedge", "The Anti Media").
MAX_VIA_TOKENS = 6
# Longest handle accepted as an author ("Posted by b", "posted by lasagnechef").
MAX_HANDLE_CHARS = 30
# Characters trimmed from the ends of an author or outlet once it is cut out of the line.
EDGE_PUNCTUATION = " \t,;:|-–—/·•\"“”'‘’"

# A name word: letters with ' or - inside ("O'Brien", "Jean-Pierre"), or initials ("J.", "J.R.");
# a dot inside a word makes a domain ("About.com"), not a name.
_CAPITALISED_TOKEN = re.compile(r"^(?:[^\W\d_][^\W\d]*(?:['’\-][^\W\d]+)*\.?|(?:[^\W\d_]\.){1,3})$")
_HANDLE_TOKEN = re.compile(r"^[\w.\-]+$")
_INITIAL = re.compile(r"^[^\W\d_]\.$")
# A month and day without a year ("By Spencer Rascoff Nov. 5"): not a parseable date, not a name.
_PARTIAL_DATE = re.compile(
    # (?<!\s): tried from the start of a run of spaces only, so a long run costs linear time.
    r"(?<!\s)\s+(?:" + "|".join(sorted(map(re.escape, MONTHS), key=len, reverse=True)) + r")\W{0,2}\d",
    re.IGNORECASE,
)
# A weekday after the name starts the date ("Posted By Stephen M. Walt Thursday, August 9").
_WEEKDAY = re.compile(
    r"(?<!\s)\s+(?:" + "|".join(w for w in WEEKDAYS if len(w) > 4) + r")\b", re.IGNORECASE
)
# An outlet name ends at a comma ("via Khamenei, 12 December").
_COMMA = re.compile(",")
# A byline's tail after the date is widgets ("| Permalink", "0 Comments"), not a sentence's end.
_SENTENCE_END = re.compile(r"[.!?][\"'”’»)\]]*\s*$")
_SENTENCE_PUNCTUATION = re.compile(r"[!?;:,\"“”«»()\[\]@#/|]|\.\s|\.$|https?:|www\.")


@dataclass(frozen=True)
class Byline:
    """What one byline line says: who wrote it, when, and where it was taken from."""

    authors: tuple[str, ...]
    published: str | None
    via: str | None
    kind: str


@dataclass(frozen=True)
class BylineConfig:
    """The compiled contents of a bylines.yaml file."""

    prefixes: tuple[tuple[str, re.Pattern[str]], ...]
    handle_kinds: frozenset[str]
    date_label: re.Pattern[str]
    via_connector: re.Pattern[str]
    terminator: re.Pattern[str]
    connector: re.Pattern[str]
    name_particles: frozenset[str]
    not_name_words: frozenset[str]
    role_words: frozenset[str]
    honorifics: frozenset[str]
    meta_label: re.Pattern[str]
    name_date_connector: re.Pattern[str]
    date_prepositions: frozenset[str]
    widget_phrase: re.Pattern[str]
    title_count_suffix: re.Pattern[str]


def _compile(path: Path, section: str, pattern: object, flags: int = re.IGNORECASE) -> Pattern:
    """Compile one pattern, naming the file, section and pattern when it is not a valid regex."""
    if not isinstance(pattern, str) or not pattern:
        raise ValueError(f"{path}: {section}: pattern must be a non-empty string, got {pattern!r}")
    return compile_pattern(pattern, f"{path}: {section}", flags)  # time-bounded if its shape is risky


def _string_list(path: Path, data: dict[str, Any], key: str) -> list[str]:
    """A required list of strings from the config, or a ValueError naming the file and key."""
    value = data.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{path}: '{key}' must be a list of strings")
    return value


def _joined(path: Path, section: str, patterns: list[str], flags: int = re.IGNORECASE) -> re.Pattern[str]:
    """Validate each pattern on its own (for a precise error), then join them into one."""
    for p in patterns:
        _compile(path, section, p, flags)
    return _compile(path, section, "|".join(f"(?:{p})" for p in patterns), flags)


def load_byline_config(path: Path = BYLINES_CONFIG) -> BylineConfig:
    """Load and validate a bylines.yaml; every error names the file and the bad entry."""
    data = load_yaml(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    raw_prefixes = data.get("prefixes")
    if not isinstance(raw_prefixes, list) or not raw_prefixes:
        raise ValueError(f"{path}: 'prefixes' must be a non-empty list")
    prefixes: list[tuple[str, re.Pattern[str]]] = []
    for entry in raw_prefixes:
        if not isinstance(entry, dict) or not isinstance(entry.get("kind"), str):
            raise ValueError(f"{path}: prefixes: each entry needs 'kind' and 'pattern', got {entry!r}")
        pattern = entry.get("pattern")
        _compile(path, "prefixes", pattern)
        # Whole words only, then an optional colon ("Written By: X").
        prefixes.append((entry["kind"], _compile(path, "prefixes", rf"^(?:{pattern})(?![\w])\s*+:?\s*+")))
    via = data.get("via_connector")
    return BylineConfig(
        prefixes=tuple(prefixes),
        handle_kinds=frozenset(_string_list(path, data, "handle_kinds")),
        date_label=_compile(
            path, "date_labels", rf"^(?:{'|'.join(_string_list(path, data, 'date_labels'))})(?![\w])\s*+:?\s*+"
        ),
        via_connector=_compile(path, "via_connector", via),
        terminator=_joined(path, "terminators", _string_list(path, data, "terminators"), flags=0),
        connector=_joined(path, "connectors", _string_list(path, data, "connectors")),
        name_particles=frozenset(w.lower() for w in _string_list(path, data, "name_particles")),
        not_name_words=frozenset(w.lower() for w in _string_list(path, data, "not_name_words")),
        role_words=frozenset(w.lower() for w in _string_list(path, data, "role_words")),
        honorifics=frozenset(w.lower() for w in _string_list(path, data, "honorifics")),
        meta_label=_compile(
            path,
            "meta_labels",
            r"^(?:" + "|".join(re.escape(w) for w in _string_list(path, data, "meta_labels")) + r")(?![\w])",
        ),
        # Matched case-sensitively ("on", not "On" starting a sentence), ending right where the date starts.
        name_date_connector=_compile(
            path, "name_date_connectors",
            r"\s+(?:" + "|".join(_string_list(path, data, "name_date_connectors")) + r")\s+$", flags=0,
        ),
        date_prepositions=frozenset(w.lower() for w in _string_list(path, data, "date_prepositions")),
        widget_phrase=_compile(
            path, "widget_phrases", rf"^(?:{'|'.join(_string_list(path, data, 'widget_phrases'))})(?![\w])"
        ),
        title_count_suffix=_compile(
            path, "title_count_suffix", rf"(?:{_compile(path, 'title_count_suffix', data.get('title_count_suffix')).pattern})\s*+$"
        ),
    )


CONFIG = load_byline_config()
# Read at import, not on a process's first page: forked worker processes inherit them.
for _kind, _prefix in CONFIG.prefixes:
    prefix_rule(_prefix)


def _tokens(text: str) -> list[str]:
    return text.split()


def _bare(token: str) -> str:
    """A token lower-cased without edge punctuation, for word-list look-ups."""
    return token.strip(".,;:!?'’\"“”()").lower()


def is_person_name(text: str, allow_handle: bool = False, config: BylineConfig = CONFIG) -> bool:
    """True for 'Tim Anderson', 'A. Pawlowski', 'Ludwig van Beethoven'; a handle ('b') if allowed."""
    tokens = _tokens(text)
    if not 1 <= len(tokens) <= MAX_NAME_TOKENS:
        return False
    if any(_bare(t) in config.not_name_words for t in tokens):
        return False
    if len(tokens) == 1 and allow_handle and len(text) <= MAX_HANDLE_CHARS and _HANDLE_TOKEN.match(text):
        return not text.isdigit()
    for position, token in enumerate(tokens):
        if token.lower() in config.name_particles and 0 < position < len(tokens) - 1:
            continue  # "van", "al", "de" inside a name
        if not _CAPITALISED_TOKEN.match(token) or not token[0].isupper():
            return False
    # A lone initial ("J.") is not a name; "J. Smith" is.
    return not (len(tokens) == 1 and _INITIAL.match(tokens[0]))


def looks_like_name(line: str, config: BylineConfig = CONFIG) -> bool:
    """True for a line that is only a person's name: 2-4 capitalised words, no sentence marks."""
    text = " ".join(line.split())
    tokens = _tokens(text)
    if not LONE_NAME_MIN_TOKENS <= len(tokens) <= LONE_NAME_MAX_TOKENS:
        return False
    # Periods are allowed only as initials ("Erica E. Phillips").
    without_initials = " ".join(t for t in tokens if not _INITIAL.match(t))
    if _SENTENCE_PUNCTUATION.search(without_initials) or any(ch.isdigit() for ch in text):
        return False
    return is_person_name(text, allow_handle=False, config=config)


def _cut(text: str, pattern: re.Pattern[str]) -> str:
    """`text` up to the first match of `pattern` (all of it when there is none)."""
    m = pattern.search(text)
    return text[: m.start()] if m else text


def _authors(region: str, allow_handle: bool, config: BylineConfig) -> tuple[str, ...] | None:
    """Split the author part into names; None when a part is neither a name nor a role."""
    region = region.strip(EDGE_PUNCTUATION)
    if not region:
        return ()
    names: list[str] = []
    for part in config.connector.split(region):
        part = part.strip(EDGE_PUNCTUATION)
        if not part:
            continue
        if not names:
            part = _without_role(part, allow_handle, config)
        if names and any(_bare(t) in config.role_words for t in _tokens(part)):
            break  # "by Roy Lessin, DaySpring Co-Founder": the rest is a role or affiliation
        if is_person_name(part, allow_handle, config):
            names.append(_without_full_stop(part))
        elif names and part[0].isupper():
            break  # "By Dan Cross, About.com Guide": an affiliation ends the list
        else:
            return None  # "By Monday, the troops ...": a sentence, not a byline
    return tuple(names)


def _without_role(part: str, allow_handle: bool, config: BylineConfig) -> str:
    """The name after a role that introduces it ("by guest writer Jane Roe", "By Staff Writer
    Jane Roe", "par notre correspondant Jean Dupont"): what follows the last role word among
    the first ROLE_PREFIX_MAX_TOKENS tokens, when that is a name. Unchanged otherwise."""
    tokens = _tokens(part)
    if is_person_name(part, allow_handle, config):
        return part
    roles = [k for k, t in enumerate(tokens[:ROLE_PREFIX_MAX_TOKENS]) if _bare(t) in config.role_words]
    if not roles or roles[-1] == len(tokens) - 1:
        return part
    name = " ".join(tokens[roles[-1] + 1:])
    return name if is_person_name(name, False, config) else part


def _without_full_stop(name: str) -> str:
    """A name without the period that ends its sentence ("... by Jane Roe."), which a last word
    of three letters or more cannot hold as an abbreviation ("J.", "Jr." keep theirs)."""
    last = name.rsplit(None, 1)[-1]
    return name[:-1] if last.endswith(".") and len(last) > 3 and "." not in last[:-1] else name


def _via(region: str, config: BylineConfig) -> str | None:
    """The outlet named after 'via', if it reads like a name or a domain."""
    outlet = _cut(_cut(region, config.terminator), _COMMA).strip(EDGE_PUNCTUATION)
    tokens = _tokens(outlet)
    if not 1 <= len(tokens) <= MAX_VIA_TOKENS:
        return None
    if not (outlet[0].isupper() or outlet[0].isdigit() or "." in tokens[0]):
        return None  # "via the new road": a sentence, not an outlet
    return outlet


def _strip_leading_date(text: str, config: BylineConfig) -> tuple[str, str | None]:
    """'Posted on Dec 12, 2016 by b' -> ('by b', iso); unchanged text when there is no such date."""
    label = config.date_label.match(text)
    start = label.end() if label else 0
    start += len(text[start:]) - len(strip_weekday(text[start:]))
    found = find_date_at_start(text[start:])
    if found is None:
        return text, None
    iso, _, end = found
    return text[start + end:].lstrip(EDGE_PUNCTUATION), iso


def _name_on_date(text: str, config: BylineConfig) -> Byline | None:
    """A byline without a prefix: a 2-4 word name, a connector word, the date ("Jane Roe on
    March 6, 2018 | Permalink", "Jean Dupont le 6 mars 2018"). What follows the date must
    not end a sentence: "Jane Roe on March 6, 2018 signed the bill." is a sentence."""
    found = find_date(text)
    if found is None:
        return None
    m = config.name_date_connector.search(text, 0, found[1])
    if m is None or m.end() != found[1]:
        return None
    name = text[: m.start()].strip(EDGE_PUNCTUATION)
    if not looks_like_name(name, config) or _SENTENCE_END.search(text[found[2]:]):
        return None
    return Byline((name,), found[0], None, "name_on_date")


# parse_byline's results by (line, allow_lone_name, id(config)); each entry keeps its
# config alive, so that the id is not reused while the entry is here.
_PARSED: dict[tuple[str, bool, int], tuple[BylineConfig, Byline | None]] = {}
_MAX_PARSED = 8192  # the metadata stage asks about the same few head lines several times


# The prefixes of a config that a text starting with a given character may match, in
# order, by (id(config), character); each entry keeps its config alive (see _PARSED).
_PREFIXES_BY_FIRST: dict[tuple[int, str], tuple[BylineConfig, tuple[tuple[str, re.Pattern[str]], ...]]] = {}


def _prefixes_for(config: BylineConfig, first: str) -> tuple[tuple[str, re.Pattern[str]], ...]:
    """config.prefixes, less those that cannot match a text starting with `first` (its
    first character, "" for an empty text): see comments._Rule for how that is read."""
    key = (id(config), first)
    cached = _PREFIXES_BY_FIRST.get(key)
    if cached is not None and cached[0] is config:
        return cached[1]
    kept = []
    for kind, prefix in config.prefixes:
        rule = prefix_rule(prefix)
        if not first:
            if rule.min_len == 0:
                kept.append((kind, prefix))
        elif rule.min_len == 0 or rule.first is None or rule.first.fullmatch(first) is not None:
            kept.append((kind, prefix))
    if len(_PREFIXES_BY_FIRST) >= _MAX_PARSED:
        _PREFIXES_BY_FIRST.clear()
    _PREFIXES_BY_FIRST[key] = (config, tuple(kept))
    return tuple(kept)


def parse_byline(line: str, allow_lone_name: bool = False, config: BylineConfig = CONFIG) -> Byline | None:
    """The byline a line states, or None; a bare name line counts only with `allow_lone_name`."""
    key = (line, allow_lone_name, id(config))
    cached = _PARSED.get(key)
    if cached is not None and cached[0] is config:
        return cached[1]
    byline = _parse_byline(line, allow_lone_name, config)
    if len(_PARSED) >= _MAX_PARSED:
        _PARSED.clear()
    _PARSED[key] = (config, byline)
    return byline


def _parse_byline(line: str, allow_lone_name: bool, config: BylineConfig) -> Byline | None:
    if len(line.split(None, MAX_BYLINE_WORDS)) > MAX_BYLINE_WORDS:
        return None  # more words than a byline has (a paragraph is not split to the end to count them)
    text = " ".join(line.split())
    if not text:
        return None
    rest, leading_date = _strip_leading_date(text, config)
    for kind, prefix in _prefixes_for(config, rest[:1]):
        m = prefix.match(rest)
        if m:
            break
    else:
        if allow_lone_name and leading_date is None and looks_like_name(text, config):
            return Byline((text,), None, None, "lone_name")
        return _name_on_date(text, config)
    rest = rest[m.end():]
    found = find_date(rest)
    published = leading_date or (found[0] if found else None)
    # Everything from the date on is not a name ("Par Stephen Lendman, 28 mars 2016").
    before_date = rest[: found[1]] if found else rest
    if kind == "via":
        via = _via(before_date, config)
        return Byline((), published, via, kind) if via else None
    via_match = config.via_connector.search(before_date)
    via = _via(before_date[via_match.end():], config) if via_match else None
    names_region = before_date[: via_match.start()] if via_match else before_date
    names_region = _cut(_cut(_cut(names_region, _PARTIAL_DATE), _WEEKDAY), config.terminator)
    if leading_date is not None and kind in ("by", "par"):
        kind = "posted_by"  # "Posted on <date> by b" says as much as "Posted by b on <date>"
    # "by randfish on December 29, 2010": a date after the name makes a handle safe too.
    allow_handle = kind in config.handle_kinds or (found is not None and found[1] > 0)
    authors = _authors(names_region, allow_handle, config)
    if not authors:
        return None
    if kind in ("by", "par") and found is None and len(authors) == 1 and _is_capitals_word(authors[0]):
        return None  # "BY TEAM", "BY POSITION": a sorting or filter label, not a writer
    return Byline(authors, published, via, kind)


def _is_capitals_word(text: str) -> bool:
    """One word of two or more letters, all in capitals ("WEEK", "SEASON"). After a bare "By"
    it sorts or filters a list; a writer in capitals comes with a first name ("BY JOHN SMITH")."""
    return " " not in text and sum(ch.isalpha() for ch in text) >= 2 and text.isupper()
