"""The boilerplate stage: rules, signals, context pass, learned templates, markers, spans, seed gold."""

from __future__ import annotations

import json
import random
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pydantic
import pytest
import yaml

from pipeline.document import Span, apply_spans, split_lines
from pipeline.stage import Record
from pipeline.stages import boilerplate, split
from pipeline.stages.boilerplate import Config, classify_text, decide, learn, line_signals, load_rules, process

CASES = Path(__file__).parent / "boilerplate_cases"
REPO = Path(__file__).resolve().parents[2]
SEEDS = sorted((REPO / "seeds").glob("*.txt"))
GOLD = {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted((REPO / "tests" / "gold").glob("*.json"))}
MUST_STAY = {"article", "comment", "comment_header", "related", "title", "subtitle", "byline", "dateline",
             "bio", "caption", "embed"}
OPTIONAL = {("002_ab9f896ab881ce26", 1)}  # a site header the gold calls boilerplate; either way is fine


def load_cases(name: str) -> list[dict[str, Any]]:
    return yaml.safe_load((CASES / name).read_text(encoding="utf-8"))


def removed_lines(text: str, config: Config, templates: frozenset[str] = frozenset()) -> dict[int, str]:
    """1-based line number -> reason of every line the stage removes."""
    return {line.index + 1: reason for line, reason in decide(text, config, templates)}


def rebuild(output: str, spans: list[Span]) -> str:
    """Invert the spans (apply_spans the other way round): the input must come back."""
    shift = 0
    inverse: list[Span] = []
    for span in sorted(spans, key=lambda s: s.start):
        start = span.start + shift
        inverse.append(Span(start, start + len(span.replacement), span.reason, span.replacement, span.original))
        shift += len(span.replacement) - (span.end - span.start)
    return apply_spans(output, inverse)


def seed_records() -> list[Record]:
    return [{"id": path.stem, "text": path.read_text(encoding="utf-8"), "site_key": ""} for path in SEEDS]


# --- rules and signals ---------------------------------------------------------------------


@pytest.mark.parametrize("case", load_cases("rules.yaml"), ids=lambda case: case["line"][:40])
def test_rule_verdict(case: dict[str, Any]) -> None:
    _, cls, reason = classify_text(case["line"], Config())
    assert (cls, reason) == (case["class"], case.get("reason"))


@pytest.mark.parametrize("case", load_cases("signals.yaml"), ids=lambda case: case["line"][:40])
def test_signals_and_classifier(case: dict[str, Any]) -> None:
    config = Config()
    signals = line_signals(case["line"], boilerplate.load_stopwords(config.stopwords))
    assert signals.words == case["words"]
    assert round(signals.stopword_density, 3) == case["stopword_density"]
    assert signals.sentence_end is case["sentence_end"]
    assert round(signals.title_share, 3) == case["title_share"]
    assert signals.digits == case["digits"]
    assert signals.link_marks == case["link_marks"]
    _, cls, reason = classify_text(case["line"], config)
    assert (cls, reason) == (case["class"], case.get("reason"))


def test_every_pattern_reason_is_declared() -> None:
    rules = load_rules(tuple(Config().patterns))
    used = {rule.reason for rule in rules.phrases.values()} | {rule.reason for _, rule in rules.regexes}
    assert used <= boilerplate.REASONS
    assert {"navigation", "donation", "comment_widget", "comments_heading", "share", "newsletter", "cookie",
            "pagination", "advertisement", "view_counter", "publish_stub", "photo_credit", "feed_header",
            "site_header", "template", "short_context", "link_list", "empty_widget"} <= boilerplate.REASONS


def test_stopword_lists_are_strings_including_yaml_booleans() -> None:
    english, french = boilerplate.load_stopwords(Config().stopwords)
    assert {"the", "of", "no", "on", "off"} <= english
    assert {"le", "de", "on", "y", "n"} <= french
    assert True not in english and False not in english


