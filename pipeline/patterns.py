"""User-supplied regular expressions: validated once, matched with a time bound.

Every pattern that comes from a config file (boilerplate rules, comment formats, byline and
site patterns) is compiled here. `compile_pattern` checks it with the stdlib parser (so the
prefilter indexes that read `re` parse trees keep working) and returns a `BoundedPattern`:
the same search/match/fullmatch/finditer/findall/sub/split, run by the `regex` engine with
its `timeout=` argument. A pattern that runs away on one input raises `PatternTimeout`
naming the pattern; the runner quarantines that record with reason `pattern_timeout` and
the run goes on.

The bounded engine costs nothing measurable here (boilerplate stage on the 965 dev-set pages:
2.39 MB/s CPU with `re`, 2.39 with this, same output), so every config pattern uses it rather
than only those a static check flags.

`risky_shape` is that static check, for backtracking shapes that can be super-linear: nested
unbounded quantifiers, adjacent unbounded quantifiers over overlapping characters with nothing
mandatory between them that the first cannot eat, an unbounded repeat of alternatives that
can start alike, back-references. tests/test_patterns.py runs it over every shipped pattern
(config files and module constants) and runs each on adversarial input under a time bound.

Each config pattern is compiled once per process (`compile_once`): a file's loader validates
it and the stage's warm-up compiles it again, and `re`'s own cache (512 patterns, first in
first out) may have forgotten it in between. Its parse tree is made once too (`parse_once`):
`re`'s code generator compiles it, then `risky_shape` here and the prefilter indexes of the
comment formats and boilerplate rules read it. Parsing is most of what compiling costs (the
comment formats' 62 patterns, macros expanded up to 5,000 characters: 0.13 s of CPU to parse,
0.05 s to generate code), and `re.compile` would parse a second time what the readers parse.
"""

from __future__ import annotations

import _sre  # re's engine: builds a pattern from generated code (see _compile_tree)
import functools
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import regex

from pipeline.errors import PatternError, PatternTimeout

try:  # the parser behind `re`: reads pattern shapes for the static check
    from re import _compiler as _sre_compiler  # type: ignore[attr-defined]
    from re import _constants as _c  # type: ignore[attr-defined]
    from re import _parser as _sre_parser  # type: ignore[attr-defined]
except ImportError:  # Python < 3.11
    import sre_compile as _sre_compiler  # type: ignore[no-redef]
    import sre_constants as _c  # type: ignore[no-redef]
    import sre_parse as _sre_parser  # type: ignore[no-redef]

# Wall-clock bound of one call (search, match, sub, a whole finditer...) of a config pattern.
# Shipped patterns take well under 1 ms on dev-set lines and under 0.5 s on 2,000-character
# adversarial runs (tests/test_patterns.py), so 1 s leaves headroom on a loaded machine while
# a runaway pattern costs one second and one quarantined page, not a hung run.
TIMEOUT_SECONDS = 1.0

# stdlib flag -> regex flag (same bit values today; spelled out so that stays checked).
_FLAGS = ((re.IGNORECASE, regex.IGNORECASE), (re.MULTILINE, regex.MULTILINE), (re.DOTALL, regex.DOTALL),
          (re.VERBOSE, regex.VERBOSE), (re.ASCII, regex.ASCII), (re.UNICODE, regex.UNICODE))


