"""Dedup: one copy of each article and comment, and a record of the copies.

A corpus stage. `learn` reads every record once (through `summarize`, below)
and decides:

1. **Repeated lines.** A line (paragraph) whose normalised text already appeared
   earlier in the same record — a dek printed again as the first paragraph, a
   widget line printed twice — is removed as a span with reason `repeated_line`
   (the first occurrence stays). Lines shorter than `repeat_min_words` words are
   left alone: speaker labels ("PUTIN:") and separators repeat legitimately.
   Everything below works on the text without these lines.
2. **Exact copies** of articles and of comments: same text after `normalize`
   (Unicode NFKC, case, whitespace, quote and dash variants; digits folded to 0
   when `fold_digits`). Comments shorter than `comment_min_words` never count.
3. **Near-duplicate articles** with MinHash LSH over word shingles (MinHash
   signatures from datasketch), and every candidate pair verified on the real
   shingles before it is merged.
4. **Clusters** are the connected components of the verified pairs (union-find);
   the keep policy picks one record per cluster, the others are copies.
5. **Quoted comments.** A comment that repeats at least `quote_min_words`
   consecutive words of an earlier comment on the same page gets
   `quotes: [{"comment_id", "start", "end"}]` (offsets in its output text;
   `rebase_quotes` maps them to the exported text); it is kept, text unchanged.

`process` removes the repeated lines and marks (`mode: mark`) or drops
(`mode: drop`) the copies. Every record gets `dup_cluster` (`dup-<kept id>`);
copies get `duplicate_of` and `dup_similarity`, and are listed, with the
measures behind each decision, in state.json's `clusters`.

MinHash and LSH
---------------
Each article becomes the sequence of its word k-shingles (`shingle_words`,
default 5), each hashed to 32 bits by a hash that is the same in every process
and on every machine: each normalised word is hashed with blake2b (64 bits),
the k word hashes of a shingle are combined polynomially mod 2^64 and mixed
with splitmix64's finaliser, and the top 32 bits are kept (never Python's
salted `hash()`). The signature is a `datasketch.MinHash(num_perm, seed,
hashfunc=int, scheme="affine32")` updated with these shingle hashes:
datasketch mixes each with MurmurHash3's finaliser and keeps, for `num_perm`
permutations h_i(x) = (a_i x + b_i) mod 2^32 (a_i odd: a bijection), the
minimum min_x h_i(x). Its a_i, b_i come from numpy's legacy RandomState(seed),
a frozen stream, so signatures are deterministic across runs, processes and
numpy versions (and change only if datasketch changes its scheme: the index
records `minhash: datasketch affine32`). `hashfunc=int` because the shingles
arrive hashed: hashing them once, vectorised, serves both the signature and
the verification below. The minima are computed here, as one numpy product
over datasketch's own a_i, b_i, to the same values (a test compares them
with `update_batch`, which calls `hashfunc` once per value in Python);
only datasketch's minhash module is loaded, when the first signature is
computed (`import datasketch` would also import its LSH classes and scipy,
~0.5 s of CPU a process; pipeline/imports.py). Two documents agree on one
position with probability ~ their shingle Jaccard similarity s (Broder 1997).
LSH cuts the signature into b bands of r rows; two documents become a
candidate pair if all r rows of at least one band agree, with probability

    P(candidate | s) = 1 - (1 - s^r)^b              (the "S-curve";
                                                     Leskovec, Rajaraman, Ullman,
                                                     Mining of Massive Datasets, ch. 3)

whose steepest point is near s* = (1/b)^(1/r). Defaults: num_perm 128, b = 42,
r = 3 (126 values used), s* ~ 0.29:

    s      0.1    0.2    0.3    0.4    0.5    0.6    0.8
    P    0.041  0.286  0.683  0.938  0.996  1.000  1.000   (b 42, r 3: default)
    P    0.003  0.050  0.229  0.564  0.873  0.988  1.000   (b 32, r 4)
    P    0.000  0.000  0.001  0.010  0.061  0.237  0.947   (b 16, r 8)

The trade-off: a false positive of LSH (a candidate that is not a copy) costs
one verification, as no candidate is merged without one; a false negative (a
copy never proposed) is a copy kept twice, and nothing downstream repairs it.
So the curve sits well below the copies to catch. A copy with a paragraph or
two dropped, an added line and typos is contained in its original but its
Jaccard falls to ~0.45-0.7 (the benchmark's lowest: 0.46, P = 0.986), and a
copy joins its cluster through any of its 2-4 siblings. Measured on the
100,000-page benchmark (bench/dedup.md), pairs to find that were missed:
b 42 / r 3: 1.6 in 10,000 (161k candidates); b 32 / r 4: 3.9 in 10,000 (148k);
b 25 / r 5: 26 in 10,000 (138k), all at the same speed. Distinct articles on
one event sit at s ~ 0-0.2 (P <= 0.29), each such candidate costing one
verification of ~50 microseconds. b 16 / r 8 (s* 0.71) misses copies with
dropped paragraphs: recall 0.970 on the 300-article benchmark, where 42 x 3
and 32 x 4 reach 1.0. `bands`/`rows` set the bands explicitly; set both to null
and `lsh_threshold` picks the (b, r = num_perm // b) whose s* is nearest (0.3
gives 42 x 3).

The banding is this module's, over the matrix of datasketch signatures, not
datasketch's `MinHashLSH`: per band one stable argsort of 64-bit band hashes
finds the buckets, and the pairs come out sorted, so the result never depends
on set or dict order. `MinHashLSH` keeps a Python dict per band with a bytes
key per document and answers queries with unordered sets; on 20,000 random
signatures (42 x 3) its insert + query took 6.4 s of CPU and 234 MB more peak
RSS, the argsort banding 0.18 s. A bucket of more than MAX_BUCKET_PAIRS
members (a cluster of hundreds of copies) gives a star from its first member
plus a chain, not all n^2/2 pairs.

Verification
------------
A candidate pair (A, B) is measured on its real shingle sequences:

- Jaccard J = |S_A & S_B| / |S_A | S_B| of the shingle sets;
- containment C: of the two texts, the larger share of its words that lie
  inside at least one shingle the other text also has (word coverage: an
  overlap coefficient that a typo lowers by one word, not by k shingles, and an
  added line by its own words only);
- size ratio R = shorter / longer, in words.

It is a copy when J >= `near_threshold` (0.8), or C >= `containment_threshold`
(0.8) and R >= `min_size_ratio` (0.5). Containment is what catches a
syndicated copy with a paragraph or two dropped: it is contained in the
original while its Jaccard falls to ~0.5-0.7 (Jaccard >= 0.8 alone finds 82% of
the benchmark's copies, bench/dedup.md). The size ratio keeps a short text
found inside a long one (a statement quoted in a round-up, a teaser) from being
its "copy". On the syndication benchmark the copies to find (>= 80% of their
text shared) have C >= 0.79 (1st percentile 0.87), and distinct articles on
one event or sharing a paragraph C <= 0.54 (99th percentile <= 0.47). At
100,000 pages a short article whose borrowed paragraph made up 72% of it was
merged with C >= 0.7, not with 0.75 or 0.8; at 0.8 recall stays 0.9998 since
a copy usually links to its cluster through several members. `dup_similarity`
is C of the copy and the kept record.

Parallel and distributed runs
-----------------------------
`learn(records, config)` is `combine(summarize(r, config) for r in records, config)`.
`summarize` is pure and per record, so an executor can run it in worker
processes; a summary holds only what the decisions need (see `Summary`).
`band_keys(summary, config)` gives a summary's LSH band keys for a
distributed group-by; `bucket_pairs(ids)` turns one bucket into candidate
pairs as `combine` would, and `combine(summaries, config, candidate_pairs)`
then skips its own banding. `combine` orders what it reads by id wherever
order matters, so no order of summaries or pairs changes the state.

`combine` looks for quotes while the summaries arrive, not after them: with workers,
what is left once the last summary is in runs alone, before `process` can start. The
comments of a page arrive in one run (in file order an article is followed by its
comments), so a page is taken as complete when a comment of another page comes, and
its quotes are looked for with a few other such pages (`_Records.find_closed_quotes`).
Should a comment of a page come after that, the page's quotes are dropped and looked
for again at the end, with all its comments: the state is the same for any order.
On the 20 MB benchmark corpus (29,815 records) the CPU of `combine` after its last
summary fell from ~0.85 s to ~0.45 s this way (and with a cheaper `compare`; 2.7 to
1.2 G instructions; all of `combine`: 3.3 to 2.8 G).

Most texts are ASCII, or ASCII plus punctuation (curly quotes, dashes, "…"):
`summarize` reads those as bytes (one `bytes.translate` gives the words of
`normalize` at the text's offsets), the others through the regular expressions;
both give the same summary (a test compares them on random texts). Comments
cost ~5x less CPU this way than with a regex and a normalisation per word,
articles ~2.5-3x less (their MinHash block is much of the rest): bench/dedup.md.

Memory of `learn`/`combine` is bounded by the compact arrays of the
summaries, never by texts. A summary is a tuple (`Summary`), and `combine`
reads the summaries once, keeping them as columns (`_Records`, no object per
record): per article of `min_words` or more its shingle hashes (4 bytes per
word, for verification) and its signature (4 x num_perm = 512 bytes, in one
buffer; once all are read, the rows of the articles that go through LSH are
copied out in id order and the buffer is freed); per comment of
`quote_min_words` or more its word hashes (8 bytes per word) and its shape at
2 bits per character (where the offsets of the few quotes found come from);
per record its id and ~100 bytes of columns (keep-policy fields, 32-byte
digest, offsets). Measured with tracemalloc on the generated 5 MB corpus
(628 articles of ~360 words, 6,928 comments of ~72 words): `combine` keeps
2.26 KB per article and 1.0 KB per comment once all are read (3.5 and 3.0 KB
when summaries were dicts, all held until `combine` ended); the runner streams
the summaries into `combine` (held as a list instead: 2.5 and 1.35 KB). Quotes are
looked for a few pages at a time (`QUOTE_BATCH_WORDS`, ~1 MB of arrays); the
state itself is small unless many records are copies (~1.2 KB per record on
the syndication benchmark, where most are, with their measures). On its
100,000 pages (`--scale 100000`, articles only) the stage's peak RSS is 468 MB,
601 MB with dict summaries.

Incremental use
---------------
`build_index(records, config)` computes the signatures of the kept articles
of a corpus version; `save_index(index, path)` writes them as one deterministic
.npz (uint32 signatures, 64-bit hashes of the normalised texts, word counts,
and ids; format version 2 since the signatures come from datasketch: an index
of version 1 is refused with a request to rebuild it); `load_index(path)`. A
later run with `against: <that file>` treats its entries as already-kept
members: a new copy of an old article gets `duplicate_of: <old id>`.
Candidates are verified against the old article's text, read (only for
candidates) from the `articles.jsonl` beside the index; if that file is
absent, the MinHash estimate of J must reach `near_threshold`. Memory of the
index: 128 x 4 = 512 bytes of signature per article, 529 bytes with the text
hash and counts as loaded arrays (plus the ids as Python strings); the file
takes ~578 bytes per article (bench/dedup.md).

The export side makes the index as it writes the rows: `index_entry` of each
article row where the row is made (a worker process), then `assemble_index` of
the entries in row order. That is the index of a written articles.jsonl:

    index = dedup.build_index(read_jsonl(folder / "articles.jsonl"), config.stage("dedup"))
    dedup.save_index(index, folder / "dedup-index.npz")
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import math
import re
import unicodedata
import zipfile
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
from pydantic import model_validator

from pipeline.document import Span, apply_spans, line_span, split_lines
from pipeline.errors import StageError
from pipeline.imports import submodule
from pipeline.stage import ConfigPath, Outcome, Record, StageConfig

NAME = "dedup"
REASONS = frozenset(
    {
        "exact_duplicate",  # same text after normalisation as the kept record
        "near_duplicate",  # verified shingle similarity with a member of the kept record's cluster
        "repeated_line",  # a line already present earlier in the same record
    }
)

FOLDED = {"‘": "'", "’": "'", "‚": "'", "‛": "'", "′": "'", "`": "'",
          "“": '"', "”": '"', "„": '"', "‟": '"', "″": '"', "«": '"', "»": '"',
          "‐": "-", "‑": "-", "–": "-", "—": "-", "‒": "-", "―": "-", "−": "-"}
FOLD = re.compile("[" + "".join(FOLDED) + "]")
WORD = re.compile(r"\w+")
DIGITS = re.compile(r"\d")
DIGIT_RUNS = re.compile(r"(\d+)")
SENTENCE_PUNCT = ".,;:!?…"

KeepCriterion = Literal["earliest_published", "main_first", "longest", "smallest_id"]
DEFAULT_KEEP_POLICY: tuple[KeepCriterion, ...] = ("earliest_published", "main_first", "longest",
                                                  "smallest_id")
# 2: signatures of datasketch MinHash ("affine32"); version 1 held the stage's own (other values).
INDEX_FORMAT = "news-corpus-pipeline/dedup-index/2"
MINHASH_SCHEME = "affine32"  # datasketch >= 2.0: uint32 values, a bijective permutation per position
# Words of comments whose quotes are looked for in one pass (a few pages): bounds its
# arrays (~60 bytes a word, 1 MB) while sparing most pages a pass of their own.
QUOTE_BATCH_WORDS = 1 << 14
# What `combine` knows of a page while the summaries arrive (`_Records.page_state`).
PAGE_OPEN = 0  # its comments may still be arriving
PAGE_CLOSED = 1  # its comments came in one run, which has ended: its quotes can be looked for
PAGE_DONE = 2  # its quotes were looked for (`_Records.page_quotes`)
PAGE_REOPENED = 3  # a comment came after its run had ended: looked for once all have arrived
# Least buckets per gram (a power of two at or above) when `_shared_grams` drops the grams found
# once in a batch: at most ~12% of those share a bucket and go on to the sort. Measured on 16k
# grams: the prefilter and sort take ~0.6 of the sort alone with 8 or 16 (1 or 2 MB of counts),
# as much with 2, more with 32 (the counts no longer fit the cache).
GRAM_BUCKETS = 8
# Buckets larger than this get a star plus a chain of candidate pairs, not all pairs
# (a cluster of hundreds of copies would otherwise cost n^2/2 verifications).
MAX_BUCKET_PAIRS = 32


class Config(StageConfig):
    mode: Literal["drop", "mark"] = "drop"  # drop the copies, or keep them marked with duplicate_of
    fold_digits: bool = False  # treat all digits as equal when comparing (view counts, dates)
    shingle_words: int = 5  # word n-grams; 5 is the usual choice for news near-duplicates
    num_perm: int = 128  # MinHash values per article: 4 bytes each in memory and in the index
    bands: int | None = 42  # LSH bands b; a pair at Jaccard s is a candidate w.p. 1-(1-s^r)^b (docstring)
    rows: int | None = 3  # LSH rows r per band; b*r <= num_perm. Set both to null to use lsh_threshold
    lsh_threshold: float = 0.3  # only when bands/rows are null: pick b, r with (1/b)^(1/r) nearest it
    near_threshold: float = 0.8  # verified shingle Jaccard that alone makes two articles copies
    containment_threshold: float = 0.8  # verified word coverage of the more-covered text (paragraphs dropped)
    min_size_ratio: float = 0.5  # containment only counts if shorter/longer >= this (a quote is no copy)
    min_words: int = 30  # shorter articles are only deduplicated exactly
    exact_min_words: int = 8  # shorter articles (an extraction left "Read more") are never deduplicated
    comment_min_words: int = 8  # shorter comments ("Thanks!") are never deduplicated
    repeat_min_words: int = 4  # shorter repeated lines (speaker labels, separators) are kept
    quote_min_words: int = 8  # consecutive words of an earlier comment that make a quotation
    keep_policy: tuple[KeepCriterion, ...] = DEFAULT_KEEP_POLICY  # ordered criteria choosing the kept copy
    against: ConfigPath | None = None  # index of a previous corpus version (build_index/save_index)
    seed: int = 1  # MinHash seed: fixed, so clusters are the same on every run

    @model_validator(mode="after")
    def _check(self) -> "Config":
        if (self.bands is None) != (self.rows is None):
            raise ValueError("bands and rows go together: set both, or both to null to use lsh_threshold")
        if self.bands is not None and self.rows is not None:
            if self.bands < 1 or self.rows < 1 or self.bands * self.rows > self.num_perm:
                raise ValueError(f"bands * rows must be between 1 and num_perm ({self.num_perm})")
        if not 0 < self.lsh_threshold < 1:
            raise ValueError("lsh_threshold must be between 0 and 1")
        if self.shingle_words < 1 or self.num_perm < 1:
            raise ValueError("shingle_words and num_perm must be >= 1")
        if self.min_words < self.shingle_words:
            raise ValueError("min_words must be >= shingle_words")
        if not self.keep_policy or len(set(self.keep_policy)) != len(self.keep_policy):
            raise ValueError("keep_policy must list each criterion at most once")
        return self


# --------------------------------------------------------------------------- text


def _fold_chars(text: str) -> str:
    """NFKC, quote and dash variants to ASCII, case folded; newlines are left where they were."""
    text = unicodedata.normalize("NFKC", text)
    if not text.isascii() or "`" in text:
        text = FOLD.sub(lambda m: FOLDED[m.group()], text)
    return text.casefold()


def normalize(text: str, fold_digits: bool) -> str:
    """Case, whitespace, quotes and dashes folded; what makes two copies 'the same'."""
    text = _fold_chars(text)
    if fold_digits:
        text = DIGITS.sub("0", text)
    return " ".join(text.split())


# The fast path of the per-record work. Most texts are ASCII, or ASCII plus punctuation
# (curly quotes, dashes, "…"); with each such character replaced by one ASCII stand-in,
# bytes.translate gives the words of `normalize` in one C pass, at the same offsets as
# the text, instead of a regex over the text and a normalisation per word. Texts with
# other characters (letters beyond ASCII, combining marks) take the general path; both
# give the same summary (tests/stages/test_dedup.py compares them).


def _byte_table(mapping: dict[str, str]) -> bytes:
    """A bytes.translate table: `mapping` for the characters it names, the byte itself otherwise."""
    table = bytearray(range(256))
    for char, to in mapping.items():
        table[ord(char)] = ord(to)
    return bytes(table)


ASCII = [chr(code) for code in range(128)]
NON_ASCII = re.compile("[^\x00-\x7f]")
# Word characters as `normalize` leaves them (lower case; digits 0 when folded), newlines
# kept, every other byte a space: `split()` gives the words of `normalize`.
WORD_BYTES = {fold: _byte_table({c: ("0" if fold and DIGITS.match(c) else c.lower()) if WORD.match(c)
                                 else "\n" if c == "\n" else " " for c in ASCII}) for fold in (False, True)}
# What `normalize` does to ASCII before joining on single spaces: lower case, "`" to "'",
# digits 0 when folded; and every character str.split() splits on becomes a space.
NORM_BYTES = {fold: _byte_table({**{c: c.lower() for c in ASCII if c.isupper()}, "`": "'",
                                 **{c: " " for c in ASCII if c.isspace()},
                                 **({c: "0" for c in ASCII if DIGITS.match(c)} if fold else {})})
              for fold in (False, True)}
# Word characters 1, sentence punctuation 2 ("…" stands in as "."), the rest 0: for word offsets.
CLASS_BYTES = _byte_table({c: "\1" if WORD.match(c) else "\2" if c in SENTENCE_PUNCT else "\0" for c in ASCII})


@lru_cache(maxsize=4096)
def _stand_in(char: str) -> str | None:
    """The ASCII character that can replace a non-ASCII one for word splitting, normalised
    words and quote ends alike: "." for "…", a space for other punctuation, symbols and
    spaces. None for a character that is or makes a word character ("é", "™" -> "tm"), or
    that NFKC could join to a neighbour (combining marks): those texts take the general path."""
    if unicodedata.category(char)[0] not in "PSZC" or WORD.match(char):
        return None
    folded = _fold_chars(char)
    if not folded or WORD.search(folded) or "\n" in folded or any(unicodedata.combining(c) for c in folded):
        return None
    return "." if char in SENTENCE_PUNCT else " "


def _ascii_stand_in(text: str) -> bytes | None:
    """`text` as ASCII bytes, each non-ASCII character replaced by its stand-in (same
    offsets), or None when one has none."""
    if not text.isascii():
        for char in set(NON_ASCII.findall(text)):
            stand_in = _stand_in(char)
            if stand_in is None:
                return None
            text = text.replace(char, stand_in)
    return text.encode("ascii")


def _repeats_a_line(view: bytes, least: int) -> bool:
    """False when no two lines of a word view (`WORD_BYTES`) can have the same words, at
    least `least` of them: then `repeated_line_spans` has nothing to remove. Lines with
    the same words are the same once their spaces are deleted, so only such texts
    (rare: True) need the word-by-word comparison."""
    if b"\n" not in view:
        return False
    lines = [line for line in view.translate(None, b" ").split(b"\n") if len(line) >= least]
    return len(set(lines)) < len(lines)


@lru_cache(maxsize=4096)
def _folded_stand_in(char: str) -> str | None:
    """What `normalize` makes of a character that has a stand-in, on its own: a space for a
    space, else its folded form; None if that holds a space bytes.split() would miss."""
    folded = _fold_chars(char)
    if folded.isspace():
        return " "
    return None if any(c.isspace() and not c.isascii() for c in folded) else folded


def _length_and_digest(text: str, fold_digits: bool) -> tuple[int, bytes]:
    """len(normalize(text)) and the sha256 of its UTF-8, for a text of ASCII and stand-in
    characters (`_ascii_stand_in`): those are folded one at a time, the rest as bytes."""
    if not text.isascii():
        for char in set(NON_ASCII.findall(text)):
            folded = _folded_stand_in(char)
            if folded is None:
                norm = normalize(text, fold_digits)
                return len(norm), hashlib.sha256(norm.encode("utf-8")).digest()
            text = text.replace(char, folded)
    data = text.encode("utf-8").translate(NORM_BYTES[fold_digits])  # bytes past ASCII stay as they are
    if b"  " in data or data[:1] == b" " or data[-1:] == b" ":  # else it is joined on single spaces already
        data = b" ".join(data.split())
    return len(data) if data.isascii() else len(data.decode("utf-8")), hashlib.sha256(data).digest()


def _word_offsets(shape: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Start of each word of a text, and its end past the sentence punctuation right after it
    (a quote takes the full stop along), from its shape (`_shape`)."""
    classes = np.frombuffer(b"\0" + shape + b"\0", dtype=np.uint8)
    is_word = classes == 1
    edges = (is_word[1:] != is_word[:-1]).nonzero()[0]
    no_stop = (classes[1:] != 2).nonzero()[0]  # ends with len(shape): the 0 added
    return edges[0::2], no_stop[no_stop.searchsorted(edges[1::2])]  # the first at or after the end that is no stop