# --- pattern loading ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"reason": "share", "regexes": ["^share (this$"]}, r"bad\.yaml: invalid regex '\^share \(this\$'"),
        ({"reason": "share", "regexes": ["^(?P<name>x)$"]}, r"bad\.yaml: regex .* named group"),
        ({"reason": "sharing", "phrases": ["share"]}, r"bad\.yaml: entry 1: unknown reason 'sharing'"),
        ({"reason": "share", "phrase": ["share"]}, r"bad\.yaml: entry 1: unknown keys \['phrase'\]"),
        ({"reason": "publish_stub", "phrases": [True]}, r"bad\.yaml: phrase True is not a string"),
    ],
)
def test_bad_pattern_file_names_file_and_pattern(tmp_path: Path, entry: dict[str, Any], message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump([entry]), encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_rules((path,))


def test_unquoted_on_in_a_pattern_file_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("- reason: publish_stub\n  phrases:\n    - on\n", encoding="utf-8")
    with pytest.raises(ValueError, match="phrase True is not a string"):
        load_rules((path,))


def test_custom_pattern_file_replaces_the_shipped_ones(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(
        "- reason: advertisement\n  phrases: [Werbung]\n- reason: keep\n  regexes: ['^home$']\n", encoding="utf-8"
    )
    config = Config(patterns=(path,))
    assert classify_text("Werbung", config)[1:] == ("bad", "advertisement")
    assert classify_text("Home", config)[1:] == ("protected", None)


def test_patterns_stay_fast_on_adversarial_lines() -> None:
    """No catastrophic backtracking: every regex on long repetitive lines at the length cap."""
    config = Config()
    rules = load_rules(tuple(config.patterns))
    size = config.pattern_max_chars
    lines = ["a " * (size // 2), "a" * size, "1 " * (size // 2), ". " * (size // 2), "Comments " * (size // 9),
             "share " * (size // 6), "© " + "x / " * (size // 4 - 1), "Posted by " + "a | " * (size // 4 - 3)]
    for compiled, _ in rules.regexes:
        for line in lines:
            start = time.process_time()
            compiled.match(line[:size])
            assert time.process_time() - start < 0.05, compiled.pattern
    for line in lines:  # the joined alternations of the index too
        forms = boilerplate.line_forms(line[:size])
        # Once untimed: the index compiles a bucket's alternation on its first line (0.05 s
        # idle, several times that on a loaded machine); backtracking would cost every call.
        boilerplate.match_rule(forms, rules)
        boilerplate.is_protected(forms, rules)
        start = time.process_time()
        boilerplate.match_rule(forms, rules)
        boilerplate.is_protected(forms, rules)
        assert time.process_time() - start < 0.2, line[:40]


def test_long_lines_skip_the_patterns() -> None:
    assert classify_text("Advertisement", Config(pattern_max_chars=13))[1:] == ("bad", "advertisement")
    assert classify_text("Advertisement", Config(pattern_max_chars=12))[1:] == ("short", None)


# --- regex index: a line meets only the regexes that can match it, with the same verdict ----------

INDEX_PATTERNS = [r"^dé", r"^d[éa]b", r"^\wé", r"^a\w", r"^[«‹<] ?x", r"^é", r"^(foo|bé)\s?bar$", r"^.{0,5}cookie",
                  r"^\d+ (comments?|réponses?)$", r"^K", r"^(?:ab|c)?d", r"^x{2,3}y", r"^[^a]b", r"^(ſ|s)t", r"^i",
                  r"^\sz", r"^(?=ab)a", r"^a\b", r"^(?i:Q)u", r"^ıa", r"^İb", r"^(a|)b$", r"^ab?$", r"^[a-z]{0,2}é",
                  r"^.{1,3}\s(says|said)$", r"^.*\|.{0,3}$"]
INDEX_ALPHABET = "abcdeiksxyzqu KQ0129éÉİıſK«<-.:/|"


def brute_force(subject: str, patterns: list[re.Pattern[str]]) -> int | None:
    return next((number for number, compiled in enumerate(patterns) if compiled.match(subject)), None)


def test_regex_index_finds_the_first_matching_regex() -> None:
    """Non-ASCII first or second characters, case-insensitive look-alikes (Kelvin sign, Turkish i,
    long s), classes, optional groups, lookaheads, anchors, and regexes that start anywhere."""
    patterns = [re.compile(pattern, re.IGNORECASE) for pattern in INDEX_PATTERNS]
    index = boilerplate._index_regexes(patterns)
    rng = random.Random(3)
    for _ in range(20000):
        subject = "".join(rng.choice(INDEX_ALPHABET) for _ in range(rng.randint(1, 7)))
        assert boilerplate._first_match(subject, patterns, index) == brute_force(subject, patterns), subject


def test_regex_index_of_the_shipped_patterns() -> None:
    """The pattern files' verdicts through the index equal trying every regex in file order."""
    rules = load_rules(tuple(Config().patterns))
    patterns = [compiled for compiled, _ in rules.regexes]
    lines = [line.strip() for path in SEEDS for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
    lines += [case["line"] for name in ("rules.yaml", "signals.yaml") for case in load_cases(name)]
    lines += ["İnstagram", "ıd", "Ｈｏｍｅ", "• Share this", "« Older", "Réponses (3)", "Écrire un commentaire",
              "(c) 2012 Example", "12 comments", "© Photo / Reuters", "mikael says:", "Jo | Dec 12 2016 14:48 | 12"]
    for line in lines:
        forms = boilerplate.line_forms(line)
        expected = brute_force(forms.subject, patterns)
        assert boilerplate._first_match(forms.subject, patterns, rules.index) == expected, line
        assert (boilerplate._first_match(forms.subject, list(rules.keep_regexes), rules.keep_index) is None) == \
            (brute_force(forms.subject, list(rules.keep_regexes)) is None), line
        # The classifier's one pass: boilerplate regexes, then keep regexes, in file order.
        assert boilerplate._first_match(forms.subject, rules.joint_index.patterns, rules.joint_index) == \
            brute_force(forms.subject, patterns + list(rules.keep_regexes)), line


def test_bulk_regex_pass_finds_the_first_matching_regex() -> None:
    """The batch form of the index (each regex tried on the lines it admits, in file order) gives
    the first matching regex of every line, as trying them all one by one."""
    patterns = [re.compile(pattern, re.IGNORECASE) for pattern in INDEX_PATTERNS]
    index = boilerplate._index_regexes(patterns)
    rng = random.Random(11)
    subjects = ["".join(rng.choice(INDEX_ALPHABET) for _ in range(rng.randint(0, 9))) for _ in range(20000)]
    found = boilerplate._first_matches(subjects, boilerplate._lowered_many(subjects), index)
    expected = [brute_force(subject, patterns) for subject in subjects]
    assert found == [-1 if number is None else number for number in expected]
    assert sum(number is not None for number in expected) > 1000  # the test sees matches, not just misses


def test_stamp_parts_find_the_lines_stamp_finds() -> None:
    """The batch form of STAMP (its alternatives regrouped, scanned over the joined lines) flags the
    lines that STAMP.search flags, one by one."""
    rng = random.Random(3)
    pieces = ["1", "12", ":", "30", " ", "\t", "/", ".", "-", "Dec", "SEPT", "ſep", "may", "ago", "Today", "yesterday",
              "x", "é", "٣", "day", "mon", "Ago"]
    lines = ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 7))).strip() or "x" for _ in range(20000)]
    found = set(np.concatenate([boilerplate._lines_with(part, lines) for part in boilerplate.STAMP_PARTS]).tolist())
    expected = {number for number, line in enumerate(lines) if boilerplate.STAMP.search(line)}
    assert found == expected
    assert 1000 < len(expected) < 19000  # the test sees both outcomes


def bulk_lines() -> list[str]:
    """Stripped lines of every kind: the seeds, the case files, and Unicode and spacing oddities."""
    lines = {line.strip() for path in SEEDS for line in path.read_text(encoding="utf-8").split("\n")}
    lines |= {case["line"] for name in ("rules.yaml", "signals.yaml") for case in load_cases(name)}
    lines |= {"İnstagram", "ıd", "Ｈｏｍｅ", "• Share this", "« Older", "Réponses (3)", "ΣΊΣΥΦΟΣ ΣΑΣ", "Straße",
              "Share\tthis", "Share  this", "12 comments", "© Photo / Reuters", "Jo | Dec 12 2016 14:48 | 12",
              "a" * 500, "Home | News | " * 40, "Posted on ３ Jan 2016", "٣ days ago", "x" * 60,
              "and told the residents to…", "and told the residents to...”", "Wait…”)", "…"}
    return sorted(line for line in lines if line)


@pytest.mark.parametrize("config", [Config(), Config(pattern_max_chars=40, signal_max_chars=30),
                                    Config(pin=("x" * 600,), stamp_max_words=3, title_case_max_share=0.5)],
                         ids=["default", "short caps", "long pin"])
def test_bulk_classification_equals_line_by_line(config: Config) -> None:
    context = boilerplate._context(config)
    lines = bulk_lines()
    assert boilerplate._classify_many(lines, context) == [boilerplate._classify(line, context) for line in lines]


@pytest.mark.parametrize("bulk_min_lines", [1, 10**9], ids=["bulk", "line by line"])
def test_process_batch_equals_process(monkeypatch: pytest.MonkeyPatch, bulk_min_lines: int) -> None:
    """One call for several pages (shared classification, several sites, pins and vetoes), cold
    and warm, gives what `process` gives page by page with every line classified on its own."""
    config = Config(template_min_pages=3, pin=("Sponsored  FEATURE",), veto=("Contact the newsroom",))
    pages = synthetic_site() + seed_records()
    state = learn(pages, config)
    boilerplate.clear_caches()
    monkeypatch.setattr(boilerplate, "BULK_MIN_LINES", bulk_min_lines)
    batch = boilerplate.process_batch(pages, config, state)
    boilerplate.clear_caches()
    monkeypatch.setattr(boilerplate, "BULK_MIN_LINES", 10**9)
    single = [process(page, config, state) for page in pages]
    assert [(o.records, o.spans, o.notes) for o in batch] == [(o.records, o.spans, o.notes) for o in single]
    again = boilerplate.process_batch(pages, config, state)
    assert [(o.records, o.spans, o.notes) for o in again] == [(o.records, o.spans, o.notes) for o in single]
    assert sum(len(outcome.spans) for outcome in batch) > 50


def test_regex_index_buckets() -> None:
    patterns = [re.compile(p, re.IGNORECASE) for p in (r"^(Share|tweet) this$", r"^.{0,80}\bcookies?\b.{0,20}$",
                                                       r"^\d+ comments$", r"^é")]
    index = boilerplate._index_regexes(patterns)
    assert index.by_prefix["sh"] == (0,) and index.by_prefix["tw"] == (0,)
    assert index.by_first["1"] == (2,)  # "\\d+": a digit, then maybe more: known by its first character
    assert index.anywhere == (1,) and index.needs[1] == ("cookie",)
    assert index.max_len[0] == len("share this") and index.min_len[0] == len("share this")
    assert index.bucket("share").rest == (0,) and [n for n, _ in index.bucket("share").gated] == [1]
    assert index.bucket("éclair").rest == (0, 2, 3)  # a non-ASCII first character meets every regex


def test_verdicts_are_cached_per_line_and_can_be_cleared() -> None:
    config = Config()
    context = boilerplate._context(config)
    first = context.verdict("Some Menu Item Nobody Else Uses")
    assert context.verdict("Some Menu Item Nobody Else Uses") is first
    boilerplate.clear_caches()
    again = context.verdict("Some Menu Item Nobody Else Uses")
    assert again is not first and (again.cls, again.reason, again.key) == (first.cls, first.reason, first.key)


@pytest.mark.parametrize("bulk_min_lines", [1, 10**9], ids=["bulk", "line by line"])
def test_outcomes_do_not_depend_on_the_memo_bound(monkeypatch: pytest.MonkeyPatch, bulk_min_lines: int) -> None:
    """With generations of a few lines (many turnovers inside one batch and from one batch to
    the next), the learned state and every outcome are those of the default bound."""
    config = Config(template_min_pages=3, pin=("Sponsored  FEATURE",), veto=("Contact the newsroom",))
    pages = synthetic_site() + seed_records()
    batches = [pages[start:start + 3] for start in range(0, len(pages), 3)]
    monkeypatch.setattr(boilerplate, "BULK_MIN_LINES", bulk_min_lines)
    boilerplate.clear_caches()
    state = learn(pages, config)
    expected = [boilerplate.process_batch(batch, config, state) for batch in batches]
    context = boilerplate._context(config)
    assert len(context.cache) > 50  # the default bound: nothing dropped
    monkeypatch.setattr(boilerplate, "MEMO_LINES", 5)
    boilerplate.clear_caches()
    assert learn(pages, config) == state
    small = [boilerplate.process_batch(batch, config, state) for batch in batches]
    assert [[(o.records, o.spans, o.notes) for o in batch] for batch in small] == \
           [[(o.records, o.spans, o.notes) for o in batch] for batch in expected]
    largest_batch = max(len({line.strip() for page in batch for line in page["text"].split("\n")}) for batch in batches)
    assert len(context.cache) <= 5 + largest_batch and len(context.keys) <= 5


def _memo_lookup(memo: boilerplate._Memo, keys: list[str]) -> list[str]:
    """A batch's lookup as the stage does it: the keys found are marked in use, the others computed."""
    found = memo.lookup(keys)
    return [value if value is not None else memo[key] for key, value in zip(keys, found)]


def test_memo_keeps_the_keys_in_use() -> None:
    """When the memo is full, a key found since it was last full stays; a key computed and not found
    again goes. When most keys were in use, the memo starts over: its size stays bounded."""
    computed: list[str] = []
    memo = boilerplate._Memo(lambda key: computed.append(key) or key.upper(), {"": ""})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(boilerplate, "MEMO_LINES", 4)
        for keys in [["hot"], ["hot", "a"], ["b"], ["c"], ["hot", "a"]]:
            assert _memo_lookup(memo, keys) == [key.upper() for key in keys]
            assert len(memo) <= 4
        assert computed == ["hot", "a", "b", "c", "a"]  # "hot" once; "a" again after the memo was full
        memo.forget()
        computed.clear()
        for keys in [["x", "y", "z"], ["x", "y", "z"], ["w"], ["x"]]:
            assert _memo_lookup(memo, keys) == [key.upper() for key in keys]
            assert len(memo) <= 4
        assert computed == ["x", "y", "z", "w", "x"]  # three of four in use: too many to keep
    assert memo[""] == ""


def test_long_lines_read_their_signals_from_their_start() -> None:
    prose = "The council voted on Tuesday to close the old bridge for repairs that will take a year, "
    tail = "Home Sport Weather Travel " * 20
    assert classify_text(prose + tail, Config())[1] == "good"
    assert classify_text(prose + tail, Config(signal_max_chars=len(prose + tail)))[1] == "short"


@pytest.mark.parametrize(("text", "flags"), [
    ("The storm would reach the coast by the weekend, forecasters said on Monday.", boilerplate.SENTENCE),
    ("The storm would reach the coast by the weekend, and told all the residents to…", boilerplate.SENTENCE | boilerplate.ELIDED),
    ("The storm would reach the coast by the weekend, and told all the residents to...”", boilerplate.SENTENCE | boilerplate.ELIDED),
    ("The storm would reach the coast by the weekend, forecasters said on Monday", 0),
    ("« La tempête atteindra la côte ce week-end, et les habitants doivent partir. »", boilerplate.SENTENCE),
])
def test_an_ellipsis_marks_an_excerpt_not_a_finished_sentence(text: str, flags: int) -> None:
    verdict = boilerplate._context(Config()).verdict(text)
    assert verdict.cls == "good" and verdict.flags & (boilerplate.SENTENCE | boilerplate.ELIDED) == flags


@pytest.mark.parametrize("text", ["Done.", "Done", "“Done.”", "Done.)]", "Done?!", "a ...", "x:", "", "”", "Done.”x",
                                  "« C'est fini. »", "« C'est fini\u202f»", "« C'est fini.\u00a0»"])
def test_sentence_end_is_the_regex_without_the_scan(text: str) -> None:
    assert boilerplate.ends_sentence(text) is bool(boilerplate.SENTENCE_END.search(text))


# --- context pass --------------------------------------------------------------------------


@pytest.mark.parametrize("case", load_cases("context.yaml"), ids=lambda case: case["name"])
def test_context_case(case: dict[str, Any]) -> None:
    config = Config(**case.get("config", {}))
    assert removed_lines(case["page"], config) == case["removed"]


def revise_line_by_line(kinds: list[str], reasons: list[str | None], lengths: list[int],
                        config: Config) -> list[str | None]:
    """The context pass spelled out per line: the reference the run-finding `revise` must equal."""
    undecided = ("weak", "short")
    out = [reason if kind == "bad" else None for kind, reason in zip(kinds, reasons)]
    for index, kind in enumerate(kinds):
        if kind not in undecided:
            continue
        before = next((other for other in reversed(kinds[:index]) if other not in undecided), None)
        after = next((other for other in kinds[index + 1:] if other not in undecided), None)
        before_bad = before == "bad" if before else config.edges_are_boilerplate
        after_bad = after == "bad" if after else config.edges_are_boilerplate
        good = next((other for other in range(index + 1, len(kinds)) if kinds[other] == "good"), None)
        distance = sum(lengths[index + 1:good]) if good is not None else 1 << 30
        if kind == "weak" and (before_bad or after_bad):
            out[index] = reasons[index]
        elif kind == "short" and before_bad and after_bad and distance > config.heading_max_chars:
            out[index] = "short_context"
    return out


def test_revise_equals_the_line_by_line_rule() -> None:
    rng = random.Random(5)
    for config in (Config(), Config(edges_are_boilerplate=False, heading_max_chars=0)):
        for _ in range(2000):
            size = rng.randint(0, 12)
            kinds = [rng.choice(("good", "bad", "weak", "short", "protected")) for _ in range(size)]
            reasons = [f"r{index}" if kind in ("bad", "weak") else None for index, kind in enumerate(kinds)]
            lengths = [rng.choice((0, 5, 40, 120, 250)) for _ in range(size)]
            expected = revise_line_by_line(kinds, reasons, lengths, config)
            assert boilerplate.revise(list(zip(kinds, reasons)), lengths, config) == expected, (kinds, lengths)


# --- main-region pass --------------------------------------------------------------------------


@pytest.mark.parametrize("case", load_cases("region.yaml"), ids=lambda case: case["name"])
def test_region_case(case: dict[str, Any]) -> None:
    config = Config(**case.get("config", {}))
    assert removed_lines(case["page"], config) == case["removed"]


def test_region_markers_keep_the_split_contract() -> None:
    """Before the main text a feed header is relabelled (no feed cut there); an inline box is not
    a feed cut either; a feed header after the text still is."""
    case = next(c for c in load_cases("region.yaml") if c["name"].startswith("a feed header before"))
    record = process({"id": "f", "text": case["page"], "site_key": ""}, Config(), {"templates": []}).records[0]
    assert [(marker[1], marker[2]) for marker in record["markers"]][:3] == [
        ("outside_main", "Latest"), ("outside_main", "Storm Warning for the Coast"),
        ("outside_main", "Farmers Count the Cost of Drought")]
    assert [marker[1] for marker in record["markers"]].count("feed_header") == 1
    inline = next(c for c in load_cases("region.yaml") if c["name"].startswith("an inline related box"))
    record = process({"id": "i", "text": inline["page"], "site_key": ""}, Config(), {"templates": []}).records[0]
    assert {marker[1] for marker in record["markers"]} == {"inline_feed"}
    assert "inline_feed" not in split.Config().feed_reasons and "outside_main" not in split.Config().feed_reasons


# --- learn ---------------------------------------------------------------------------------

PAGE = """The Example Times
Politics Economy Culture
Sponsored Feature
By Jane Doe
March 3, 2020
{body}
We rely on our readers and the work we do is paid for by people like you.
Contact the newsroom
"""
BODIES = [
    "The council voted on Tuesday to close the old bridge for repairs that will take most of the year.",
    "Farmers in the valley say the drought has cut their harvest by half and prices are rising fast.",
    "The museum reopened after a long restoration of its roof, and the first visitors came in the rain.",
]


def synthetic_site() -> list[Record]:
    pages: list[Record] = [
        {"id": f"p{number}", "text": PAGE.format(body=body), "site_key": "example", "lang": "en"}
        for number, body in enumerate(BODIES)
    ]
    pages[2]["text"] = pages[2]["text"].replace("Sponsored Feature\n", "")
    pages.append({"id": "other", "text": "Politics Economy Culture\nSomething else entirely here.\n", "site_key": "other"})
    return pages


def test_learn_finds_the_shared_lines_with_their_page_counts() -> None:
    state = learn(synthetic_site(), Config(template_min_pages=3))
    # Prose, bylines and datelines are never templates, however often they repeat;
    # the other site's single page does not count for "example".
    assert state == {
        "templates": [
            {"site": "example", "line": "contact the newsroom", "pages": 3},
            {"site": "example", "line": "politics economy culture", "pages": 3},
            {"site": "example", "line": "the example times", "pages": 3},
        ]
    }


def test_learn_honours_pin_and_veto() -> None:
    config = Config(template_min_pages=3, pin=("Sponsored  FEATURE",), veto=("The Example Times",))
    state = learn(synthetic_site(), config)
    assert state["templates"] == [
        {"site": "*", "line": "sponsored feature", "pages": 2, "pinned": True},
        {"site": "example", "line": "contact the newsroom", "pages": 3},
        {"site": "example", "line": "politics economy culture", "pages": 3},
    ]
    outcome = process(synthetic_site()[0], config, state)
    assert [(span.original.strip(), span.reason) for span in outcome.spans] == [
        ("Politics Economy Culture", "template"),
        ("Sponsored Feature", "pinned"),
        ("Contact the newsroom", "template"),
    ]
    assert outcome.records[0]["text"].startswith("The Example Times\nBy Jane Doe\nMarch 3, 2020\n")


def test_learn_respects_the_page_threshold_and_word_limit() -> None:
    assert learn(synthetic_site(), Config(template_min_pages=4)) == {"templates": []}
    assert learn(synthetic_site(), Config(template_min_pages=3, template_max_words=2)) == {"templates": []}
    state = learn(synthetic_site(), Config(template_min_pages=3, template_max_words=3))
    assert len(state["templates"]) == 3


def test_learn_is_order_independent_and_state_is_json() -> None:
    pages = synthetic_site()
    shuffled = pages[::-1]
    config = Config(template_min_pages=3)
    assert learn(pages, config) == learn(shuffled, config)
    assert json.loads(json.dumps(learn(pages, config))) == learn(pages, config)


def test_veto_applies_to_a_state_learned_before_it() -> None:
    state = learn(synthetic_site(), Config(template_min_pages=3))
    outcome = process(synthetic_site()[0], Config(veto=("the example times",)), state)
    assert "The Example Times" not in [span.original.strip() for span in outcome.spans]


def test_templates_apply_only_to_their_site() -> None:
    state = learn(synthetic_site(), Config(template_min_pages=3))
    other = {"id": "x", "text": "Politics Economy Culture\nThe council voted to close the bridge for a year of repairs.\n",
             "site_key": "elsewhere"}
    assert process(other, Config(), state).spans == []


# --- markers, spans, records ------------------------------------------------------------------


def test_markers_point_at_the_next_kept_output_line() -> None:
    text = ("Skip to content\n"
            "The assault by Syrian government forces on east Aleppo continues and it is not over yet.\n"
            "Share this:\n"
            "\n"
            "Reinforcements have arrived in the area and the ministry promised to retake the town soon.\n"
            "Advertisement\n"
            "Powered by WordPress")
    outcome = process({"id": "m", "text": text, "site_key": ""}, Config(), {"templates": []})
    record = outcome.records[0]
    assert record["markers"] == [[0, "site_header", "Skip to content"], [1, "share", "Share this:"],
                                 [3, "advertisement", "Advertisement"], [3, "legal", "Powered by WordPress"]]
    output_lines = split_lines(record["text"])
    assert len(output_lines) == 3
    assert output_lines[1].text == ""  # the blank line after "Share this:" is kept and is the marker's line
    assert record["text"].endswith("retake the town soon.\n")


def test_spans_take_their_newline_and_rebuild_the_input() -> None:
    text = "Home\n\nThe assault by Syrian government forces on east Aleppo continues and it is not over yet.\nLatest"
    outcome = process({"id": "s", "text": text, "site_key": ""}, Config(), {"templates": []})
    assert [(span.original, span.reason) for span in outcome.spans] == [("Home\n", "navigation"), ("Latest", "feed_header")]
    assert outcome.records[0]["text"] == "\nThe assault by Syrian government forces on east Aleppo continues and it is not over yet.\n"
    assert rebuild(outcome.records[0]["text"], outcome.spans) == text
    assert outcome.notes == {"removed": {"feed_header": 1, "navigation": 1}}


def test_record_keys_pass_through() -> None:
    text = "Advertisement\nThe council voted on Tuesday to close the old bridge for a year.\n"
    record = {"id": "r", "text": text, "site_key": "s", "source": "r.txt", "lang": "en"}
    output = process(record, Config(), {"templates": []}).records[0]
    assert output == {"id": "r", "text": text[len("Advertisement\n"):], "site_key": "s", "source": "r.txt",
                      "lang": "en", "markers": [[0, "advertisement", "Advertisement"]]}
    assert record["text"] == text and "markers" not in record  # the input record is not modified


def test_empty_and_blank_pages() -> None:
    for text in ("", "\n\n", "   \n"):
        outcome = process({"id": "e", "text": text, "site_key": ""}, Config(), {"templates": []})
        assert outcome.spans == [] and outcome.records[0]["text"] == text and outcome.records[0]["markers"] == []


def test_disabled_stage_changes_nothing() -> None:
    record = {"id": "r", "text": "Advertisement\n", "site_key": ""}
    outcome = process(record, Config(enabled=False), {"templates": []})
    assert outcome.spans == [] and outcome.records[0]["text"] == "Advertisement\n"


def test_config_is_frozen_and_rejects_unknown_keys() -> None:
    with pytest.raises(pydantic.ValidationError, match="template_min_page"):
        Config(template_min_page=3)  # type: ignore[call-arg]
    with pytest.raises(pydantic.ValidationError):
        Config().template_min_pages = 2  # type: ignore[misc]


# --- the seeds ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed_outcomes() -> dict[str, tuple[Record, Any]]:
    records = seed_records()
    state = learn(records, Config())
    return {record["id"]: (record, process(record, Config(), state)) for record in records}


@pytest.mark.parametrize("stem", sorted(GOLD))
def test_seed_gold(seed_outcomes: dict[str, tuple[Record, Any]], stem: str) -> None:
    """No gold boilerplate line survives; no line a later stage needs is removed."""
    record, outcome = seed_outcomes[stem]
    starts = {line.start: line.index + 1 for line in split_lines(record["text"])}
    removed = {starts[span.start] for span in outcome.spans}
    labels = {entry["n"]: entry["label"] for entry in GOLD[stem]["lines"]}
    boilerplate_lines = {n for n, label in labels.items() if label == "boilerplate"}
    assert boilerplate_lines - removed - {n for s, n in OPTIONAL if s == stem} == set()
    assert sorted((n, labels[n]) for n in removed if labels.get(n) in MUST_STAY) == []
    assert removed - boilerplate_lines == set()


@pytest.mark.parametrize("stem", sorted(GOLD))
def test_seed_reasons(seed_outcomes: dict[str, tuple[Record, Any]], stem: str) -> None:
    record, outcome = seed_outcomes[stem]
    starts = {line.start: line.index + 1 for line in split_lines(record["text"])}
    expected = load_cases("seeds.yaml")[stem]
    assert {starts[span.start]: span.reason for span in outcome.spans} == expected


@pytest.mark.parametrize("stem", sorted(GOLD))
def test_seed_spans_rebuild_input_and_markers_match(seed_outcomes: dict[str, tuple[Record, Any]], stem: str) -> None:
    record, outcome = seed_outcomes[stem]
    output = outcome.records[0]
    assert rebuild(output["text"], outcome.spans) == record["text"]
    assert all(span.original.strip() and span.reason in boilerplate.REASONS for span in outcome.spans)
    assert [reason for _, reason, _ in output["markers"]] == [span.reason for span in outcome.spans]
    # Each marker names the output line that follows the removed one: count kept lines before it.
    lines = split_lines(record["text"])
    removed_starts = {span.start for span in outcome.spans}
    expected = [[sum(1 for other in lines[: line.index] if other.start not in removed_starts), span.reason,
                 line.text.strip()]
                for line in lines for span in outcome.spans if span.start == line.start]
    assert output["markers"] == expected


def test_seed_output_is_deterministic() -> None:
    first = [process(r, Config(), learn(seed_records(), Config())) for r in seed_records()]
    records = seed_records()
    random.Random(7).shuffle(records)
    state = learn(records, Config())
    second = {r["id"]: process(r, Config(), state) for r in records}
    for outcome in first:
        again = second[outcome.records[0]["id"]]
        assert outcome.records == again.records and outcome.spans == again.spans


def test_unknown_line_kinds_are_kept_when_unsure() -> None:
    """Short lines with text on one side stay: titles, names, lone datelines, URLs."""
    text = ("Latest\nAlex Christoforou\nwww.example.org/book.html\n"
            "The military provided safe passage for the fighters out of the city.\n")
    assert removed_lines(text, Config()) == {1: "feed_header"}


def test_stage_is_linear_in_page_length() -> None:
    """Eight times the lines (unseen, no cache hits) take about eight times the time."""
    def page(n: int, salt: str) -> str:
        return "".join(f"Item {salt}{k} of the menu\nShare\nThe council voted {salt}{k} times on the bridge and "
                       f"the repairs will take most of the year.\n" for k in range(n))

    def timed(text: str) -> float:  # CPU time: other processes on a shared machine do not count
        start = time.process_time()
        decide(text, Config())
        return time.process_time() - start

    timed(page(50, "w"))  # warm up the pattern cache
    # the best of three runs of fresh lines each: one slow run on a loaded machine is not a quadratic pass
    small = min(timed(page(2000, f"a{run}-")) for run in range(3))
    large = min(timed(page(16000, f"b{run}-")) for run in range(3))
    assert large < small * 16, (small, large)  # 8x the lines: a linear stage takes ~9x, a quadratic pass ~23x


def test_a_pattern_that_backtracks_badly_runs_under_its_bound(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The prefilter's alternation must not run a risky user pattern without the time bound."""
    import time

    from pipeline.errors import PatternTimeout

    patterns = tmp_path / "hostile.yaml"
    patterns.write_text("- reason: navigation\n  regexes:\n    - '^(?:x|xx)+y$'\n", encoding="utf-8")
    config = boilerplate.Config(patterns=(patterns,))
    started = time.monotonic()
    with pytest.raises(PatternTimeout):
        boilerplate.decide("x" * 60 + "\nA line of ordinary text follows it here.", config)
    assert time.monotonic() - started < 30
    # Many new lines at once take the batch path: the risky regex still runs under its bound.
    monkeypatch.setattr(boilerplate, "BULK_MIN_LINES", 100)
    monkeypatch.setattr(boilerplate, "_classify", None)  # not line by line
    page = "\n".join([f"Line {number} of ordinary text here." for number in range(200)] + ["x" * 60])
    started = time.monotonic()
    with pytest.raises(PatternTimeout):
        boilerplate.process_batch([{"id": "h", "text": page, "site_key": ""}] * 2, config, {"templates": []})
    assert time.monotonic() - started < 30
