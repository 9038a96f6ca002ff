"""Boilerplate removal: drop navigation, widgets and prompts line by line; keep all a later stage needs.

A corpus stage. `learn` finds lines repeated on many pages of one site (templates).
`process` decides every non-blank line from, in this order: the user's pins, the
phrase and regex rules of the pattern files, the learned templates, and text-only
signals (word count, stopword density, sentence-final punctuation, title case,
digits and symbols, link-like separators); then a context pass decides the
undecided short lines from their neighbours.

The classifier and the context pass follow jusText (Pomikálek, "Removing
Boilerplate and Duplicate Content from Web Corpora", PhD thesis, Masaryk
University 2011, ch. 3; https://corpus.tools/wiki/Justext/Algorithm): blocks are
first classified without context by length and stopword density, then short
blocks take the class of their nearest decided neighbours, and a short block
shortly before good text counts as a heading and stays. Here blocks are lines of
plain text, and the revision is biased to keep: this stage runs before the split
and metadata stages, so comments, comment headers, related teasers, titles,
bylines and datelines must survive, and a short line is removed only when
boilerplate surrounds it on both sides.

Every removed line becomes a span (its reason, its newline) and a marker
`[index of the next kept output line, reason]` for the split stage.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline.document import Line, Span, apply_spans, line_span, split_lines
from pipeline.stage import ConfigPath, Outcome, Record, StageConfig

NAME = "boilerplate"

REASONS: frozenset[str] = frozenset(
    {
        "navigation",  # menu items, account and policy links, taxonomy lines ("Tags: ...")
        "donation",  # donate / support-us appeals, Patreon and PayPal prompts, amount pickers
        "comment_widget",  # comment-form and thread chrome: "Leave a Reply", "Notify of", "avatar"
        "comments_heading",  # the heading that opens a thread: "12 Comments", "3 thoughts on ..."
        "share",  # share / follow prompts and social-network button labels
        "newsletter",  # newsletter, e-mail and RSS subscription prompts
        "cookie",  # cookie-consent notices and their buttons
        "pagination",  # next / previous page, "Continue Reading", page numbers
        "advertisement",  # "Advertisement", "Sponsored" labels
        "view_counter",  # "10,645 Views"
        "publish_stub",  # "Published" / "on" labels whose value the scrape lost
        "photo_credit",  # a credit alone on its line: "© Name / Reuters", "Photo: AP"
        "feed_header",  # the header over a feed: "Latest", "Trending", "Related Posts"
        "site_header",  # masthead chrome: "Skip to content", "Menu", "Search"
        "legal",  # footer lines: "© 2016 Site. All rights reserved", "Powered by WordPress"
        "template",  # a line learned as repeated on many pages of the same site
        "pinned",  # a line the user pinned as boilerplate in the config
        "link_list",  # short menu-like items joined by | » › • · separators
        "empty_widget",  # a line without words: lone separators, bare numbers, amount pickers
        "short_context",  # a short undecided line with boilerplate on both sides (jusText rule)
    }
)

KEEP = "keep"
"""Pattern-file reason for lines later stages need: never removed by templates or context."""

GOOD, BAD, WEAK, SHORT, PROTECTED = "good", "bad", "weak", "short", "protected"
"""Line classes: text, boilerplate, boilerplate-if-next-to-boilerplate, undecided, keep-rule hit."""


class Config(StageConfig):
    """Boilerplate stage settings. Figures in the comments are from dragnet-train (965 pages,
    `python -m pipeline.eval.boilerplate_devset`): mean per-page bag-of-words F1 of the kept text
    against the gold article, and the number of pages keeping < 0.97 of their article tokens."""

    patterns: tuple[ConfigPath, ...] = (Path("boilerplate/en.yaml"), Path("boilerplate/fr.yaml"))
    # English and French function-word lists for the stopword-density signal.
    stopwords: ConfigPath = Path("boilerplate/stopwords.yaml")
    # A line on at least this many pages of one site is a template. Measured with one site key
    # for all pages: of the learned lines' occurrences, 0.68% / 0.50% / 0.35% are gold-article
    # lines at 3 / 5 / 8 pages; F1 0.660 / 0.646 / 0.633, pages under 0.97 recall 45 / 33 / 30.
    template_min_pages: int = 5
    # Lines of more words than this are never learned: repeated long lines are syndicated text
    # or related-feed teasers, which the split stage needs; menus and widget labels are short.
    template_max_words: int = 8
    pin: tuple[str, ...] = ()  # user-pinned template lines (always boilerplate, every site)
    veto: tuple[str, ...] = ()  # user-vetoed template lines (never learned)
    # Lines longer than this (characters) skip the pattern rules, which bounds regex work per
    # line (the stage stays linear). With no cap, the longest line any rule matched is 268.
    pattern_max_chars: int = 400
    # "Good" (prose) = at least this many words at this stopword density (jusText's length and
    # density test). Of lines of 10+ words, the share found verbatim in gold article+comments is
    # 0.13-0.19 below density 0.25, 0.26 at 0.25, 0.51 at 0.35, 0.86 at 0.5+. The bar sits low
    # because a good line only shields its neighbours and keeping is the safe error; 0.20-0.30
    # and 10-12 words move F1 by < 0.006.
    good_min_words: int = 10
    good_min_stopword_density: float = 0.25
    # ... or a sentence end, this many words and this density (6-9-word sentences: 0.25 found in
    # gold at density 0.15-0.25, 0.59 at 0.5+; 0.10-0.20 moves F1 by < 0.002).
    sentence_min_words: int = 6
    sentence_min_stopword_density: float = 0.15
    # Lines at least this share Title Case are never prose without a sentence end (menus and
    # headlines); 0.8 / 0.9 / off give F1 0.649 / 0.646 / 0.644 at equal recall.
    title_case_max_share: float = 0.9
    # A link list is at least this many separator-joined segments of at most this many words
    # ("Home | News | Contact"). Two segments gain 0.0006 F1 but catch "Name | date" headers.
    link_list_min_segments: int = 3
    link_segment_max_words: int = 4
    # A short line this close (characters of the lines in between) before good text is a
    # heading and stays: jusText's MAX_HEADING_DISTANCE. 0 / 100 / 200 give F1 0.658 / 0.652 /
    # 0.646 and 52 / 38 / 33 pages under 0.97 recall: titles matter more here than F1.
    heading_max_chars: int = 200
    # Page edges count as boilerplate neighbours, as in jusText: pages open with mastheads and
    # close with footers (off: F1 0.645, 31 pages under 0.97 recall).
    edges_are_boilerplate: bool = True


# --- patterns ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    """One pattern-file entry's verdict: a reason, and whether it needs boilerplate next to it."""

    reason: str
    context: bool