def _shape(text: str) -> bytes:
    """One byte per character of `text`: 1 a word character, 2 sentence punctuation, 0 any other.
    A comment's shape and word hashes are what quote detection needs instead of its text."""
    for char in set(NON_ASCII.findall(text)):
        text = text.replace(char, "a" if WORD.match(char) else "." if char in SENTENCE_PUNCT else " ")
    return text.encode("ascii").translate(CLASS_BYTES)


def _pack_shape(shape: bytes) -> bytes:
    """A shape at 2 bits a character (its classes are 0-2), 4 characters a byte: a quarter
    of the memory a comment's shape takes until `combine` is done. The shape is read as one
    little-endian integer (a class at bits 0, 8, 16, 24 of every 4 bytes); OR-ing in its
    shifts by 6, 12 and 18 brings a group's 4 classes to bits 0-1, 2-3, 4-5, 6-7 of its
    first byte (the other bits shifted there are 0: a class has 2 bits), and every 4th byte
    is kept. Python's integers do this in a few C passes: on the ~400 characters of a
    comment, 3.4 microseconds against 7.9 for the same with numpy arrays (their per-call
    cost dominates)."""
    packed = int.from_bytes(shape, "little")
    packed |= packed >> 6 | packed >> 12 | packed >> 18
    return packed.to_bytes(-(-len(shape) // 4) * 4, "little")[::4]


def _unpack_shape(packed: bytes) -> bytes:
    """The shape `_pack_shape` packed, with up to 3 characters of class 0 added at the end
    (which changes no word offset)."""
    values = np.frombuffer(packed, dtype=np.uint8)
    return (values[:, None] >> np.array([0, 2, 4, 6], dtype=np.uint8) & 3).tobytes()


def shingles(text: str, size: int) -> set[str]:
    words = WORD.findall(text)
    if len(words) < size:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i:i + size]) for i in range(len(words) - size + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def repeated_line_spans(text: str, config: Config) -> list[Span]:
    """Spans removing each line whose words (normalised) already made an earlier line.

    Lines are compared by their word sequence, so a dek repeated with quotes or
    other punctuation added is still the same line. A removed last line takes
    the newline before it, so the text never ends with a stray newline.
    """
    return _repeated_line_spans(text, config, _ascii_stand_in(text) if "\n" in text else None)


def _repeated_line_spans(text: str, config: Config, ascii_text: bytes | None) -> list[Span]:
    """`repeated_line_spans`, given the text's ASCII stand-in (`_ascii_stand_in`; None: it has none)."""
    if "\n" not in text:
        return []
    least = config.repeat_min_words
    keys: list[str | bytes | None] = []  # per line, its words if it has `least` of them
    if ascii_text is not None:
        view = ascii_text.translate(WORD_BYTES[config.fold_digits])
        if not _repeats_a_line(view, least):
            return []
        for view_line in view.split(b"\n"):  # line n of the view is line n of the text
            words = view_line.split()
            keys.append(b" ".join(words) if len(words) >= least else None)
    else:
        # Folding maps characters, never newlines: line n of the folded text is line n of the text.
        folded = _fold_chars(text).split("\n")
        if len(folded) < text.count("\n") + 1:  # not expected; fall back to folding line by line
            folded = [_fold_chars(line) for line in text.split("\n")]
        for fold in folded:
            words = WORD.findall(DIGITS.sub("0", fold) if config.fold_digits else fold)
            keys.append(" ".join(words) if len(words) >= least else None)
    lines = split_lines(text)
    seen: set[str | bytes] = set()
    removed: list[int] = []
    for number, (line, key) in enumerate(zip(lines, keys)):
        if key is None or line.is_blank:
            continue
        if key in seen:
            removed.append(number)
        else:
            seen.add(key)
    spans = [line_span(lines[n], text, "repeated_line") for n in removed]
    if removed and removed[-1] == len(lines) - 1 and not text.endswith("\n"):
        first = len(removed) - 1  # the run of removed lines that ends the text
        while first > 0 and removed[first - 1] == removed[first] - 1:
            first -= 1
        start = lines[removed[first]].start
        if start > 0:
            old = spans[first]
            spans[first] = Span(start - 1, old.end, old.reason, text[start - 1:old.end])
    return spans


def clean_text(record: Record, config: Config) -> tuple[str, list[Span]]:
    """The record's text without its repeated lines, and the spans that removed them."""
    text = record.get("text") or ""
    spans = repeated_line_spans(text, config)
    return (apply_spans(text, spans) if spans else text), spans


# --------------------------------------------------------------------------- keep policy


def _natural(value: str) -> tuple[Any, ...]:
    """'p#c9' < 'p#c10': digit runs compare as numbers; the raw id breaks the last ties.

    A flat tuple (kind, part, kind, part, ...): a kind (0 number, 1 text, 2 the raw id)
    always precedes its part, so parts of different types are never compared."""
    key: list[Any] = []
    for part in DIGIT_RUNS.split(value):
        if part:
            key += (0, int(part)) if part.isdigit() else (1, part)
    key += (2, value)
    return tuple(key)


def _timestamp(value: Any) -> float | None:
    """ISO 8601 to seconds; a date alone is midnight, a time without zone is UTC."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.timestamp()


def keep_key(record: Record, policy: Sequence[str] = DEFAULT_KEEP_POLICY) -> tuple[Any, ...]:
    """Sort key of the keep policy: the smallest key in a cluster is kept.

    earliest_published: `published` (comments: `posted`), undated last;
    main_first: role main before related; longest: most characters of normalised
    text (`length` if the record has it; extra spaces do not count);
    smallest_id: natural order of ids. The id always breaks the remaining ties.
    """
    length = record.get("length")
    if length is None:
        length = len(normalize(record.get("text") or "", False))
    return _keep_key(record["id"], _timestamp(record.get("published") or record.get("posted")),
                     (record.get("role") or "main") == "main", length, policy)


def _keep_key(doc_id: str, moment: float | None, main: bool, length: int, policy: Sequence[str]) -> tuple[Any, ...]:
    """`keep_key` of a record given by the fields it reads (a summary's, or an index entry's)."""
    key: list[Any] = []
    for criterion in policy:
        if criterion == "earliest_published":
            key.append((0, moment) if moment is not None else (1, 0.0))
        elif criterion == "main_first":
            key.append(0 if main else 1)
        elif criterion == "longest":
            key.append(-length)
        elif criterion == "smallest_id":
            key.append(_natural(doc_id))
        else:
            raise ValueError(f"unknown keep criterion {criterion!r}")
    key.append(_natural(doc_id))
    return tuple(key)


# --------------------------------------------------------------------------- hashing

_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_ROLL = np.uint64(0x9E3779B97F4A7C15)
_FNV = np.uint64(0x100000001B3)


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads every input bit over the 64 output bits."""
    h = h ^ (h >> np.uint64(30))  # a new array; the rest in place
    h *= _MIX1
    h ^= h >> np.uint64(27)
    h *= _MIX2
    h ^= h >> np.uint64(31)
    return h


class _TokenHasher:
    """Stable 64-bit hashes of words (blake2b of their `encode`d form), with a bounded cache.

    The cache only saves time: a hash never depends on what is cached, so one
    hasher per process serves every record (and every worker has its own).
    """

    def __init__(self, encode: Callable[[Any], bytes], limit: int = 1 << 18) -> None:
        self.cache: dict[str | bytes, bytes] = {}  # word -> its 8-byte digest (a little-endian uint64)
        self.encode = encode  # the bytes a word's hash is of
        self.limit = limit  # ~30 MB of words; emptied when full

    def __call__(self, words: Sequence[str] | Sequence[bytes]) -> np.ndarray:
        return np.frombuffer(self.digests(words), dtype="<u8")

    def digests(self, words: Sequence[str] | Sequence[bytes]) -> bytes:
        """The words' hashes as little-endian uint64 bytes: one join of cached digests, no
        Python code (and no int conversion) per known word."""
        cache = self.cache
        try:
            return b"".join(map(cache.__getitem__, words))
        except KeyError:
            if len(cache) > self.limit:
                cache.clear()
            encode = self.encode
            for word in set(words).difference(cache):
                cache[word] = hashlib.blake2b(encode(word), digest_size=8).digest()
            return b"".join(map(cache.__getitem__, words))


def _utf8(word: str | bytes) -> bytes:
    """A normalised word's bytes; the fast path's words arrive as ASCII bytes already."""
    return word if isinstance(word, bytes) else word.encode("utf-8")


def _normalized_utf8(word: str, fold_digits: bool) -> bytes:
    return normalize(word, fold_digits).encode("utf-8")


# Normalised words, as str or ASCII bytes (the same word gets the same hash either way).
_WORD_HASHES = _TokenHasher(_utf8)
# Words as they stand in a text, each normalised alone (its hash is its normalised form's), per fold_digits.
_RAW_WORD_HASHES = {fold: _TokenHasher(partial(_normalized_utf8, fold_digits=fold)) for fold in (False, True)}


def _gram_hashes(tokens: np.ndarray, size: int) -> np.ndarray:
    """64-bit hash of every run of `size` consecutive token hashes: the polynomial
    t_0 R^(size-1) + ... + t_(size-1) mod 2^64, mixed.

    Computed by doubling (runs of 1, 2, 4, ... tokens, each from two of half the
    width: h_2w(i) = h_w(i) R^w + h_w(i+w)) and joining the widths that make up
    `size`: ~2 log2(size) array operations, not 2 size (most comments are short:
    the operations' overhead is the cost)."""
    count = len(tokens) - size + 1
    if count <= 0:
        return np.zeros(0, dtype=np.uint64)
    run, width = np.asarray(tokens, dtype=np.uint64), 1  # run[i]: the hash of tokens[i:i + width]
    grams, covered = None, 0  # grams[i]: the hash of tokens[i:i + covered]
    while True:
        if size & width:
            if grams is None:
                grams = run
            else:
                grams = grams[:len(tokens) - covered - width + 1] * np.uint64(pow(int(_ROLL), width, 1 << 64))
                grams += run[covered:covered + len(grams)]
            covered += width
        if covered == size:
            return _mix(grams[:count])
        run = run[:len(run) - width] * np.uint64(pow(int(_ROLL), width, 1 << 64)) + run[width:]
        width *= 2


def _shingle_seq(tokens: np.ndarray, size: int) -> np.ndarray:
    """The document's shingles in text order, as 32-bit hashes (the MinHash input)."""
    return (_gram_hashes(tokens, size) >> np.uint64(32)).astype(np.uint32)


def _unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.sort + mask: faster than np.unique on short arrays)."""
    ordered = np.sort(values)
    if len(ordered) < 2:
        return ordered
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]


_FMIX1 = np.uint32(0x85EBCA6B)
_FMIX2 = np.uint32(0xC2B2AE35)


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finaliser, the pre-mix of datasketch's affine32 scheme (a bijection)."""
    h = h ^ (h >> np.uint32(16))
    h = h * _FMIX1
    h = h ^ (h >> np.uint32(13))
    h = h * _FMIX2
    return h ^ (h >> np.uint32(16))