class BoundedPattern:
    """A compiled config pattern whose every call runs under `timeout` seconds.

    `pattern`, `flags` and `groupindex` are those of the stdlib compilation, so code that
    reads the pattern's `re` parse tree (prefilter indexes) sees what it always saw.
    """

    __slots__ = ("pattern", "flags", "groupindex", "groups", "timeout", "_engine")

    def __init__(self, stdlib: re.Pattern[str], timeout: float) -> None:
        self.pattern: str = stdlib.pattern
        self.flags: int = stdlib.flags
        self.groupindex = stdlib.groupindex
        self.groups: int = stdlib.groups
        self.timeout = timeout
        engine_flags = regex.VERSION0
        for std_flag, engine_flag in _FLAGS:
            if stdlib.flags & std_flag:
                engine_flags |= engine_flag
        self._engine = regex.compile(stdlib.pattern, engine_flags)

    def __repr__(self) -> str:
        return f"BoundedPattern({self.pattern!r}, timeout={self.timeout})"

    def _run(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return call(*args, timeout=self.timeout, **kwargs)
        except TimeoutError:
            raise PatternTimeout(self.pattern, self.timeout) from None

    def search(self, string: str, pos: int = 0, endpos: int | None = None) -> Any:
        return self._run(self._engine.search, string, pos, endpos)

    def match(self, string: str, pos: int = 0, endpos: int | None = None) -> Any:
        return self._run(self._engine.match, string, pos, endpos)

    def fullmatch(self, string: str, pos: int = 0, endpos: int | None = None) -> Any:
        return self._run(self._engine.fullmatch, string, pos, endpos)

    def finditer(self, string: str, pos: int = 0, endpos: int | None = None) -> Iterator[Any]:
        """The matches in order; the bound covers the whole iteration (the engine's scanner)."""
        iterator = self._run(self._engine.finditer, string, pos, endpos)
        while True:
            try:
                yield next(iterator)
            except StopIteration:
                return
            except TimeoutError:
                raise PatternTimeout(self.pattern, self.timeout) from None

    def findall(self, string: str, pos: int = 0, endpos: int | None = None) -> list[Any]:
        return self._run(self._engine.findall, string, pos, endpos)  # type: ignore[no-any-return]

    def sub(self, repl: Any, string: str, count: int = 0) -> str:
        return self._run(self._engine.sub, repl, string, count)  # type: ignore[no-any-return]

    def subn(self, repl: Any, string: str, count: int = 0) -> tuple[str, int]:
        return self._run(self._engine.subn, repl, string, count)  # type: ignore[no-any-return]

    def split(self, string: str, maxsplit: int = 0) -> list[str]:
        return self._run(self._engine.split, string, maxsplit)  # type: ignore[no-any-return]


Pattern = re.Pattern[str] | BoundedPattern
"""What compile_pattern returns: both have search/match/fullmatch/finditer/findall/sub/split."""


def compile_pattern(pattern: object, where: str, flags: int = 0,
                    timeout: float | None = None) -> Pattern:
    """Validate and compile one pattern from a config file.

    `where` names the file and entry (e.g. "configs/boilerplate/en.yaml: entry 3"); an
    invalid pattern raises PatternError "<where>: invalid regex '<pattern>': <why>".
    A pattern `risky_shape` passes (searched or matched) is a plain `re` pattern; any other
    runs under `timeout` seconds (default TIMEOUT_SECONDS).
    """
    if not isinstance(pattern, str):
        raise PatternError(f"{where}: pattern {pattern!r} is not a string")
    try:
        stdlib = compile_once(pattern, flags)
    except re.error as err:
        raise PatternError(f"{where}: invalid regex {pattern!r}: {err}") from err
    # (The compiled flags, with re.UNICODE, are those the prefilter readers parse with: one parse.)
    if risky_shape(pattern, stdlib.flags, search=True) is None:
        return stdlib
    try:
        return BoundedPattern(stdlib, TIMEOUT_SECONDS if timeout is None else timeout)
    except regex.error as err:  # valid for `re`, refused by the bounded engine
        raise PatternError(f"{where}: invalid regex {pattern!r}: {err}") from err


# A run compiles ~270 config patterns (boilerplate rules, comment formats and macros, bylines,
# sites): they all fit, with room for a config that names other files.
_MAX_CACHED = 1024
# Parse trees are large (the comment formats' 62 patterns: 4.8 MB) and read only while a
# stage's files are compiled and indexed: the boilerplate rules (135 patterns) and the comment
# formats (74 with their macros) are kept, each tree under at most two keys (see parse_once),
# and `forget_parse_trees` lets go of them once their readers are done.
_MAX_PARSED_KEYS = 512
_TREES: dict[tuple[str, int], Any] = {}  # (pattern, flags) -> parse tree, oldest first


def compile_once(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """`re.compile(pattern, flags)`, once per process (raises re.error), from `parse_once`'s tree."""
    return _compiled(pattern, int(flags))  # (lru_cache keys on the arguments as passed)


def parse_once(pattern: str, flags: int = 0) -> Any:
    """`pattern`'s parse tree (re's parser), once per process (raises re.error). Shared:
    readers must not change it.

    The tree is also kept under the flags of the pattern compiled from it (`flags` plus
    re.UNICODE and the pattern's inline global flags), which readers given the compiled
    pattern ask with: parsing with those gives the same tree (tests/test_patterns.py)."""
    flags = int(flags)
    tree = _TREES.get((pattern, flags))
    if tree is None:
        tree = _sre_parser.parse(pattern, flags)
        while len(_TREES) > _MAX_PARSED_KEYS - 2:
            del _TREES[next(iter(_TREES))]
        _TREES[(pattern, flags)] = _TREES[(pattern, flags | tree.state.flags)] = tree
    return tree


def forget_parse_trees() -> None:
    """Drop the cached parse trees (a few MB a forked worker would otherwise carry)."""
    _TREES.clear()


def _compile_tree(pattern: str, flags: int, tree: Any) -> re.Pattern[str]:
    """`re.compile(pattern, flags)` given its parse tree `tree`: what `re._compiler.compile`
    does after parsing (its private steps, checked at import: _TREE_COMPILE_AS_EXPECTED)."""
    groupindex = tree.state.groupdict
    indexgroup: list[str | None] = [None] * tree.state.groups
    for name, number in groupindex.items():
        indexgroup[number] = name
    return _sre.compile(pattern, flags | tree.state.flags, _sre_compiler._code(tree, flags),  # type: ignore[no-any-return]
                        tree.state.groups - 1, groupindex, tuple(indexgroup))


def _tree_compile_as_expected() -> bool:
    """Whether `_compile_tree` gives what `re.compile` does (same code, flags and groups) on
    a sample with named groups, inline flags and a lookbehind; if not, `re.compile` is used
    (and parses a second time)."""
    sample = r"(?i)(?P<a>[Oo]n\s)?(?<![q])(?:says|said)\s(?P<b>\d{1,2}[:.]\d\d)+?(?=z)$"
    try:
        built = _compile_tree(sample, 0, _sre_parser.parse(sample, 0))
    except Exception:  # noqa: BLE001 - re's internals are private: any surprise means re.compile
        return False
    expected = re.compile(sample)
    return built == expected and built.groupindex == expected.groupindex and built.groups == expected.groups


_TREE_COMPILE_AS_EXPECTED = _tree_compile_as_expected()


@functools.lru_cache(maxsize=_MAX_CACHED)
def _compiled(pattern: str, flags: int) -> re.Pattern[str]:
    if not _TREE_COMPILE_AS_EXPECTED:
        return re.compile(pattern, flags)
    return _compile_tree(pattern, flags, parse_once(pattern, flags))


# --- static check for super-linear backtracking shapes ------------------------------------

# Characters a pattern item is tried against to tell whether two repeats overlap: ASCII plus
# a sample of the classes that differ in Unicode (accented and CJK letters, other spaces,
# digits, punctuation and symbols).
_PROBES = tuple(chr(c) for c in range(1, 128)) + tuple(
    "éÉßøñçÀ中文ж\u00a0\u2009\u3000\u2028٣\u2014\u2019«»…€©\U0001f600\ufffd")
_REPEATS = (_c.MAX_REPEAT, _c.MIN_REPEAT)
_SINGLE = (_c.LITERAL, _c.NOT_LITERAL, _c.ANY, _c.IN)
_SINGLE_CHARS: dict[tuple[Any, str, int], frozenset[str]] = {}  # probes per single-character item


class _Shape:
    """Reads one parsed pattern; `found` collects the risky shapes met."""

    def __init__(self, state: Any, flags: int) -> None:
        self.state = state
        self.flags = flags
        self.found: list[str] = []

    def chars(self, items: Sequence[Any]) -> frozenset[str]:
        """Probe characters any item of `items` can consume (over-approximated)."""
        found: set[str] = set()
        for op, av in items:
            if op in _SINGLE:
                key = (op, repr(av), self.flags)
                chars = _SINGLE_CHARS.get(key)
                if chars is None:
                    sub = _sre_parser.SubPattern(self.state, [(op, av)])
                    compiled = _sre_compiler.compile(sub, self.flags)
                    chars = _SINGLE_CHARS[key] = frozenset(c for c in _PROBES if compiled.fullmatch(c))
                found |= chars
            elif op in _REPEATS or op is _c.POSSESSIVE_REPEAT:
                found |= self.chars(av[2])
            elif op is _c.SUBPATTERN:
                found |= self.chars(av[-1])
            elif op is _c.ATOMIC_GROUP:
                found |= self.chars(av)
            elif op is _c.BRANCH:
                for branch in av[1]:
                    found |= self.chars(branch)
            elif op in (_c.GROUPREF, _c.GROUPREF_EXISTS):
                return frozenset(_PROBES)
        return frozenset(found)

    def first_chars(self, items: Sequence[Any]) -> frozenset[str]:
        """Probe characters a match of `items` can start with (over-approximated)."""
        found: set[str] = set()
        for op, av in items:
            if op is _c.AT or op in (_c.ASSERT, _c.ASSERT_NOT):
                continue
            if op in _REPEATS or op is _c.POSSESSIVE_REPEAT:
                found |= self.first_chars(av[2])
            elif op is _c.SUBPATTERN:
                found |= self.first_chars(av[-1])
            elif op is _c.ATOMIC_GROUP:
                found |= self.first_chars(av)
            elif op is _c.BRANCH:
                for branch in av[1]:
                    found |= self.first_chars(branch)
            else:
                found |= self.chars([(op, av)])
            if self.width([(op, av)])[0] > 0:
                break
        return frozenset(found)

    @staticmethod
    def width(items: Sequence[Any]) -> tuple[int, int]:
        return _sre_parser.SubPattern(None, list(items)).getwidth()  # type: ignore[no-any-return]

    def walk(self, items: Sequence[Any]) -> None:
        items = list(items)
        self.adjacent(items)
        for op, av in items:
            if op in _REPEATS:
                low, high, body = av
                unbounded = high == _c.MAXREPEAT or high >= 10
                if unbounded:
                    self.nested(body)
                    self.alternatives(body)
                    self.optional_tail(body)
                self.walk(body)
            elif op is _c.SUBPATTERN:
                self.walk(av[-1])
            elif op is _c.BRANCH:
                for branch in av[1]:
                    self.walk(branch)
            elif op in (_c.ASSERT, _c.ASSERT_NOT):
                self.walk(av[1])
            elif op in (_c.GROUPREF, _c.GROUPREF_EXISTS):
                self.found.append("back-reference")
            # possessive repeats and atomic groups never backtrack into themselves: skipped

    def optional_tail(self, body: Sequence[Any]) -> None:
        """An unbounded repeat whose body ends in optional characters that could also begin the
        next iteration (`(?:x|xx)+`, parsed `(?:x(?:|x))+`): each run splits many ways."""
        tail: set[str] = set()
        for op, av in reversed(_flatten_groups(body)):
            if op is _c.AT or op in (_c.ASSERT, _c.ASSERT_NOT):
                continue
            low, high = self.width([(op, av)])
            if (low == high and op not in _REPEATS) or op in (_c.ATOMIC_GROUP, _c.POSSESSIVE_REPEAT):
                break  # a fixed or never-giving-back part ends the tail
            tail |= self.chars([(op, av)])
            if low > 0:
                break
        if tail & self.first_chars(body):
            self.found.append("optional tail overlapping the next iteration")

    def nested(self, body: Sequence[Any]) -> None:
        """An unbounded repeat inside another, unless a mandatory character outside the inner
        one that the inner one cannot consume separates the iterations (`(?:\\w+\\s)*`)."""
        for position, (op, av) in enumerate(body):
            inner = _inner_repeats([(op, av)])
            if not inner:
                continue
            inner_chars = frozenset().union(*(self.chars(rep[2]) for rep in inner))
            others = [item for n, item in enumerate(body) if n != position]
            separated = any(self.width([item])[0] > 0 and not (self.chars([item]) & inner_chars)
                            for item in others)
            if not separated:
                self.found.append("nested quantifiers")
                return

    def alternatives(self, body: Sequence[Any]) -> None:
        """An unbounded repeat of alternatives that can start with the same character."""
        for op, av in _flatten_groups(body):
            if op is _c.BRANCH:
                seen: set[str] = set()
                for branch in av[1]:
                    chars = self.first_chars(branch)
                    if chars & seen:
                        self.found.append("repeated overlapping alternatives")
                        return
                    seen |= chars

    def adjacent(self, items: Sequence[Any]) -> None:
        """Two unbounded repeats over overlapping characters with nothing mandatory between
        them that the first cannot consume (`\\s*\\s*`, `\\w+\\s?\\w+`): a split point
        to try at every character."""
        for start, (op, av) in enumerate(items):
            if op not in _REPEATS or av[1] != _c.MAXREPEAT:
                continue
            first = self.chars(av[2])
            for later_op, later_av in items[start + 1:]:
                if later_op in _REPEATS and later_av[1] == _c.MAXREPEAT and self.first_chars(later_av[2]) & first:
                    self.found.append("adjacent overlapping quantifiers")
                    return
                if later_op is _c.AT or later_op in (_c.ASSERT, _c.ASSERT_NOT):
                    continue
                low = self.width([(later_op, later_av)])[0]
                if low > 0 and not (self.chars([(later_op, later_av)]) <= first):
                    break


def _flatten_groups(items: Sequence[Any]) -> list[Any]:
    """Items with plain groups opened: `(a|ab)` inside a repeat is the same alternation."""
    flat: list[Any] = []
    for op, av in items:
        if op is _c.SUBPATTERN:
            flat.extend(_flatten_groups(av[-1]))
        else:
            flat.append((op, av))
    return flat


def _inner_repeats(items: Sequence[Any]) -> list[Any]:
    """The unbounded repeats within `items` (not under possessive repeats or atomic groups)."""
    found: list[Any] = []
    for op, av in items:
        if op in _REPEATS:
            if av[1] == _c.MAXREPEAT:
                found.append(av)
            else:
                found.extend(_inner_repeats(av[2]))
        elif op is _c.SUBPATTERN:
            found.extend(_inner_repeats(av[-1]))
        elif op is _c.BRANCH:
            for branch in av[1]:
                found.extend(_inner_repeats(branch))
    return found


def risky_shape(pattern: str, flags: int = 0, search: bool = False) -> str | None:
    """The first backtracking shape of `pattern` that can take super-linear time, or None.

    With `search`, also a leading run in an unanchored pattern (`\\s+foo`), which a search
    rescans from every start position: quadratic over a long run, but not catastrophic.
    A pattern it passes has none of these shapes; it may still be slow in ways no static
    check sees (the adversarial test covers those).
    """
    try:
        tree = parse_once(pattern, flags)
    except re.error:
        return "not parseable by re"
    shape = _Shape(tree.state, tree.state.flags | flags)
    shape.walk(list(tree))
    if search and not shape.found and _leading_run(list(tree)):
        shape.found.append("leading run rescanned by search")
    return shape.found[0] if shape.found else None


def _leading_run(items: Sequence[Any]) -> bool:
    """Whether the pattern is unanchored and starts with an unbounded repeat followed by more."""
    for position, (op, av) in enumerate(items):
        if op is _c.AT:
            if av in (_c.AT_BEGINNING, _c.AT_BEGINNING_STRING):
                return False
            continue
        if op is _c.SUBPATTERN:
            return _leading_run(list(av[-1]) + list(items[position + 1:]))
        if op is _c.BRANCH:
            return any(_leading_run(list(branch) + list(items[position + 1:])) for branch in av[1])
        return op in _REPEATS and av[1] == _c.MAXREPEAT and position + 1 < len(items)
    return False