@dataclass(frozen=True)
class Rules:
    """Compiled pattern files: exact phrases by phrase key, regexes in file order.

    `any_regex` / `keep_regex` join all regexes of a kind in one alternation, a single
    call in C that rejects the many lines matching none. Only a hit runs `named_regex`, the
    same alternation with a group per regex (slower), whose matching group names the rule:
    alternatives are tried in file order, so the first matching regex wins, as in a loop.
    """

    phrases: dict[str, Rule]
    keep_phrases: frozenset[str]
    regexes: tuple[tuple[re.Pattern[str], Rule], ...]
    any_regex: re.Pattern[str] | None
    named_regex: re.Pattern[str] | None
    keep_regex: re.Pattern[str] | None


BULLETS = re.compile(r"^[\s•·*▪►●◦‣⁃–—-]+")
TRAILING = re.compile(r"[\s:»›|.…>→–—-]+$")
WORD = re.compile(r"[^\W\d_]+")
DIGIT = re.compile(r"\d")
SEPARATORS = re.compile(r"\s*[|»›•·]\s*")
LINK_MARKS = re.compile(r"[|»›•·]|https?://|www\.|\bread more\b", re.IGNORECASE)
LINKISH_SYMBOLS = frozenset("|»›«‹•·><→←")
SENTENCE_END = re.compile(r"[.!?…:;][\"'”’»)\]]*$")
DATE_OR_TIME = re.compile(r"^[\d\s:./,-]+(am|pm|utc|gmt)?$", re.IGNORECASE)
RULE_KEYS = frozenset({"reason", "phrases", "regexes", "context"})