@lru_cache(maxsize=8)
def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine32 permutation parameters (a_i odd, b_i), as uint32 columns, drawn
    once per process.

    Only datasketch's `minhash` module is loaded, on first use (pipeline/imports.py):
    `import datasketch` imports its LSH classes and scipy, ~0.4 s of CPU in every process.
    """
    minhash = submodule("datasketch.minhash")
    a, b = minhash.MinHash(num_perm=num_perm, seed=seed, hashfunc=int, scheme=MINHASH_SCHEME).permutations
    return a.astype(np.uint32)[:, None], b.astype(np.uint32)[:, None]


def minhash_signature(seq: np.ndarray, num_perm: int, seed: int) -> np.ndarray:
    """The uint32 MinHash signature (`num_perm` minima) of a non-empty shingle sequence.

    The value of `datasketch.MinHash(num_perm, seed, hashfunc=int, scheme="affine32")`
    after `update_batch` with these hashes (a test checks it), computed as one numpy
    product min_x (a_i fmix32(x) + b_i) mod 2^32 (`update_batch` calls `hashfunc`
    once per value in Python), in place in a (num_perm, shingles) block.
    """
    if len(seq) == 0:
        raise ValueError("minhash_signature: empty shingle sequence")
    a, b = _permutations(num_perm, seed)
    mixed = _fmix32(seq.astype(np.uint32, copy=False))  # a repeated shingle changes no minimum: no dedup
    minima = [_block_minima(mixed[start:start + 8192], a, b)  # bounded memory (4 MB) for a very long article
              for start in range(0, len(mixed), 8192)]
    return minima[0] if len(minima) == 1 else np.minimum.reduce(minima)


def _block_minima(mixed: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    block = a * mixed  # (num_perm, shingles), then in place: no second block allocated
    block += b
    return block.min(axis=1)


def lsh_params(config: Config) -> tuple[int, int]:
    """(bands, rows): explicit, or the pair whose S-curve midpoint (1/b)^(1/r) is nearest lsh_threshold."""
    if config.bands is not None and config.rows is not None:
        return config.bands, config.rows
    best = min(range(1, config.num_perm + 1),
               key=lambda r: (abs((1 / (config.num_perm // r)) ** (1 / r) - config.lsh_threshold), r))
    return config.num_perm // best, best


def candidate_probability(similarity: float, bands: int, rows: int) -> float:
    """The S-curve: probability that a pair at this Jaccard similarity shares a band."""
    return 1 - (1 - similarity ** rows) ** bands


def _band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n, bands) uint64: one hash per band of rows (FNV-style over the 32-bit values)."""
    count = len(signatures)
    values = signatures[:, :bands * rows].astype(np.uint64).reshape(count, bands, rows)
    keys = np.full((count, bands), 0xCBF29CE484222325, dtype=np.uint64)
    for row in range(rows):
        keys = (keys ^ values[:, :, row]) * _FNV
    return _mix(keys)


