"""Config patterns: validated at load, matched under a time bound, and no shipped pattern
(config files or module constants) backtracks badly on adversarial input."""

from __future__ import annotations

import importlib
import pkgutil
import re
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import regex

import pipeline
from pipeline import patterns
from pipeline.errors import ConfigError, PatternError, PatternTimeout
from pipeline.extract import bylines, comments, head
from pipeline.patterns import BoundedPattern, compile_pattern, risky_shape
from pipeline.stages import boilerplate

# --- compile_pattern ------------------------------------------------------------------------


def test_invalid_pattern_names_file_entry_and_pattern() -> None:
    with pytest.raises(PatternError, match=r"^rules\.yaml: entry 3: invalid regex '\(unclosed': ") as err:
        compile_pattern("(unclosed", "rules.yaml: entry 3")
    assert isinstance(err.value, ConfigError) and isinstance(err.value, ValueError)


def test_non_string_pattern_is_refused() -> None:
    with pytest.raises(PatternError, match=r"rules\.yaml: pattern 12 is not a string"):
        compile_pattern(12, "rules.yaml")


def test_safe_shapes_get_re_and_risky_ones_the_bounded_engine() -> None:
    assert isinstance(compile_pattern(r"^share (?:this|on \w+)$", "t"), re.Pattern)
    assert isinstance(compile_pattern(r"(?:\w+\s?)+$", "t"), BoundedPattern)  # nested
    assert isinstance(compile_pattern(r"\s+via\s+", "t"), BoundedPattern)  # searched leading run


def test_bounded_pattern_matches_like_re() -> None:
    stdlib = re.compile(r"(?P<word>\w+)-(\d+)", re.IGNORECASE)
    bounded = BoundedPattern(stdlib, 1.0)
    text = "Ab-12 cd-3 x-"
    assert (bounded.pattern, bounded.flags, dict(bounded.groupindex)) == (
        stdlib.pattern, stdlib.flags, dict(stdlib.groupindex))
    assert bounded.search(text).group("word") == stdlib.search(text).group("word")  # type: ignore[union-attr]
    assert bounded.match(text).span() == stdlib.match(text).span()  # type: ignore[union-attr]
    assert bounded.fullmatch("Ab-12") is not None and bounded.fullmatch(text) is None
    assert [m.span() for m in bounded.finditer(text)] == [m.span() for m in stdlib.finditer(text)]
    assert bounded.findall(text) == stdlib.findall(text)
    assert bounded.sub(r"<\2>", text) == stdlib.sub(r"<\2>", text)
    assert bounded.split(text) == stdlib.split(text)


@pytest.mark.parametrize("call", ["search", "match", "fullmatch", "finditer", "sub"])
def test_runaway_pattern_raises_pattern_timeout(call: str) -> None:
    bounded = compile_pattern(r"(x+x+)+y", "t", timeout=0.05)
    subject = "x" * 5000
    started = time.perf_counter()
    with pytest.raises(PatternTimeout, match=r"pattern '\(x\+x\+\)\+y' ran past its 0\.05 s bound"):
        if call == "finditer":
            list(bounded.finditer(subject))
        elif call == "sub":
            bounded.sub("", subject)
        else:
            getattr(bounded, call)(subject)
    assert time.perf_counter() - started < 5


def test_timeout_default_is_read_when_compiling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(patterns, "TIMEOUT_SECONDS", 0.25)
    bounded = compile_pattern(r"(a+)+$", "t")
    assert isinstance(bounded, BoundedPattern) and bounded.timeout == 0.25


# --- the static check -----------------------------------------------------------------------

STATIC_CASES = [
    (r"(a+)+$", "nested quantifiers"),
    (r"(\w+\s?)*$", "nested quantifiers"),
    (r"(?:\d+|\w+)*!", "nested quantifiers"),
    (r"\s*\s*x", "adjacent overlapping quantifiers"),
    (r"\w+\s?\w+!", "adjacent overlapping quantifiers"),
    (r"^.*foo.*$", "adjacent overlapping quantifiers"),
    (r"(?:ab|\wb)*$", "repeated overlapping alternatives"),
    (r"(\w)\1", "back-reference"),
    (r"(?:\w+\s)*$", None),  # the required space separates the iterations
    (r"\d+\.\d+", None),
    (r"\s*\w+", None),
    (r"[^\W\d_][^\W\d]*(?:['’\-][^\W\d]+)*", None),  # the apostrophe starts every iteration
    (r"a++b", None),  # possessive: no backtracking into it
    (r"(?>a+)+b", None),
    (r"^share this$", None),
]