def normalise(text: str) -> str:
    """The comparison form of a line: NFKC, case-folded, spaces collapsed (templates, pins)."""
    return " ".join(unicodedata.normalize("NFKC", text).split()).casefold()


@dataclass(frozen=True, slots=True)
class Forms:
    """The three comparison forms of one line, computed once."""

    key: str  # `normalise`: templates and pins
    phrase: str  # `key` minus leading bullets and trailing separators: phrase lookup
    subject: str  # NFKC, spaces collapsed, leading bullets removed, case kept: regexes


def line_forms(text: str) -> Forms:
    collapsed = " ".join(unicodedata.normalize("NFKC", text).split())
    key = collapsed.casefold()
    return Forms(key, TRAILING.sub("", BULLETS.sub("", key)), BULLETS.sub("", collapsed))


def _compile_entry_regex(pattern: Any, path: Path) -> re.Pattern[str]:
    if not isinstance(pattern, str):
        raise ValueError(f"{path}: pattern {pattern!r} is not a string")
    try:
        compiled = re.compile(pattern, re.IGNORECASE)
    except re.error as err:
        raise ValueError(f"{path}: invalid regex {pattern!r}: {err}") from err
    if compiled.groupindex:
        raise ValueError(f"{path}: regex {pattern!r} uses a named group; use (?:...)")
    return compiled


def _alternation(patterns: list[re.Pattern[str]]) -> re.Pattern[str] | None:
    return re.compile("|".join(f"(?:{p.pattern})" for p in patterns), re.IGNORECASE) if patterns else None


@functools.lru_cache(maxsize=8)
def load_rules(paths: tuple[Path, ...]) -> Rules:
    """Compile pattern files into rules; a bad entry raises ValueError naming file and pattern."""
    phrases: dict[str, Rule] = {}
    keep_phrases: set[str] = set()
    regexes: list[tuple[re.Pattern[str], Rule]] = []
    keep_regexes: list[re.Pattern[str]] = []
    for path in paths:
        entries = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or []
        if not isinstance(entries, list):
            raise ValueError(f"{path}: expected a list of entries")
        for number, entry in enumerate(entries, 1):
            if not isinstance(entry, dict) or "reason" not in entry:
                raise ValueError(f"{path}: entry {number} needs a reason")
            unknown = set(entry) - RULE_KEYS
            if unknown:
                raise ValueError(f"{path}: entry {number}: unknown keys {sorted(unknown)}")
            reason = entry["reason"]
            if reason != KEEP and reason not in REASONS:
                raise ValueError(f"{path}: entry {number}: unknown reason {reason!r}")
            rule = Rule(reason, bool(entry.get("context", False)))
            for phrase in entry.get("phrases") or []:
                if not isinstance(phrase, str):
                    raise ValueError(f"{path}: phrase {phrase!r} is not a string (quote yes/no/on/off)")
                key = line_forms(phrase).phrase
                if reason == KEEP:
                    keep_phrases.add(key)
                else:
                    phrases.setdefault(key, rule)  # earlier entries win
            for pattern in entry.get("regexes") or []:
                compiled = _compile_entry_regex(pattern, Path(path))
                if reason == KEEP:
                    keep_regexes.append(compiled)
                else:
                    regexes.append((compiled, rule))
    named = "|".join(f"(?P<r{number}>{compiled.pattern})" for number, (compiled, _) in enumerate(regexes))
    return Rules(
        phrases,
        frozenset(keep_phrases),
        tuple(regexes),
        _alternation([compiled for compiled, _ in regexes]),
        re.compile(named, re.IGNORECASE) if regexes else None,
        _alternation(keep_regexes),
    )