def _bucket_codes(order: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> list[np.ndarray]:
    """Pair codes (i * n + j, i < j) of the members of each bucket; buckets of one size at a time."""
    count = len(order)
    codes = []
    for size in np.unique(sizes[sizes > 1]).tolist():
        firsts = starts[sizes == size]
        members = np.sort(order[firsts[:, None] + np.arange(size)[None, :]], axis=1).astype(np.int64)
        if size <= MAX_BUCKET_PAIRS:
            left, right = np.triu_indices(size, k=1)
        else:  # a star from the first member plus a chain
            left = np.concatenate((np.zeros(size - 1, dtype=np.int64), np.arange(1, size - 1)))
            right = np.concatenate((np.arange(1, size), np.arange(2, size)))
        codes.append((members[:, left] * count + members[:, right]).ravel())
    return codes


def _candidate_pairs(signatures: np.ndarray, bands: int, rows: int,
                    skip_both_from: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i < j) sharing at least one band, and the number of bands they share.

    Rows at or after `skip_both_from` are entries of a previous index: pairs of
    two such entries are not proposed (they were deduplicated in their own run).
    """
    count = len(signatures)
    empty = np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=np.int64)
    if count < 2:
        return empty
    keys = _band_keys(signatures, bands, rows)
    codes: list[np.ndarray] = []
    for band in range(bands):
        order = np.argsort(keys[:, band], kind="stable")
        ordered = keys[order, band]
        cuts = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1
        starts = np.concatenate(([0], cuts))
        sizes = np.diff(np.concatenate((starts, [count])))
        codes.extend(_bucket_codes(order, starts, sizes))
    if not codes:
        return empty
    unique, hits = np.unique(np.concatenate(codes), return_counts=True)
    pairs = np.stack((unique // count, unique % count), axis=1)
    if skip_both_from is not None:
        keep = pairs[:, 0] < skip_both_from
        pairs, hits = pairs[keep], hits[keep]
    return pairs, hits


def band_keys(summary: Summary, config: Config) -> list[str]:
    """The LSH band keys of one summary, for a group-by outside this process.

    Key `"<band>:<hex of its rows' values>"`: two summaries share a key exactly
    when all rows of that band agree (no hash in between, so no collisions).
    Records without a signature (comments, short articles) have none.
    """
    signature = summary.signature
    if signature is None:
        return []
    bands, rows = lsh_params(config)
    width = 4 * rows  # bytes of one band: uint32 little-endian values
    return [f"{band}:{signature[band * width:(band + 1) * width].hex()}" for band in range(bands)]


def bucket_pairs(ids: Iterable[str]) -> list[tuple[str, str]]:
    """The candidate pairs of the ids that share one band key, as `combine` forms them:
    every pair, or past MAX_BUCKET_PAIRS members a star from the first (natural order)
    plus a chain."""
    members = sorted(set(ids), key=_natural)
    if len(members) <= MAX_BUCKET_PAIRS:
        return [(a, b) for i, a in enumerate(members) for b in members[i + 1:]]
    first = members[0]
    return [(first, b) for b in members[1:]] + list(zip(members[1:-1], members[2:]))


def _shared_bands(signatures: np.ndarray, pairs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """For each pair of rows, how many of its bands agree on every row (in chunks: bounded memory)."""
    hits = np.zeros(len(pairs), dtype=np.int64)
    used = bands * rows
    for start in range(0, len(pairs), 8192):
        chunk = pairs[start:start + 8192]
        same = signatures[chunk[:, 0], :used] == signatures[chunk[:, 1], :used]
        hits[start:start + len(chunk)] = same.reshape(len(chunk), bands, rows).all(axis=2).sum(axis=1)
    return hits


# --------------------------------------------------------------------------- verification


@dataclass(frozen=True)
class Similarity:
    jaccard: float
    containment: float
    size_ratio: float

    def is_copy(self, config: Config) -> bool:
        return self.jaccard >= config.near_threshold or (
            self.containment >= config.containment_threshold and self.size_ratio >= config.min_size_ratio)

    def to_json(self) -> dict[str, float]:
        return {"jaccard": round(self.jaccard, 4), "containment": round(self.containment, 4),
                "size_ratio": round(self.size_ratio, 4)}


def _coverage(seq: np.ndarray, other_set: np.ndarray, size: int) -> float:
    """Share of the words of a document inside at least one shingle found in the other
    (`other_set`: the other's shingles, sorted and unique). A shingle found there covers
    its `size` words, or up to the next such shingle: the sum of those over the hits."""
    hits = np.flatnonzero(_found_in(seq, other_set))
    if not len(hits):
        return 0.0
    return float(np.minimum(np.diff(hits), size).sum() + size) / (len(seq) + size - 1)


def _found_in(values: np.ndarray, ordered: np.ndarray) -> np.ndarray:
    """Per value, whether the sorted, non-empty `ordered` holds it."""
    return ordered.take(np.searchsorted(ordered, values), mode="clip") == values


def compare(seq_a: np.ndarray, seq_b: np.ndarray, size: int) -> Similarity:
    """Jaccard, containment (word coverage) and size ratio of two shingle sequences."""
    if len(seq_a) == 0 or len(seq_b) == 0:
        return Similarity(0.0, 0.0, 0.0)
    set_a, set_b = _unique(seq_a), _unique(seq_b)
    shared = int(np.count_nonzero(_found_in(set_a, set_b)))
    union = len(set_a) + len(set_b) - shared
    words_a, words_b = len(seq_a) + size - 1, len(seq_b) + size - 1
    containment = max(_coverage(seq_a, set_b, size), _coverage(seq_b, set_a, size))
    return Similarity(shared / union if union else 0.0, containment,
                      min(words_a, words_b) / max(words_a, words_b))


def similarity(text_a: str, text_b: str, config: Config) -> Similarity:
    """The verification measures of two texts, as `learn` computes them."""
    seqs = [_shingle_seq(_WORD_HASHES(WORD.findall(normalize(t, config.fold_digits))), config.shingle_words)
            for t in (text_a, text_b)]
    return compare(seqs[0], seqs[1], config.shingle_words)


# --------------------------------------------------------------------------- quotes


@dataclass
class _Comment:
    id: str
    parent: str | None
    tokens: np.ndarray  # 64-bit hashes of normalised words
    shape: bytes  # packed (`_pack_shape`): word offsets, for the few comments that quote


def _comment_tokens(text: str, config: Config) -> tuple[bytes, bytes]:
    """Word hashes (little-endian uint64) and shape of a comment whose text is not all ASCII
    stand-ins (the general path of `summarize`): each word is normalised alone, once per process."""
    return _RAW_WORD_HASHES[config.fold_digits].digests(WORD.findall(text)), _shape(text)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of the runs of True."""
    padded = np.concatenate(([False], mask, [False]))
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))