@pytest.mark.parametrize(("pattern", "shape"), STATIC_CASES)
def test_risky_shape(pattern: str, shape: str | None) -> None:
    assert risky_shape(pattern) == shape


def test_flagged_shapes_are_slow_and_unflagged_ones_are_not() -> None:
    """The check is about real behaviour: a flagged shape runs away on its adversarial input."""
    subject = "word " * 3000 + "!"
    with pytest.raises(TimeoutError):
        regex.compile(r"(\w+\s?)*$").search(subject, timeout=0.2)
    regex.compile(r"(?:\w+\s)*$").match(subject, timeout=2)


# --- every shipped pattern --------------------------------------------------------------------


def config_patterns() -> dict[str, Any]:
    """Every pattern the shipped configs/ define, as the loaders compile them."""
    found: dict[str, Any] = {}
    rules = boilerplate.load_rules(tuple(boilerplate.Config().patterns))
    for number, pattern in enumerate([*rules.patterns, *rules.keep_regexes]):
        found[f"configs/boilerplate #{number}"] = pattern
    for field in fields(comments.CommentFormats):
        for number, text in enumerate(getattr(comments.default_formats(), field.name)):
            found[f"configs/comments/formats.yaml {field.name} #{number}"] = compile_pattern(text, "formats")
    for field in fields(bylines.BylineConfig):
        value = getattr(bylines.CONFIG, field.name)
        if hasattr(value, "pattern"):
            found[f"configs/metadata/bylines.yaml {field.name}"] = value
        elif isinstance(value, tuple):
            for number, item in enumerate(value):
                if isinstance(item, tuple) and hasattr(item[-1], "pattern"):
                    found[f"configs/metadata/bylines.yaml {field.name} #{number}"] = item[-1]
    for number, pattern in enumerate(head.SITE_CONFIG.patterns):
        found[f"configs/metadata/sites.yaml #{number}"] = pattern
    return found


def code_patterns() -> dict[str, Any]:
    """Module-level compiled patterns of the package (pipeline.eval is offline tooling)."""
    found: dict[str, Any] = {}
    for info in pkgutil.walk_packages(pipeline.__path__, "pipeline."):
        if info.name.startswith("pipeline.eval") or info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if isinstance(value, (re.Pattern, BoundedPattern)):
                found[f"{info.name}.{name}"] = value
    return found


ALL_PATTERNS = {**config_patterns(), **code_patterns()}

# Shapes the static check flags in shipped patterns, reviewed: each runs the adversarial
# inputs below within the bound (the optional parts always match, or a literal ends the run).
# A new flagged pattern fails test_static_check_of_shipped_patterns until it is reviewed here.
REVIEWED = {
    '^(?i:(?:page:?\\s)?(?:\\d{1,3}\\s|\\.{3}\\s){1,12}next\\': 'bounded engine; at most 12 iterations',
    '(?:©|\\(c\\)|copyright)\\s*(?:©\\s*)?(?:(?:19|20)\\d\\d\\': 'bounded engine; a year must come between the space runs',
    '^(((mon|tue|tues|wed|wednes|thu|thur|thurs|fri|sat': 'bounded engine; lines over boilerplate.pattern_max_chars skip it',
    '^((facebook|twitter|google\\+?|google plus|linkedin': 'bounded engine; lines over boilerplate.pattern_max_chars skip it',
    '^\\s*(?:\\d{1,4}[.)]|[•·*▪◦‣●○■□–-])?\\s*': 'always matches (every part optional): linear',
    '^\\s*(\\d+(?:\\.\\d+)?)\\s*([kmg]?)b?\\s*$': 'a CLI size argument, a few characters',
    b'\\{"id":("[^"\\\\]*(?:\\\\.[^"\\\\]*)*")(?:,"[^"\\\\]*(?:\\\\': 'JSON strings as unrolled loops (a run, then escape-and-run): each character has one way to match; linear',
}
REVIEW_KEY = 50  # REVIEWED keys are the patterns' first this many characters