@functools.lru_cache(maxsize=4)
def load_stopwords(path: Path) -> tuple[frozenset[str], ...]:
    """One frozenset of function words per language in the stopword file."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict) or not data:
        raise ValueError(f"{path}: expected a mapping of language to word list")
    languages: list[frozenset[str]] = []
    for language, words in data.items():
        if not isinstance(words, list) or not all(isinstance(word, str) for word in words):
            raise ValueError(f"{path}: {language}: expected a list of strings (quote yes/no/on/off)")
        languages.append(frozenset(word.casefold() for word in words))
    return tuple(languages)


def match_rule(forms: Forms, rules: Rules) -> Rule | None:
    """The boilerplate rule a line matches: a strong phrase, else the first regex, else a context phrase."""
    found = rules.phrases.get(forms.phrase)
    # Anchored at the line start (match, not search): one attempt per alternative.
    if (found is None or found.context) and rules.any_regex and rules.any_regex.match(forms.subject):
        hit = rules.named_regex.match(forms.subject) if rules.named_regex else None
        if hit is not None and hit.lastgroup is not None:
            rule = rules.regexes[int(hit.lastgroup[1:])][1]
            if found is None or not rule.context:
                found = rule
    return found


def is_protected(forms: Forms, rules: Rules) -> bool:
    """Whether a keep rule names the line (comment header, byline, dateline)."""
    return forms.phrase in rules.keep_phrases or bool(rules.keep_regex and rules.keep_regex.match(forms.subject))


# --- signals -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Signals:
    """Text-only evidence about one line."""

    words: int
    stopword_density: float  # share of words that are function words (best language)
    sentence_end: bool  # ends with . ! ? … : ; (optionally before closing quotes)
    title_share: float  # share of words starting with a capital letter
    digits: int
    link_marks: int  # | » › • · separators, URLs and "read more"
    letters: bool


def line_signals(text: str, stopwords: tuple[frozenset[str], ...]) -> Signals:
    """Measure one stripped line."""
    tokens = WORD.findall(text)
    count = len(tokens)
    density = 0.0
    titled = 0
    if count:
        lowered = [token.casefold() for token in tokens]
        density = max((sum(map(language.__contains__, lowered)) / count for language in stopwords), default=0.0)
        titled = sum(map(str.isupper, "".join([token[0] for token in tokens])))
    return Signals(
        words=count,
        stopword_density=density,
        sentence_end=bool(SENTENCE_END.search(text)),
        title_share=titled / count if count else 0.0,
        digits=len(DIGIT.findall(text)),
        link_marks=len(LINK_MARKS.findall(text)),
        letters=count > 0,
    )


def is_good(signals: Signals, config: Config) -> bool:
    """Text that reads as prose: enough words and function words (jusText's good/neargood)."""
    if signals.title_share >= config.title_case_max_share and not signals.sentence_end:
        return False
    if signals.words >= config.good_min_words and signals.stopword_density >= config.good_min_stopword_density:
        return True
    return (
        signals.sentence_end
        and signals.words >= config.sentence_min_words
        and signals.stopword_density >= config.sentence_min_stopword_density
    )


def is_link_list(text: str, signals: Signals, config: Config) -> bool:
    """Several short menu-like items joined by link separators ("Home | News | Contact")."""
    if signals.link_marks < config.link_list_min_segments - 1:
        return False
    segments = [segment for segment in SEPARATORS.split(text) if segment]
    if len(segments) < config.link_list_min_segments:
        return False
    menu_like = 0
    for segment in segments:
        words = WORD.findall(segment)
        if len(segment.split()) > config.link_segment_max_words:
            return False
        if words and not DIGIT.search(segment) and not SENTENCE_END.search(segment):
            menu_like += 1
    # Comment headers ("Name | Dec 12 2016 14:48 | 12") have one wordy segment in three.
    return menu_like * 3 >= len(segments) * 2


def classify_wordless(text: str, signals: Signals) -> tuple[str, str | None]:
    """Lines without letters: separators are widgets, bare numbers need context, dates stay."""
    if signals.digits == 0:
        if any(char in LINKISH_SYMBOLS for char in text):
            return BAD, "empty_widget"
        return WEAK, "empty_widget"
    if DATE_OR_TIME.match(text) and re.search(r"[:./-]", text):
        return SHORT, None
    return WEAK, "empty_widget"


@functools.lru_cache(maxsize=1 << 16)
def classify_text(text: str, config: Config) -> tuple[str, str, str | None]:
    """Site-independent verdict on a stripped non-blank line: (template key, class, reason).

    Memoised: menus and widgets repeat on every page of a site, so most lines are seen before.
    """
    forms = line_forms(text)
    rule = None
    if len(text) <= config.pattern_max_chars:
        rules = load_rules(tuple(config.patterns))
        rule = match_rule(forms, rules)
        if rule is not None and not rule.context:
            return forms.key, BAD, rule.reason
        if is_protected(forms, rules):
            return forms.key, PROTECTED, None
    if rule is not None:
        return forms.key, WEAK, rule.reason
    signals = line_signals(text, load_stopwords(config.stopwords))
    if not signals.letters:
        return (forms.key, *classify_wordless(text, signals))
    if signals.link_marks and is_link_list(text, signals, config):
        return forms.key, BAD, "link_list"
    if is_good(signals, config):
        return forms.key, GOOD, None
    return forms.key, SHORT, None


def classify_line(
    text: str, templates: frozenset[str], pins: frozenset[str], config: Config
) -> tuple[str, str | None]:
    """Context-free class and reason of one stripped non-blank line on one site.

    Precedence: user pins, boilerplate rules and classifier verdicts, keep rules, learned
    templates, context rules, the text signals.
    """
    key, cls, reason = classify_text(text, config)
    if key in pins:
        return BAD, "pinned"
    if cls in (BAD, PROTECTED) or key not in templates:
        return cls, reason
    return BAD, "template"


# --- context pass ----------------------------------------------------------------------------


def revise(classes: list[tuple[str, str | None]], lengths: list[int], config: Config) -> list[str | None]:
    """Decide weak and short lines from their nearest decided neighbours; the removal reason per line.

    A weak line (a context pattern) goes when either neighbour is boilerplate; a short line
    goes only when both are and no good text follows within `heading_max_chars`.
    """
    count = len(classes)
    # Characters between each line and the next good line (jusText's heading distance).
    to_good = [0] * count
    distance: float = float("inf")
    for index in range(count - 1, -1, -1):
        to_good[index] = int(min(distance, 1 << 30))
        distance = 0 if classes[index][0] == GOOD else distance + lengths[index]
    reasons: list[str | None] = [reason if cls == BAD else None for cls, reason in classes]
    edge_bad = config.edges_are_boilerplate
    undecided = (WEAK, SHORT)
    index = 0
    while index < count:
        if classes[index][0] not in undecided:
            index += 1
            continue
        end = index
        while end < count and classes[end][0] in undecided:
            end += 1
        before_bad = classes[index - 1][0] == BAD if index > 0 else edge_bad
        after_bad = classes[end][0] == BAD if end < count else edge_bad
        for member in range(index, end):
            cls, reason = classes[member]
            if cls == WEAK and (before_bad or after_bad):
                reasons[member] = reason
            elif cls == SHORT and before_bad and after_bad and to_good[member] > config.heading_max_chars:
                reasons[member] = "short_context"
        index = end
    return reasons


def harmonise(reasons: list[str | None]) -> list[str | None]:
    """A lone "Subscribe" inside a comment widget belongs to the widget, not to a newsletter."""
    result = list(reasons)
    for index in range(1, len(reasons) - 1):
        if reasons[index] == "newsletter" and reasons[index - 1] == reasons[index + 1] == "comment_widget":
            result[index] = "comment_widget"
    return result


def decide(text: str, config: Config, templates: frozenset[str] = frozenset()) -> list[tuple[Line, str]]:
    """The lines of `text` to remove, each with its reason, in order."""
    pins = frozenset(normalise(pin) for pin in config.pin)
    lines = [line for line in split_lines(text) if not line.is_blank]
    classes = [classify_line(line.stripped, templates, pins, config) for line in lines]
    reasons = harmonise(revise(classes, [len(line.stripped) for line in lines], config))
    return [(line, reason) for line, reason in zip(lines, reasons) if reason is not None]


# --- stage API ---------------------------------------------------------------------------------


def learn(records: Iterable[Record], config: Config) -> dict[str, Any]:
    """Count normalised lines per site (record["site_key"], the input sub-folder; "" at top level) and
    return the learned templates as JSON: {"templates": [{"site", "line", "pages"}, ...]} sorted by site, line.

    Prose, comment headers, bylines and datelines are never learned; vetoed lines neither.
    Pinned lines are listed with site "*" and the number of pages they were seen on.
    """
    rules = load_rules(tuple(config.patterns))
    stopwords = load_stopwords(config.stopwords)
    veto = frozenset(normalise(line) for line in config.veto)
    pins = {normalise(line) for line in config.pin}
    counts: Counter[tuple[str, str]] = Counter()
    pin_counts: Counter[str] = Counter()
    for record in records:
        site = str(record.get("site_key") or "")
        seen: set[str] = set()
        for raw in str(record.get("text") or "").split("\n"):
            stripped = raw.strip()
            if not stripped or stripped.count(" ") >= config.template_max_words:
                continue
            seen.add(normalise(stripped))
        for key in seen:
            counts[(site, key)] += 1
            if key in pins:
                pin_counts[key] += 1
    templates: list[dict[str, Any]] = []
    for (site, key), pages in counts.items():
        if pages < config.template_min_pages or key in veto or key in pins:
            continue
        if is_protected(line_forms(key), rules) or is_good(line_signals(key, stopwords), config):
            continue
        templates.append({"site": site, "line": key, "pages": pages})
    for key in pins:
        templates.append({"site": "*", "line": key, "pages": pin_counts[key], "pinned": True})
    templates.sort(key=lambda entry: (entry["site"], entry["line"]))
    return {"templates": templates}


def site_templates(state: dict[str, Any], site: str, config: Config) -> frozenset[str]:
    """The learned template lines that apply to `site`, less the config's vetoes."""
    templates = _templates_by_site(state.get("templates", [])).get(site, frozenset())
    return templates - {normalise(line) for line in config.veto} if config.veto else templates


_LAST_STATE: list[Any] = [None, {}]
"""The last templates list seen and its index: the runner passes one state to every record."""


def _templates_by_site(entries: list[dict[str, Any]]) -> dict[str, frozenset[str]]:
    """Index learned (not pinned) templates by site; memoised on the list's identity (state is read-only)."""
    if _LAST_STATE[0] is entries:
        return _LAST_STATE[1]
    by_site: dict[str, set[str]] = {}
    for entry in entries:
        if not entry.get("pinned"):
            by_site.setdefault(str(entry["site"]), set()).add(str(entry["line"]))
    index = {site: frozenset(lines) for site, lines in by_site.items()}
    _LAST_STATE[0], _LAST_STATE[1] = entries, index
    return index


def process(record: Record, config: Config, state: dict[str, Any]) -> Outcome:
    """record["text"] in; returns Outcome(records=[new record with text minus removed lines, plus "markers"],
    spans=[line_span(...) per removed line with its reason])."""
    text = str(record.get("text") or "")
    if not config.enabled:
        return Outcome(records=[{**record, "markers": []}])
    site = str(record.get("site_key") or "")
    removed = decide(text, config, site_templates(state, site, config))
    spans: list[Span] = [line_span(line, text, reason) for line, reason in removed]
    markers = build_markers(text, removed)
    output = dict(record)
    output["text"] = apply_spans(text, spans)
    output["markers"] = markers
    notes = dict(sorted(Counter(reason for _, reason in removed).items()))
    return Outcome(records=[output], spans=spans, notes={"removed": notes} if notes else {})


def build_markers(text: str, removed: list[tuple[Line, str]]) -> list[list[int | str]]:
    """[output index of the first kept line after each removed line, its reason, its text].

    Later stages read them: the split stage cuts feeds at them, the metadata stage
    finds the site's name in widget phrases ("support The Duran on Patreon")."""
    gone = {line.index: reason for line, reason in removed}
    markers: list[list[int | str]] = []
    kept = 0
    for line in split_lines(text):
        reason = gone.get(line.index)
        if reason is None:
            kept += 1
        else:
            markers.append([kept, reason, line.text.strip()])
    # A removed line's marker points past every kept line before it, i.e. at the next kept one.
    return markers