def find_quotes(comments: list[_Comment], config: Config) -> dict[str, list[dict[str, Any]]]:
    """Quotations of earlier comments, per quoting comment (comments of one page, in page order)."""
    if not comments:
        return {}
    counts = np.array([len(c.tokens) for c in comments], dtype=np.int64)
    [marks] = _shared_grams(np.concatenate([c.tokens for c in comments]), counts, [len(comments)],
                            config.quote_min_words)
    return _page_quotes([c.id for c in comments], [c.parent for c in comments], comments.__getitem__, marks,
                        config.quote_min_words)


def _page_quotes(ids: list[str], parents: list[str | None], comment_at: Callable[[int], _Comment],
                 marks: dict[int, dict[int, list[int]]], size: int) -> dict[str, list[dict[str, Any]]]:
    """The quotes of one page's comments (their ids and parents in page order), from where
    each shares grams with earlier ones; `comment_at` gives a comment's words and shape,
    wanted only for the few that quote."""
    parent_of = dict(zip(ids, parents))
    found: dict[str, list[dict[str, Any]]] = {}
    for order, sources in sorted(marks.items()):
        comment = comment_at(order)
        chain, node, seen = [], comment.parent, set()
        while node is not None and node in parent_of and node not in seen:
            seen.add(node)
            chain.append(node)
            node = parent_of[node]
        words = len(comment.tokens)
        candidates = []
        for source, starts in sources.items():
            hit = np.zeros(words - size + 1, dtype=np.int32)
            hit[starts] = 1
            mask = np.convolve(hit, np.ones(size, dtype=np.int32))[:words] > 0  # the words of those grams
            rank = chain.index(ids[source]) if ids[source] in chain else len(chain)
            for first, last in _runs(mask):
                candidates.append((-(last - first), rank, source, first, last))
        chosen: list[tuple[int, int, int]] = []
        taken = np.zeros(words, dtype=bool)
        for _, _, source, first, last in sorted(candidates):
            if not taken[first:last].any():
                taken[first:last] = True
                chosen.append((first, last, source))
        quotes = []
        starts, ends = _word_offsets(_unpack_shape(comment.shape))
        for first, last, source in sorted(chosen):
            start, end = int(starts[first]), int(ends[last - 1])
            quotes.append({"comment_id": ids[source], "start": start, "end": end})
        found[comment.id] = quotes
    return found


def _shared_grams(tokens: np.ndarray, counts: np.ndarray, page_sizes: list[int],
                  size: int) -> list[dict[int, dict[int, list[int]]]]:
    """Per page, per comment (its index on the page), per earlier comment of the page that
    has one of its grams (runs of `size` words), where those grams start in it.

    `tokens`: the word hashes of the comments of a few pages, one comment after another
    (`counts` words each), each page's in page order (`page_sizes` comments each). Their
    grams are hashed in one pass and sorted once; only those found in two or more
    comments of a page are looked at one by one (few: a quote, or a comment posted twice).
    Before the sort, a count of the grams per bucket of their top bits (`GRAM_BUCKETS`)
    drops most of those found once: a gram alone in its bucket is alone in the batch.
    """
    marks: list[dict[int, dict[int, list[int]]]] = [{} for _ in page_sizes]
    if np.count_nonzero(counts >= size) < 2:
        return marks
    page_of = np.repeat(np.arange(len(page_sizes)), page_sizes)  # per comment
    page_first = np.cumsum(page_sizes) - page_sizes  # index of each page's first comment
    grams = _gram_hashes(tokens, size)
    owners = np.repeat(np.arange(len(counts)), counts)[:len(grams)]
    starts = np.arange(len(grams)) - (np.cumsum(counts) - counts)[owners]
    inside = starts <= counts[owners] - size  # not the grams across two comments
    grams, owners, starts = grams[inside], owners[inside], starts[inside]
    bits = (GRAM_BUCKETS * len(grams) - 1).bit_length()  # the grams are mixed: their top bits are uniform
    bucket = (grams >> np.uint64(64 - bits)).astype(np.intp)
    maybe = np.flatnonzero(np.bincount(bucket, minlength=1 << bits)[bucket] > 1)
    if len(maybe) < 2:
        return marks
    by_gram = maybe[np.argsort(grams[maybe])]  # only grams found twice can be shared: those few are then sorted fully
    twice = grams[by_gram[1:]] == grams[by_gram[:-1]]
    again = by_gram[np.concatenate((twice, [False])) | np.concatenate(([False], twice))]
    if not len(again):
        return marks
    order = again[np.lexsort((again, grams[again]))]  # by gram, then comment (pages in turn), then position
    grams, owners, starts = grams[order], owners[order], starts[order]
    on_page = page_of[owners]
    new_gram = np.concatenate(([True], (grams[1:] != grams[:-1]) | (on_page[1:] != on_page[:-1])))
    new_owner = new_gram | np.concatenate(([True], owners[1:] != owners[:-1]))
    group = np.cumsum(new_gram) - 1
    shared = np.flatnonzero(np.bincount(group, weights=new_owner)[group] >= 2)
    current, last_owner, earlier = -1, -1, []
    for gram_group, owner, start in zip(group[shared].tolist(), owners[shared].tolist(), starts[shared].tolist()):
        if gram_group != current:
            current, last_owner, earlier = gram_group, -1, []
        elif owner != last_owner:
            earlier.append(last_owner)
        last_owner = owner
        if earlier:
            page = int(page_of[owner])
            first = int(page_first[page])
            sources = marks[page].setdefault(owner - first, {})
            for source in earlier:
                sources.setdefault(source - first, []).append(start)
    return marks


def rebase_quotes(text: str, quotes: list[dict[str, Any]], separator: str = "\n\n") -> list[dict[str, Any]]:
    """The quotes' offsets in `separator.join(stripped non-blank lines of text)`: the form the
    export stage gives a comment's text (pipeline/stages/export.py, `paragraphs`)."""
    starts: list[tuple[int, int, int, int]] = []  # (line start, stripped start, stripped end, output start)
    cursor = 0
    for line in split_lines(text):
        stripped = line.text.strip()
        if not stripped:
            continue
        lead = line.start + (len(line.text) - len(line.text.lstrip()))
        if starts:
            cursor += len(separator)
        starts.append((line.start, lead, lead + len(stripped), cursor))
        cursor += len(stripped)

    def move(offset: int) -> int:
        chosen = None
        for entry in starts:
            if entry[0] <= offset:
                chosen = entry
        if chosen is None:
            return 0
        _, lead, tail, out = chosen
        return out + min(max(offset - lead, 0), tail - lead)

    return [dict(q, start=move(q["start"]), end=move(q["end"])) for q in quotes]


# --------------------------------------------------------------------------- index


def _text_hash(digest: bytes) -> int:
    """The index's 64-bit text hash: the first 8 bytes of the sha256 of the normalised text."""
    return int.from_bytes(digest[:8], "little")


def _index_meta(config: Config) -> dict[str, Any]:
    return {"format": INDEX_FORMAT, "minhash": f"datasketch {MINHASH_SCHEME}", "num_perm": config.num_perm,
            "seed": config.seed, "shingle_words": config.shingle_words, "fold_digits": config.fold_digits,
            "min_words": config.min_words}


class IndexEntry(NamedTuple):
    """What the index keeps of one kept article (`index_entry`): computed where the article
    is (an export worker), put together with the others by `assemble_index`."""

    id: str
    published: Any
    role: str
    text_hash: int
    words: int
    length: int
    signature: bytes | None  # None: too short for one (a row of zeros, `has_signature` False)


def index_entry(record: Record, config: Config) -> IndexEntry | None:
    """The index entry of `record` if it is a kept article, else None (see `build_index`).
    The article is read through `summarize`, as `learn` reads it."""
    kind = record.get("kind") or ("comment" if "article_id" in record else "article")
    if kind != "article" or record.get("duplicate_of"):
        return None
    summary = summarize({**record, "kind": "article"}, config)
    return IndexEntry(summary.id, record.get("published"), record.get("role") or "main",
                      _text_hash(summary.digest), summary.words, summary.length, summary.signature)


def assemble_index(entries: Iterable[IndexEntry], config: Config,
                   texts: str | None = "articles.jsonl") -> dict[str, Any]:
    """The index of `entries`, in their order (`build_index`)."""
    entries = list(entries)
    empty = bytes(4 * config.num_perm)
    meta = _index_meta(config) | {"count": len(entries), "texts": texts}
    matrix = np.frombuffer(b"".join([entry.signature or empty for entry in entries]),
                           dtype="<u4").reshape(len(entries), config.num_perm)
    return {
        "meta": meta,
        "ids": [entry.id for entry in entries],
        "published": [entry.published for entry in entries],
        "role": [entry.role for entry in entries],
        "signatures": matrix.astype(np.uint32),
        "has_signature": np.array([entry.signature is not None for entry in entries], dtype=bool),
        "text_hash": np.array([entry.text_hash for entry in entries], dtype=np.uint64),
        "n_words": np.array([entry.words for entry in entries], dtype=np.uint32),
        "length": np.array([entry.length for entry in entries], dtype=np.uint32),
    }


def build_index(records: Iterable[Record], config: Config, texts: str | None = "articles.jsonl") -> dict[str, Any]:
    """Signatures of the kept articles among `records`, for a later run's `against`.

    `records` may be the corpus rows (articles.jsonl: no `kind`) or dedup's output;
    comments (a `kind` of comment, or an `article_id`) and records with
    `duplicate_of` are skipped. `texts` names the file
    beside the index that holds these articles' text (for verification), or None.
    `index_entry` per record and `assemble_index` are the same in two steps, for
    entries made in several processes (pipeline/corpus.py).
    """
    entries = (entry for record in records if (entry := index_entry(record, config)) is not None)
    return assemble_index(entries, config, texts)


_INDEX_ARRAYS = ("signatures", "has_signature", "text_hash", "n_words", "length")


def save_index(index: dict[str, Any], path: Path | str) -> None:
    """Write an index from `build_index` as a .npz with fixed timestamps (byte-identical reruns)."""
    path = Path(path)
    header = {"meta": index["meta"], "ids": index["ids"], "published": index["published"],
              "role": index["role"]}
    members = {"header.npy": np.frombuffer(json.dumps(header, ensure_ascii=False,
                                                      separators=(",", ":")).encode("utf-8"), dtype=np.uint8)}
    members.update({f"{name}.npy": np.ascontiguousarray(index[name]) for name in _INDEX_ARRAYS})
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, array in members.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, array, allow_pickle=False)
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            archive.writestr(info, buffer.getvalue())
    tmp.replace(path)