def test_pattern_inventory_is_complete() -> None:
    assert len(config_patterns()) >= 200 and len(code_patterns()) >= 40
    for name, pattern in config_patterns().items():
        risky = risky_shape(pattern.pattern, pattern.flags, search=True) is not None
        assert isinstance(pattern, BoundedPattern) == risky, name


def test_static_check_of_shipped_patterns() -> None:
    flagged = {pattern.pattern[:REVIEW_KEY]: (name, shape) for name, pattern in ALL_PATTERNS.items()
               if (shape := risky_shape(pattern.pattern, pattern.flags))}
    unreviewed = {key: value for key, value in flagged.items() if key not in REVIEWED}
    assert not unreviewed, f"risky shapes to review (or rewrite): {unreviewed}"


# Long enough for any exponential or cubic shape to run past the bound, short enough that the
# quadratic-in-search shapes of some code constants (`\s+(?:monday|...)` searched over a run
# of spaces: every start position rescans the run) stay within it. Those are safe because
# lines reaching them are short: clean folds inner space runs, and ingest.max_line_chars.
N = 2000
GENERIC = ["a" * N + "!", " " * N + "!", "1" * N + "x", "a " * (N // 2) + "!", "1 " * (N // 2) + "x",
           "\t" * N + "x", "." * N + "a", "-" * N + "a", "A" * N + "1", "é" * N + "!", "\u00a0" * N + "x",
           "ab1 .,'-" * (N // 8) + "\x00", "a" * N + "\n" + "a" * N + "!"]
LITERAL = re.compile(r"(?<![\\])[a-z]{2,}")


def adversarial(pattern: str | bytes) -> list[str] | list[bytes]:
    """Generic runs, then runs of the pattern's own words (what its repeats want to eat);
    as UTF-8 bytes for a bytes pattern (the ledger's line readers)."""
    text = pattern.decode("utf-8", "replace") if isinstance(pattern, bytes) else pattern
    words = sorted(set(LITERAL.findall(text)))[:12]
    built = [(word + " ") * (N // (len(word) + 1)) + "!" for word in words]
    built += [(word + ", ") * (N // (len(word) + 2)) + "1" for word in words[:4]]
    subjects = GENERIC + built
    return [subject.encode() for subject in subjects] if isinstance(pattern, bytes) else subjects


def test_shipped_patterns_on_adversarial_input() -> None:
    """Every shipped pattern, searched (the costliest call) on each input under a 2 s bound."""
    slow: list[str] = []
    for name, pattern in ALL_PATTERNS.items():
        flags = regex.VERSION0 | (pattern.flags & (re.IGNORECASE | re.MULTILINE | re.DOTALL | re.VERBOSE | re.ASCII))
        engine = regex.compile(pattern.pattern, flags)
        for subject in adversarial(pattern.pattern):
            try:
                engine.search(subject, timeout=2.0)
            except TimeoutError:
                slow.append(f"{name} {pattern.pattern[:60]!r} on {subject[:20]!r}...")
    assert not slow, slow


# --- a runaway pattern in a run -----------------------------------------------------------------


def test_runaway_config_pattern_quarantines_the_page_and_the_run_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.config import load_config
    from pipeline.io import read_jsonl
    from pipeline.runner import run

    repo = Path(__file__).resolve().parents[1]
    formats = (repo / "configs" / "comments" / "formats.yaml").read_text(encoding="utf-8")
    custom = tmp_path / "formats.yaml"
    custom.write_text(formats.replace("end_patterns:\n", "end_patterns:\n  - '(?:x|xx)+y.*'\n", 1),
                      encoding="utf-8")
    monkeypatch.setattr(patterns, "TIMEOUT_SECONDS", 0.2)
    inp = tmp_path / "input"
    inp.mkdir()
    seed = (repo / "seeds" / "003_789919c685876f23.txt").read_text(encoding="utf-8")
    (inp / "good.txt").write_text(seed, encoding="utf-8")
    (inp / "trap.txt").write_text(seed.replace("\n\n", "\n\n" + "x" * 40 + "zy\n\n", 1), encoding="utf-8")
    config = load_config(repo / "configs" / "default.yaml", [f"split.comment_formats={custom}"])
    result = run(config, inp, tmp_path / "out", progress=False)
    fates = {fate["source"]: fate for fate in result.fates}
    assert fates["good.txt"]["status"] == "included"
    trap = fates["trap.txt"]
    assert (trap["status"], trap["reason"]) == ("quarantined", "pattern_timeout")
    assert "(?:x|xx)+y.*" in trap["message"] and "0.2 s bound" in trap["message"]
    assert result.corpus_dir is not None
    assert [row["source"] for row in read_jsonl(result.corpus_dir / "articles.jsonl")] == ["good.txt"]


def test_a_pattern_timeout_survives_the_trip_from_a_worker() -> None:
    import pickle

    error = pickle.loads(pickle.dumps(PatternTimeout("(a+)+b", 0.5)))
    assert isinstance(error, PatternTimeout)
    assert (error.pattern, error.seconds, str(error)) == ("(a+)+b", 0.5, "pattern '(a+)+b' ran past its 0.5 s bound")


# --- one parse per pattern --------------------------------------------------------------------


def test_compile_once_builds_what_re_compile_does_for_every_shipped_pattern() -> None:
    """The compiled code, flags and groups from the shared parse tree are `re.compile`'s."""
    assert patterns._TREE_COMPILE_AS_EXPECTED
    for where, pattern in config_patterns().items():
        for flags in {0, pattern.flags}:
            built = patterns._compile_tree(pattern.pattern, flags, re._parser.parse(pattern.pattern, flags))
            expected = re.compile(pattern.pattern, flags)
            assert (built, built.groupindex, built.groups) == (expected, expected.groupindex, expected.groups), where


def test_a_tree_parsed_with_the_given_flags_is_the_one_for_the_compiled_flags() -> None:
    """parse_once files a tree under the compiled pattern's flags as well: parsing with those
    gives the same tree (inline flags and re.UNICODE added change nothing)."""
    def shape(tree: Any) -> tuple[Any, ...]:
        return repr(tree.data), tree.state.flags, tree.state.groupdict, tree.state.groups, tree.getwidth()

    for where, pattern in config_patterns().items():
        for flags in (0, int(re.IGNORECASE)):
            given = re._parser.parse(pattern.pattern, flags)
            compiled_flags = re.compile(pattern.pattern, flags).flags
            assert compiled_flags == flags | given.state.flags
            assert shape(given) == shape(re._parser.parse(pattern.pattern, compiled_flags)), where


def test_a_config_pattern_is_parsed_once_for_compiling_and_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    parses: list[tuple[str, int]] = []
    real_parse = patterns._sre_parser.parse

    def counting_parse(pattern: str, flags: int = 0) -> Any:
        parses.append((pattern, flags))
        return real_parse(pattern, flags)

    monkeypatch.setattr(patterns._sre_parser, "parse", counting_parse)
    patterns.forget_parse_trees()
    text = r"(?i)^(?P<author>\w{1,20}) says\s?:$"  # an inline flag: compiled flags differ from 0
    compiled = compile_pattern(text, "test")  # compiles, then risky_shape reads the tree
    assert compiled.flags != 0
    tree = patterns.parse_once(compiled.pattern, compiled.flags)  # as the prefilter readers ask
    assert tree is patterns.parse_once(text, 0)
    assert parses == [(text, 0)]
    patterns.forget_parse_trees()
    patterns.parse_once(text, 0)
    assert parses == [(text, 0), (text, 0)]


def test_parse_trees_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(patterns, "_MAX_PARSED_KEYS", 6)
    patterns.forget_parse_trees()
    for number in range(10):
        patterns.parse_once(f"(?i)x{number}", 0)  # two keys each: flags 0 and the compiled ones
    assert len(patterns._TREES) <= 6
    assert ("(?i)x9", 0) in patterns._TREES and ("(?i)x0", 0) not in patterns._TREES
    patterns.forget_parse_trees()