def load_index(path: Path | str) -> dict[str, Any]:
    """Read an index written by `save_index`; `path` is remembered to find the texts beside it."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            header = json.loads(bytes(data["header"]).decode("utf-8"))
            arrays = {name: data[name] for name in _INDEX_ARRAYS}
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as err:
        raise StageError(f"{path}: not a dedup index ({err})") from err
    found = header.get("meta", {}).get("format")
    if found != INDEX_FORMAT:
        raise StageError(f"{path}: dedup index of format {found!r}, this version reads {INDEX_FORMAT!r}; "
                         "rebuild it with build_index")
    return {**header, **arrays, "path": str(path)}


def _read_texts(path: Path, wanted: set[str]) -> dict[str, str]:
    """Texts of the wanted ids from a JSONL file, parsing only the lines that hold one."""
    found: dict[str, str] = {}
    prefix = re.compile(r'^\{"id":("(?:[^"\\]|\\.)*")')
    with path.open("r", encoding="utf-8") as handle:
        for line in handle:
            match = prefix.match(line)
            if match is not None and json.loads(match.group(1)) not in wanted:
                continue
            row = json.loads(line)
            if row.get("id") in wanted:
                found[row["id"]] = row.get("text") or ""
    return found


# --------------------------------------------------------------------------- learn


class Summary(NamedTuple):
    """What `combine` needs of one record (`summarize`): a tuple, not a dict, so that the
    summaries of a whole corpus are cheaper to hold (module docstring: memory).

    The keep-policy fields are `moment` (seconds of `published`, comments `posted`;
    None undated), `main` (role main) and `length` (characters of normalised text);
    `digest` is the sha256 of the normalised text (exact copies). An article of
    `min_words` or more has `shingles` (its 32-bit shingle hashes in text order, 4
    bytes a word: verification) and `signature` (datasketch MinHash, `num_perm`
    uint32, little-endian). A comment has `article_id`, `parent_id` and `position`,
    its `page` when that is not `article_id`, and, with `quote_min_words` or more,
    `tokens` (uint64 word hashes, 8 bytes a word) and `shape` (`_pack_shape`, 2 bits
    a character: where quote offsets come from): quote detection.
    """

    id: str
    kind: str
    moment: float | None
    main: bool
    length: int
    words: int
    repeated_lines: int  # spans `process` will remove
    digest: bytes
    shingles: bytes | None = None
    signature: bytes | None = None
    article_id: str | None = None
    parent_id: str | None = None
    page: str | None = None
    position: int | None = None
    tokens: bytes | None = None
    shape: bytes | None = None


def summarize(record: Record, config: Config) -> Summary:
    """What `combine` needs of one record (`Summary`), computed apart from every other record:
    pure, small and picklable, for worker processes and the cache."""
    kind = record.get("kind", "article")
    text = record.get("text") or ""
    ascii_text = _ascii_stand_in(text)
    spans = _repeated_line_spans(text, config, ascii_text)
    if spans:
        text = apply_spans(text, spans)
        ascii_text = _ascii_stand_in(text)
    words: list[str] | list[bytes]
    if ascii_text is not None:
        length, digest = _length_and_digest(text, config.fold_digits)
        words = ascii_text.translate(WORD_BYTES[config.fold_digits]).split()  # the words of `normalize`
    else:
        norm = normalize(text, config.fold_digits)
        words = WORD.findall(norm)
        length, digest = len(norm), hashlib.sha256(norm.encode("utf-8")).digest()
    fields: dict[str, Any] = {}
    if kind == "article" and len(words) >= config.min_words:
        seq = _shingle_seq(_WORD_HASHES(words), config.shingle_words)
        fields.update(shingles=seq.astype("<u4").tobytes(),
                      signature=minhash_signature(seq, config.num_perm, config.seed).astype("<u4").tobytes())
    if kind == "comment":
        position = record.get("position")
        page = str(record.get("page_id") or record.get("article_id") or "")
        fields.update(article_id=record.get("article_id"), parent_id=record.get("parent_id"),
                      page=None if page == record.get("article_id") else page,
                      position=position if isinstance(position, int) else None)
        if len(words) >= config.quote_min_words:
            if ascii_text is not None:  # the same words as the text's, at the same offsets
                tokens, shape = _WORD_HASHES.digests(words), ascii_text.translate(CLASS_BYTES)
            else:
                tokens, shape = _comment_tokens(text, config)
            fields.update(tokens=tokens, shape=_pack_shape(shape))
    return Summary(record["id"], kind, _timestamp(record.get("published") or record.get("posted")),
                   (record.get("role") or "main") == "main", length, len(words), len(spans), digest, **fields)


class _Records:
    """What `combine` keeps of the summaries it reads, as columns: the arrays of the
    summaries packed one after another, and a few bytes a record beside them (module
    docstring: Memory), never an object per record. Indexed in arrival order; entries of
    an `against` index follow, from `new_count` on."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.least = {"article": config.exact_min_words, "comment": config.comment_min_words}
        self.ids: list[str] = []
        self.kinds: list[str] = []  # one object per distinct kind (`_names`)
        self.moments = array("d")  # keep policy: NaN when undated
        self.main = bytearray()
        self.lengths = array("q")
        self.counted = bytearray()  # 1: long enough that its digest makes exact copies
        self.digests = bytearray()  # 32 bytes a record
        self.repeated = 0
        # Articles of min_words or more: their shingles one after another, and signatures.
        self.hashed_row = array("q")  # per record: its row below, or -1
        self.shingles = bytearray()
        self.shingle_ends = array("q")
        self.signatures = bytearray()
        # Comments: per comment, its record, fields, and its quote row (-1: too short to quote).
        self.comment_records = array("q")
        self.article_ids: list[str | None] = []
        self.parent_ids: list[str | None] = []
        self.pages = array("q")  # a number per page (`page_codes`)
        self.page_codes: dict[str, int] = {}
        # Quotes looked for while the summaries arrive (module docstring: Parallel runs): a
        # page's comments usually come in one run, closed when another page's comment comes.
        self.page_state = bytearray()  # per page: PAGE_OPEN, PAGE_CLOSED, PAGE_DONE or PAGE_REOPENED
        self.page_quotes: dict[int, dict[str, list[dict[str, Any]]]] = {}  # pages done: their quotes
        self.closed: list[tuple[int, list[int]]] = []  # closed pages not yet done: their quoting comments
        self.closed_words = 0
        self._run_page = -1  # the page whose comments are arriving, from comment `_run_start` on
        self._run_start = 0
        self.positions: list[int | None] = []
        self.quote_row = array("q")
        self.tokens = bytearray()
        self.token_ends = array("q")
        self.shapes = bytearray()
        self.shape_ends = array("q")
        self._names: dict[str, str] = {}
        self.old: dict[str, Any] | None = None  # the `against` index
        self.old_seqs: dict[int, np.ndarray] = {}  # shingles of old entries, from their texts

    def _name(self, value: str | None) -> str | None:
        """One object per distinct kind and article id (comments repeat their article's)."""
        return value if value is None else self._names.setdefault(value, value)

    def add(self, summary: Summary) -> None:
        record = len(self.ids)
        self.ids.append(summary.id)
        self.kinds.append(self._name(summary.kind))  # type: ignore[arg-type]
        self.moments.append(math.nan if summary.moment is None else summary.moment)
        self.main.append(summary.main)
        self.lengths.append(summary.length)
        self.counted.append(bool(summary.length) and summary.words >= self.least.get(summary.kind, 0))
        self.digests += summary.digest
        self.repeated += summary.repeated_lines
        if summary.shingles is not None and summary.signature is not None:
            if len(summary.signature) != 4 * self.config.num_perm:
                raise StageError(f"dedup: summary of {summary.id} has a signature of another num_perm")
            self.hashed_row.append(len(self.shingle_ends))
            self.shingles += summary.shingles
            self.shingle_ends.append(len(self.shingles))
            self.signatures += summary.signature
        else:
            self.hashed_row.append(-1)
        if summary.kind != "comment":
            return
        page = summary.page if summary.page is not None else summary.article_id
        code = self.page_codes.setdefault(page, len(self.page_codes))  # type: ignore[arg-type]
        if code == len(self.page_state):
            self.page_state.append(PAGE_OPEN)
        if code != self._run_page:
            self._end_run()
            if self.page_state[code] != PAGE_OPEN:  # its run had ended: its quotes are looked for at the end
                self.page_state[code] = PAGE_REOPENED
                self.page_quotes.pop(code, None)
            self._run_page, self._run_start = code, len(self.comment_records)
        self.comment_records.append(record)
        self.article_ids.append(self._name(summary.article_id))
        self.parent_ids.append(summary.parent_id)
        self.pages.append(code)
        self.positions.append(summary.position)
        if summary.tokens is None or summary.shape is None:
            self.quote_row.append(-1)
            return
        self.quote_row.append(len(self.token_ends))
        self.tokens += summary.tokens
        self.token_ends.append(len(self.tokens))
        self.shapes += summary.shape
        self.shape_ends.append(len(self.shapes))

    @property
    def new_count(self) -> int:
        """Records read; the entries of the `against` index come after them."""
        return len(self.ids)

    def __len__(self) -> int:
        return self.new_count + (len(self.old["ids"]) if self.old is not None else 0)

    def is_old(self, i: int) -> bool:
        return i >= self.new_count

    def id(self, i: int) -> str:
        return self.ids[i] if i < self.new_count else self.old["ids"][i - self.new_count]  # type: ignore[index]

    def kind(self, i: int) -> str:
        return self.kinds[i] if i < self.new_count else "article"

    def digest(self, i: int) -> bytes | None:
        """sha256 of the normalised text, when long enough to count (old entries: None)."""
        if i >= self.new_count or not self.counted[i]:
            return None
        return bytes(self.digests[32 * i:32 * i + 32])

    def keep_key(self, i: int) -> tuple[Any, ...]:
        policy = self.config.keep_policy
        if i < self.new_count:
            moment = self.moments[i]
            return _keep_key(self.ids[i], None if math.isnan(moment) else moment, bool(self.main[i]),
                             self.lengths[i], policy)
        old, pos = self.old, i - self.new_count
        return _keep_key(old["ids"][pos], _timestamp(old["published"][pos]),  # type: ignore[index]
                         (old["role"][pos] or "main") == "main", int(old["length"][pos]), policy)  # type: ignore[index]

    def seq(self, i: int) -> np.ndarray | None:
        """Shingle hashes in text order (articles of min_words or more; old entries with a text)."""
        if i >= self.new_count:
            return self.old_seqs.get(i)
        row = self.hashed_row[i]
        if row < 0:
            return None
        start = self.shingle_ends[row - 1] if row else 0
        return np.frombuffer(self.shingles, dtype="<u4", count=(self.shingle_ends[row] - start) // 4, offset=start)

    def _end_run(self) -> None:
        """The page whose comments were arriving is closed (a comment of another page came):
        queued for `find_closed_quotes` if it has two or more comments long enough to quote."""
        code = self._run_page
        if code < 0 or self.page_state[code] != PAGE_OPEN:
            return
        comments = [j for j in range(self._run_start, len(self.quote_row)) if self.quote_row[j] >= 0]
        if len(comments) < 2:
            self.page_state[code] = PAGE_DONE  # no quotes to find
            return
        self.page_state[code] = PAGE_CLOSED
        self.closed.append((code, comments))
        first, last = self.quote_row[comments[0]], self.quote_row[comments[-1]]  # rows in a run are consecutive
        self.closed_words += (self.token_ends[last] - (self.token_ends[first - 1] if first else 0)) // 8

    def find_closed_quotes(self) -> None:
        """Look for the quotes of the closed pages (`closed`), now: while summaries arrive,
        this process has the time that it lacks once they all have."""
        pages = [(code, self._in_page_order(comments)) for code, comments in self.closed
                 if self.page_state[code] == PAGE_CLOSED]
        self.closed, self.closed_words = [], 0
        for (code, _), quotes in zip(pages, self._look_for_quotes([comments for _, comments in pages])):
            self.page_state[code] = PAGE_DONE
            if quotes:
                self.page_quotes[code] = quotes

    def quotes(self) -> dict[str, list[dict[str, Any]]]:
        """The quotes of every comment that has some, by id: of the pages done as the
        summaries arrived, and of the others now, a few pages at a time."""
        found: dict[str, list[dict[str, Any]]] = {}
        for quotes in self.page_quotes.values():
            found.update(quotes)
        for pages in self._pages_left():
            for quotes in self._look_for_quotes(pages):
                found.update(quotes)
        return dict(sorted(found.items()))

    def _pages_left(self) -> Iterator[list[list[int]]]:
        """The pages not done with two or more comments long enough to quote (lists of
        comment numbers, each in page order), a few at a time (`QUOTE_BATCH_WORDS`)."""
        rows = np.frombuffer(self.quote_row, dtype=np.int64)
        pages = np.frombuffer(self.pages, dtype=np.int64)
        left = rows >= 0
        if len(pages):
            left &= np.frombuffer(self.page_state, dtype=np.uint8)[pages] != PAGE_DONE
        quoting = np.flatnonzero(left)
        by_page = quoting[np.argsort(pages[quoting], kind="stable")]
        cuts = np.flatnonzero(np.diff(pages[by_page])) + 1
        batch: list[list[int]] = []
        words = 0
        for members in np.split(by_page, cuts) if len(by_page) > 1 else []:
            if len(members) < 2:
                continue
            comments = self._in_page_order(members.tolist())
            batch.append(comments)
            words += sum(self._token_range(j)[1] for j in comments)
            if words >= QUOTE_BATCH_WORDS:
                yield batch
                batch, words = [], 0
        if batch:
            yield batch

    def _in_page_order(self, comments: list[int]) -> list[int]:
        """Comment numbers of one page (in arrival order) sorted by position; ids break the ties."""
        positions = [self.positions[j] for j in comments]
        if None in positions or len(set(positions)) < len(positions):
            return sorted(comments, key=lambda j: ((0, self.positions[j]) if self.positions[j] is not None else (1, 0),
                                                   _natural(self.ids[self.comment_records[j]])))
        return sorted(comments, key=self.positions.__getitem__)

    def _look_for_quotes(self, pages: list[list[int]]) -> list[dict[str, list[dict[str, Any]]]]:
        """The quotes of the comments of each page (lists of comment numbers in page order),
        in one pass over their grams."""
        if not pages:
            return []
        size = self.config.quote_min_words
        tokens, counts = self._with_tokens(pages)
        return [_page_quotes([self.ids[self.comment_records[j]] for j in page], [self.parent_ids[j] for j in page],
                             lambda order, page=page: self.comment(page[order]), marks, size) if marks else {}
                for page, marks in zip(pages, _shared_grams(tokens, counts, [len(page) for page in pages], size))]

    def _token_range(self, j: int) -> tuple[int, int]:
        """First word and number of words of comment j in `tokens` (as uint64)."""
        row = self.quote_row[j]
        start = self.token_ends[row - 1] if row else 0
        return start // 8, (self.token_ends[row] - start) // 8

    def _with_tokens(self, pages: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        """The word hashes of the pages' comments one after another, and the number of each's words."""
        rows = np.frombuffer(self.quote_row, dtype=np.int64)[[j for page in pages for j in page]]
        ends = np.frombuffer(self.token_ends, dtype=np.int64) // 8
        starts = np.where(rows > 0, ends[rows - 1], 0)
        counts = ends[rows] - starts
        gather = np.repeat(starts - (np.cumsum(counts) - counts), counts) + np.arange(int(counts.sum()))
        return np.frombuffer(self.tokens, dtype="<u8")[gather], counts

    def comment(self, j: int) -> _Comment:
        """Comment j with copies of its words and shape: no view of the columns outlives the
        call, as they must grow while summaries arrive (`find_closed_quotes`)."""
        row = self.quote_row[j]
        token_start = self.token_ends[row - 1] if row else 0
        shape_start = self.shape_ends[row - 1] if row else 0
        return _Comment(self.ids[self.comment_records[j]], self.parent_ids[j],
                        np.frombuffer(self.tokens[token_start:self.token_ends[row]], dtype="<u8"),
                        bytes(self.shapes[shape_start:self.shape_ends[row]]))


class _UnionFind:
    """Clusters of record indices; only records that were joined take memory. Records from
    `first_old` on are entries of the previous index."""

    def __init__(self, first_old: int) -> None:
        self.parent: dict[int, int] = {}
        self.first_old = first_old
        self.with_old: set[int] = set()  # roots of new records whose cluster holds an old entry

    def find(self, node: int) -> int:
        root = node
        while self.parent.get(root, root) != root:
            root = self.parent[root]
        while self.parent.get(node, node) != root:
            self.parent[node], node = root, self.parent[node]
        return root

    def holds_old(self, root: int) -> bool:
        return root >= self.first_old or root in self.with_old

    def union(self, a: int, b: int) -> bool:
        """Join two clusters unless both already hold an entry of the previous index."""
        root_a, root_b = self.find(a), self.find(b)
        if root_a == root_b or (self.holds_old(root_a) and self.holds_old(root_b)):
            return False
        if root_b < root_a:
            root_a, root_b = root_b, root_a
        self.parent[root_b] = root_a
        if self.holds_old(root_b) and root_a < self.first_old:
            self.with_old.add(root_a)
        return True


def learn(records: Iterable[Record], config: Config) -> dict[str, Any]:
    """Cluster the corpus; state: clusters (audit), members (id -> cluster), quotes, stats.

    One record at a time goes through `summarize`; only the summaries' compact
    arrays stay (the docstring's memory figures), never a record or its text.
    """
    return combine((summarize(record, config) for record in records), config)


def _given_pairs(given: Iterable[tuple[str, str]], records: _Records, lsh_row: dict[int, int],
                 representative: dict[int, int]) -> np.ndarray:
    """Candidate pairs found elsewhere, as sorted unique (row, row) of the signature matrix:
    an exact copy stands for its group's first member, unknown ids are ignored."""
    index = {records.ids[i]: i for i in range(records.new_count) if records.hashed_row[i] >= 0}
    index.update((records.id(i), i) for i in range(records.new_count, len(records)))  # as `combine` did: old last
    rows = set()
    for id_a, id_b in given:
        a, b = index.get(id_a), index.get(id_b)
        if a is None or b is None:
            continue
        row_a, row_b = lsh_row.get(representative.get(a, a)), lsh_row.get(representative.get(b, b))
        if row_a is not None and row_b is not None and row_a != row_b:
            rows.add((min(row_a, row_b), max(row_a, row_b)))
    return np.array(sorted(rows), dtype=np.int64).reshape(-1, 2)


def _exact_groups(records: _Records, everyone: bool) -> list[list[int]]:
    """Records with the same kind and normalised text (digest), each group in natural id order,
    groups in the order of their first members; only groups of two or more unless `everyone`."""
    counted = np.flatnonzero(np.frombuffer(records.counted, dtype=np.uint8))
    if not len(counted):
        return []
    codes: dict[str, int] = {}
    kinds = np.array([codes.setdefault(records.kinds[i], len(codes)) for i in counted.tolist()], dtype=np.int64)
    digests = np.frombuffer(records.digests, dtype="<u8").reshape(-1, 4)[counted]
    order = np.lexsort((counted, digests[:, 3], digests[:, 2], digests[:, 1], digests[:, 0], kinds))
    keys = np.column_stack((kinds, digests.view(np.int64)))[order]
    starts = np.concatenate(([0], np.flatnonzero((keys[1:] != keys[:-1]).any(axis=1)) + 1))
    sizes = np.diff(np.concatenate((starts, [len(order)])))
    members = counted[order]
    groups = [sorted(members[start:start + size].tolist(), key=lambda i: _natural(records.ids[i]))
              for start, size in zip(starts.tolist(), sizes.tolist()) if everyone or size > 1]
    groups.sort(key=lambda group: _natural(records.ids[group[0]]))
    return groups


def combine(summaries: Iterable[Summary], config: Config,
            candidate_pairs: Iterable[tuple[str, str]] | None = None) -> dict[str, Any]:
    """The stage state (what `learn` returns) from the summaries of every record, in any order.

    Reads `summaries` once and keeps only their packed columns (`_Records`): given as a
    stream, the summaries need not all be held at once. The quotes of the pages whose
    comments have (as far as their order tells) all come are looked for while reading.

    `candidate_pairs`: pairs of ids that share a band key (`band_keys`), found by
    a group-by elsewhere (`bucket_pairs` forms them as this function does); then
    the batch is not banded here. Pairs with entries of the `against` index are
    still found here, from the index this function loads.
    """
    records = _Records(config)
    for summary in summaries:
        records.add(summary)
        if records.closed_words >= QUOTE_BATCH_WORDS:
            records.find_closed_quotes()
    if len(set(records.ids)) != len(records.ids):
        raise StageError("dedup: record ids are not unique")
    new_count = records.new_count

    old_index = load_index(config.against) if config.against is not None else None
    old_texts_path: Path | None = None
    if old_index is not None:
        _check_index(old_index, config)
        texts_name = old_index["meta"].get("texts")
        if texts_name and (Path(old_index["path"]).parent / texts_name).is_file():
            old_texts_path = Path(old_index["path"]).parent / texts_name
        records.old = old_index

    groups = _UnionFind(new_count)
    edges: dict[tuple[int, int], dict[str, Any]] = {}
    stats: dict[str, Any] = {"repeated_lines": records.repeated}

    # Exact copies: same normalised text (and kind). An old entry is matched by its text hash.
    old_by_hash: dict[int, int] = {}
    if old_index is not None:
        for pos, value in enumerate(old_index["text_hash"].tolist()):
            old_by_hash.setdefault(value, new_count + pos)
    exact = _exact_groups(records, everyone=bool(old_by_hash))
    representative = {i: members[0] for members in exact for i in members[1:]}
    old_exact: list[tuple[int, int]] = []
    for members in exact:
        for other in members[1:]:
            groups.union(members[0], other)
            edges[(members[0], other)] = {"reason": "exact_duplicate", "similarity": 1.0}
        if records.kinds[members[0]] == "article" and old_by_hash:
            old = old_by_hash.get(int.from_bytes(records.digests[32 * members[0]:32 * members[0] + 8], "little"))
            if old is not None:
                old_exact.append((members[0], old))

    # Near copies: MinHash LSH over the articles with enough words, one per exact group.
    bands, rows = lsh_params(config)
    lsh_nodes = sorted((i for i in range(new_count) if records.hashed_row[i] >= 0 and i not in representative),
                       key=lambda i: _natural(records.ids[i]))
    arrived = np.frombuffer(records.signatures, dtype="<u4").reshape(-1, config.num_perm)
    signatures = arrived[np.array([records.hashed_row[i] for i in lsh_nodes], dtype=np.intp)].astype(np.uint32)
    del arrived
    records.signatures = bytearray()  # freed before the banding's peak
    first_old = None
    if old_index is not None:
        old_rows = np.flatnonzero(old_index["has_signature"])
        first_old = len(lsh_nodes)
        lsh_nodes += [new_count + int(pos) for pos in old_rows]
        signatures = np.concatenate((signatures, old_index["signatures"][old_rows]))
    if candidate_pairs is None:
        pairs, _ = _candidate_pairs(signatures, bands, rows, skip_both_from=first_old)
    else:
        lsh_row = {node: row for row, node in enumerate(lsh_nodes[:first_old])}
        pairs = _given_pairs(candidate_pairs, records, lsh_row, representative)
        if first_old is not None:  # the batch against the old index: banded here
            banded, _ = _candidate_pairs(signatures, bands, rows, skip_both_from=first_old)
            pairs = np.concatenate((pairs, banded[banded[:, 1] >= first_old]))
    hits = _shared_bands(signatures, pairs, bands, rows)
    order = np.lexsort((pairs[:, 1], pairs[:, 0], -hits)) if len(pairs) else np.zeros(0, dtype=np.int64)
    stats.update({"lsh": {"num_perm": config.num_perm, "bands": bands, "rows": rows,
                          "s_curve_midpoint": round((1 / bands) ** (1 / rows), 4)},
                  "articles_hashed": len(lsh_nodes) if first_old is None else first_old,
                  "candidate_pairs": int(len(pairs)), "verified_pairs": 0, "verified_copies": 0})

    old_text_cache: dict[int, str] = {}
    if old_texts_path is not None and (len(pairs) or old_exact):
        wanted = {records.id(lsh_nodes[j]) for i, j in pairs.tolist() if lsh_nodes[j] >= new_count}
        wanted |= {records.id(old) for _, old in old_exact}
        texts = _read_texts(old_texts_path, wanted)
        for i in range(new_count, len(records)):
            if records.id(i) in texts:
                old_text_cache[i] = texts[records.id(i)]
                words = WORD.findall(normalize(old_text_cache[i], config.fold_digits))
                records.old_seqs[i] = _shingle_seq(_WORD_HASHES(words), config.shingle_words)

    for new, old in old_exact:
        if old in old_text_cache and hashlib.sha256(normalize(old_text_cache[old], config.fold_digits).encode(
                "utf-8")).digest() != records.digest(new):
            continue  # a 64-bit hash collision: not the same text
        if groups.union(new, old):
            edges[(new, old)] = {"reason": "exact_duplicate", "similarity": 1.0}

    for k in order.tolist():
        a, b = lsh_nodes[int(pairs[k, 0])], lsh_nodes[int(pairs[k, 1])]
        root_a, root_b = groups.find(a), groups.find(b)
        if root_a == root_b or (groups.holds_old(root_a) and groups.holds_old(root_b)):
            continue
        stats["verified_pairs"] += 1
        seq_a, seq_b = records.seq(a), records.seq(b)
        if seq_a is not None and seq_b is not None:
            measured = compare(seq_a, seq_b, config.shingle_words)
            if not measured.is_copy(config):
                continue
            edge = {"reason": "near_duplicate", "similarity": round(measured.containment, 4), **measured.to_json()}
        else:  # an old entry without its text: the MinHash estimate of Jaccard must do
            estimate = float(np.mean(signatures[pairs[k, 0]] == signatures[pairs[k, 1]]))
            if estimate < config.near_threshold:
                continue
            edge = {"reason": "near_duplicate", "similarity": round(estimate, 4), "estimated_jaccard": round(estimate, 4)}
        if groups.union(a, b):
            stats["verified_copies"] += 1
            edges[(min(a, b), max(a, b))] = edge

    clusters = _clusters(records, groups, edges, config)
    members: dict[str, dict[str, Any]] = {}
    for cluster in clusters:
        if not cluster["previous"]:
            members[cluster["keep"]] = {"cluster": cluster["cluster"]}
        for copy in cluster["copies"]:
            members[copy["id"]] = {"cluster": cluster["cluster"], "duplicate_of": cluster["keep"],
                                   "similarity": copy["similarity"], "reason": copy["reason"]}

    quotes = records.quotes()
    parents = _parent_remap(records, members)
    stats.update({"clusters": len(clusters), "copies": sum(len(c["copies"]) for c in clusters),
                  "quoting_comments": len(quotes)})
    return {"clusters": clusters, "members": dict(sorted(members.items())),
            "quotes": quotes, "parents": parents, "stats": stats}


def _check_index(index: dict[str, Any], config: Config) -> None:
    meta = index["meta"]
    mine = _index_meta(config)
    for key in ("num_perm", "seed", "shingle_words", "fold_digits"):
        if meta.get(key) != mine[key]:
            raise StageError(f"dedup.against {index['path']}: built with {key}={meta.get(key)!r}, "
                             f"this run has {key}={mine[key]!r}; rebuild the index or match the config")


def _clusters(records: _Records, groups: _UnionFind, edges: dict[tuple[int, int], dict[str, Any]],
              config: Config) -> list[dict[str, Any]]:
    """One entry per cluster of two or more: the kept id and every copy, with its measures."""
    joined = {i for pair in edges for i in pair}  # every member of a cluster of two or more
    by_root: dict[int, list[int]] = {}
    for i in sorted(joined, key=lambda i: (1, i, ()) if records.is_old(i) else (0, 0, _natural(records.ids[i]))):
        by_root.setdefault(groups.find(i), []).append(i)
    direct = {}
    for (a, b), edge in edges.items():
        direct[(a, b)] = direct[(b, a)] = edge
    clusters = []
    for members in by_root.values():
        old = [i for i in members if records.is_old(i)]
        pool = old or members
        keep = min(pool, key=records.keep_key)
        copies = []
        for i in members:
            if i == keep or records.is_old(i):
                continue
            edge = direct.get((i, keep))
            if edge is None:  # joined through another member: measure against the kept one
                edge = _indirect(records, i, keep, config)
            copies.append({"id": records.id(i), **edge})
        copies.sort(key=lambda c: _natural(c["id"]))
        clusters.append({"cluster": f"dup-{records.id(keep)}", "keep": records.id(keep), "kind": records.kind(keep),
                         "previous": records.is_old(keep), "copies": copies})
    clusters.sort(key=lambda c: _natural(c["keep"]))
    return clusters


def _indirect(records: _Records, a: int, b: int, config: Config) -> dict[str, Any]:
    digest = records.digest(a)
    if digest is not None and digest == records.digest(b):
        return {"reason": "exact_duplicate", "similarity": 1.0, "via_cluster": True}
    seq_a, seq_b = records.seq(a), records.seq(b)
    if seq_a is None or seq_b is None:
        return {"reason": "near_duplicate", "similarity": None, "via_cluster": True}
    measured = compare(seq_a, seq_b, config.shingle_words)
    return {"reason": "near_duplicate", "similarity": round(measured.containment, 4), **measured.to_json(),
            "via_cluster": True}


def _parent_remap(records: _Records, members: dict[str, dict[str, Any]]) -> dict[str, str]:
    """For drop mode: a reply whose parent is a dropped copy hangs under the kept comment
    when that one is on the same (kept) article; otherwise its parent stays as it was."""
    replies = []  # (comment, the kept comment its parent is a copy of)
    for j, parent in enumerate(records.parent_ids):
        member = members.get(parent) if parent else None
        if member and member.get("duplicate_of"):
            replies.append((j, member["duplicate_of"]))
    if not replies:
        return {}
    kept_ids = {kept for _, kept in replies}
    article_of = {records.ids[record]: records.article_ids[j] for j, record in enumerate(records.comment_records)
                  if records.ids[record] in kept_ids}

    def resolved(article: Any) -> Any:
        member = members.get(article) if isinstance(article, str) else None
        return member.get("duplicate_of") if member and member.get("duplicate_of") else article

    remap = {}
    for j, kept in replies:
        if resolved(article_of.get(kept)) == resolved(records.article_ids[j]):
            remap[records.ids[records.comment_records[j]]] = kept
    return dict(sorted(remap.items()))


# --------------------------------------------------------------------------- process


def process(record: Record, config: Config, state: dict[str, Any]) -> Outcome:
    member = state["members"].get(record["id"])
    text, spans = clean_text(record, config)
    out = dict(record)
    out["text"] = text
    out["dup_cluster"] = member["cluster"] if member else f"dup-{record['id']}"
    out["duplicate_of"] = member.get("duplicate_of") if member else None
    out["dup_similarity"] = member.get("similarity") if member else None
    if out["duplicate_of"] and config.mode == "drop":
        # The whole text is the span: the ledger then holds what was dropped.
        original = record.get("text", "")
        return Outcome(records=[], spans=[Span(0, len(original), member["reason"], original)],
                       drop_reason=member["reason"], notes={"duplicate_of": out["duplicate_of"]})
    if spans and "line_numbers" in record:
        removed = {span.start for span in spans}
        out["line_numbers"] = [number for number, line in zip(record["line_numbers"], split_lines(record["text"]))
                               if line.start not in removed]
    if record.get("kind") == "comment":
        out["quotes"] = state.get("quotes", {}).get(record["id"], [])
        if config.mode == "drop":
            # The comments of a dropped copy follow the kept article; `page_id` still says where they were.
            article = state["members"].get(record.get("article_id", ""))
            if article and article.get("duplicate_of"):
                out["article_id"] = article["duplicate_of"]
            parent = state.get("parents", {}).get(record["id"])
            if parent is not None:
                out["parent_id"] = parent
    return Outcome(records=[out], spans=spans)
