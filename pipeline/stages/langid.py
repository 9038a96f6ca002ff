"""Language id: langdetect on articles and comments, seeded, with an honest 'und'.

langdetect guesses wildly on short text (it calls "Hello" Finnish), so below
`min_chars` characters or `min_probability` the language is "und". Only the
first `sample_chars` characters are read, which keeps the stage fast on long
articles without changing the answer for any text of one language.

The detector is langdetect's own (its profiles, n-gram features, seeded random
trials and convergence test) with the loops it runs per character written as string
and word operations (`_Detector`), and its random trials run for a whole batch of
texts at once (`_run_trials`, used by `process_batch`): every text is detected from
the same seed, so the generator's words are made once and each text's draws are read
off them. It returns exactly the probabilities of `langdetect.detector.Detector`
(tests/stages/test_langid.py checks this text by text) at a quarter to a third of the
CPU time of the text-by-text detector it replaces (batches of 256 and 64 records).
"""

from __future__ import annotations

import math
import os
import random
import re
import struct
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path

import numpy as np

from langdetect import DetectorFactory
from langdetect.detector import Detector
from langdetect.detector_factory import PROFILES_DIRECTORY
from langdetect.lang_detect_exception import ErrorCode, LangDetectException
from langdetect.utils.ngram import NGram

from pipeline.stage import Outcome, Record, StageConfig

NAME = "langid"
REASONS: frozenset[str] = frozenset()  # annotates only: never changes the text

UNDETERMINED = "und"


class Config(StageConfig):
    seed: int = 0  # langdetect samples n-grams at random: a fixed seed makes it deterministic
    min_chars: int = 40  # shorter texts are "und": langdetect is unreliable below a sentence
    min_probability: float = 0.80  # a weaker top guess is "und"
    sample_chars: int = 1000  # read at most this much of each text
    # langdetect averages 7 random trials; 3 agreed with 7 on 1497 of 1500 dev-set texts
    # (the 3 others were near the "und" threshold) at 60% of the time.
    trials: int = 3


_SPACE_RUN = re.compile(" {2,}")
_LATIN = re.compile("[A-z]")  # langdetect's test: 'A' <= ch <= 'z'
# langdetect means to leave out Latin Extended Additional here, but compares the block's
# number with its name, so every character from U+0300 up counts; so does this.
_NON_LATIN = re.compile("[\u0300-\U0010ffff]")
_LATIN_BYTES = bytes(range(ord("A"), ord("z") + 1))
_VI_MARK = re.compile(f"[{NGram.DMARK_CLASS}]")  # normalize_vi changes only a letter before one
WORD_CACHE_SIZE = 200_000  # n-grams of this many distinct words are kept per process
STREAM_WORDS = 1 << 14  # the seeded generator's words are made this many at a time, more on demand
# n-gram draws found per text at a time (a multiple of 5, as langdetect normalises every
# fifth): on the 5 MB bench corpus half of all trials end within 41 draws, 90% within 66.
DRAWS_AT_ONCE = 60


class _Normaliser(dict[int, str]):
    """langdetect's per-character normalisation as a str.translate table, filled on use."""

    def __missing__(self, code: int) -> str:
        normal: str = NGram.normalize(chr(code))
        self[code] = normal
        return normal


_NORMAL = _Normaliser()


@dataclass(frozen=True)
class _Profiles:
    """langdetect's profiles as one matrix: row `index[ngram]` holds P(ngram | language)."""

    languages: list[str]
    index: dict[str, int]
    matrix: np.ndarray
    spaced: dict[str, bytes] = field(default_factory=dict)  # memo of word_grams(word, True)
    final: dict[str, bytes] = field(default_factory=dict)  # memo of word_grams(word, False)
    windows: dict[str, bytes] = field(default_factory=dict)  # memo of window_grams(window)

    def word_grams(self, word: str, space_after: bool) -> bytes:
        """Rows of the n-grams langdetect's NGram buffer yields over one word (and the space
        after it), as int32 bytes: joining bytes is the fastest way to concatenate them. The
        buffer starts afresh after every space, so a word's n-grams do not depend on what
        came before it; it holds the space and the word's characters, the last three at most."""
        memo = self.spaced if space_after else self.final
        found = memo.get(word)
        if found is not None:
            return found
        chars = " " + word + " " if space_after else " " + word
        windows = self.windows
        found = b"".join([windows[window] if window in windows else self.window_grams(window)
                          for window in [chars[:2]] + [chars[end - 2:end + 1] for end in range(2, len(chars))]])
        if len(memo) >= WORD_CACHE_SIZE:
            memo.clear()
        memo[word] = found
        return found

    def window_grams(self, window: str) -> bytes:
        """Rows of the n-grams the buffer yields when a character brings it to `window` (its
        last two or three characters): the 1-, 2- and 3-gram ending there, but none when the
        character and the one before it are capitals, and never the space alone. Windows
        recur far more than words: three profile lookups per character become one here."""
        rows = []
        if not (window[-1].isupper() and window[-2].isupper()):
            for n in range(1, len(window) + 1):
                row = self.index.get(window[-n:])
                if row is not None and window[-n:] != " ":
                    rows.append(row)
        if len(self.windows) >= WORD_CACHE_SIZE:
            self.windows.clear()
        found = self.windows[window] = struct.pack(f"={len(rows)}i", *rows)  # as int32, native order
        return found


def _cache_path() -> Path:
    """Where the profile matrix is kept once built: inside the environment langdetect is
    installed in, named by langdetect's version."""
    return Path(sys.prefix) / "share" / "news-corpus-pipeline" / f"langdetect-{version('langdetect')}-profiles.npz"


@lru_cache(maxsize=1)
def _profiles() -> _Profiles:
    """Read from the cache (~0.05 s), or built from langdetect's JSON profiles (~1 s) and cached."""
    path = _cache_path()
    try:
        with np.load(path) as data:
            languages = str(data["languages"]).split("\n")
            words = str(data["words"]).split("\n")
            return _Profiles(languages, {word: row for row, word in enumerate(words)}, data["matrix"])
    except (OSError, KeyError, ValueError):
        pass
    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    table = factory.word_lang_prob_map
    profiles = _Profiles(list(factory.langlist), {word: row for row, word in enumerate(table)},
                         np.array(list(table.values()), dtype=np.float64))
    if all("\n" not in word for word in table):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as handle:
                np.savez(handle, languages=np.array("\n".join(profiles.languages)),
                         words=np.array("\n".join(table)), matrix=profiles.matrix)
            os.chmod(handle.name, 0o644)
            os.replace(handle.name, path)
        except OSError:
            pass  # a read-only environment: built again next time
    return profiles


def warm(config: Config) -> None:
    """Load the profiles into this process (see pipeline.stage): a parent that does so before
    it forks its workers spares each of them the load (~0.1 s CPU) and shares the 40 MB matrix."""
    _profiles()


class _Detector(Detector):  # type: ignore[misc]
    """langdetect's Detector with its loops over characters done on strings and words, and
    its trials by `_run_trials`: the same random draws and the same floating-point
    operations in the same order (sums are sequential, as Python's), so the same
    probabilities. Its seed must be an int."""

    def __init__(self, profiles: _Profiles) -> None:
        # langdetect's __init__ but for its random.Random(), seeded from os.urandom at a cost
        # of 15 us: the trials read the seeded generator's words (`_Stream`) instead.
        self.word_lang_prob_map = profiles.index
        self.langlist = profiles.languages
        self.seed = None
        self.text = ""
        self.langprob = None
        self.alpha = self.ALPHA_DEFAULT
        self.n_trial = 7
        self.max_text_length = 10000
        self.prior_map = None
        self.verbose = False
        self.profiles = profiles

    def append(self, text: str) -> None:
        # A substitution is skipped where it cannot match: the scans cost more than the rest.
        text = self.URL_RE.sub(" ", text)
        if "@" in text:
            text = self.MAIL_RE.sub(" ", text)
        if not text.isascii() and _VI_MARK.search(text):
            text = NGram.normalize_vi(text)
        text = text[: self.max_text_length]
        # langdetect keeps a space only after a character that is not a space.
        self.text += _SPACE_RUN.sub(" ", text) if "  " in text else text

    def cleaning_text(self) -> None:
        if self.text.isascii():
            return  # no character from U+0300 up: langdetect removes nothing
        non_latin = len(_NON_LATIN.findall(self.text))
        # In UTF-8 the bytes of 'A'..'z' stand only for those characters.
        encoded = self.text.encode("utf-8", "surrogatepass") if non_latin else b""
        if (len(encoded) - len(encoded.translate(None, _LATIN_BYTES))) * 2 < non_latin:
            self.text = _LATIN.sub("", self.text)

    def _extract_ngrams(self) -> bytes:
        """Rows of the text's n-grams in langdetect's order, as int32 bytes."""
        *words, last = self.text.translate(_NORMAL).split(" ")
        tail = self.profiles.word_grams(last, False) if last else b""
        # One C-level lookup per word; the empty words of a run of spaces yield no n-grams
        # (word_grams("", True) is b"") and are memoised like any other.
        grams = list(map(self.profiles.spaced.get, words))
        try:
            return b"".join(grams) + tail
        except TypeError:  # a None: words not seen yet
            word_grams = self.profiles.word_grams
            return b"".join([found if found is not None else word_grams(word, True)
                             for found, word in zip(grams, words)]) + tail

    def _detect_block(self) -> None:
        """langdetect's trials on this one text (see `_run_trials`)."""
        self.cleaning_text()
        rows = self._extract_ngrams()
        if not rows:
            raise LangDetectException(ErrorCode.CantDetectError, "No features in text.")
        self.langprob = _run_trials([rows], self)[0].tolist()


class _Stream:
    """The 32-bit words `random.Random(seed)` yields, made once per process and extended on
    demand: every text is detected from the same seed, so every text reads the same words
    (it only reads them differently, by its number of n-grams)."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.words = np.empty(0, dtype=np.int64)

    def upto(self, end: int) -> np.ndarray:
        """At least the stream's first `end` words."""
        if end > len(self.words):
            more = max(end - len(self.words), STREAM_WORDS)
            # getrandbits(32 * m) is m successive 32-bit outputs, the first least significant.
            data = self.random.getrandbits(32 * more).to_bytes(4 * more, "little")
            self.words = np.concatenate([self.words, np.frombuffer(data, dtype="<u4").astype(np.int64)])
        return self.words


@lru_cache(maxsize=8)
def _stream(seed: int) -> _Stream:
    return _Stream(seed)


def _gauss(words: list[int]) -> tuple[float, float]:
    """random.gauss(0, 1) from four words, and the value it keeps for its next call. As
    CPython: random() is the top 27 and 26 bits of two words as a 53-bit fraction."""
    first, second = [((a >> 5) * 67108864.0 + (b >> 6)) * (1.0 / 9007199254740992.0)
                     for a, b in (words[:2], words[2:])]
    x2pi = first * math.tau
    g2rad = math.sqrt(-2.0 * math.log(1.0 - second))
    # gauss returns mu + z * sigma = 0.0 + z * 1.0: z itself, bar the sign of a zero, which
    # alpha + z * ALPHA_WIDTH drops.
    return math.cos(x2pi) * g2rad, math.sin(x2pi) * g2rad


def _choices(stream: _Stream, start: np.ndarray, count: np.ndarray, shift: np.ndarray,
             steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The next `steps` results of random.choice over `count` n-grams, per text, from word
    `start` on, and the word after each. As CPython: choice(seq) is seq[_randbelow(n)],
    which keeps the top k = n.bit_length() bits of a word (`shift` = 32 - k) and reads the
    next word while they are >= n."""
    width = 3 * steps  # a word is kept with probability > 1/2
    while True:
        words = stream.upto(int(start.max()) + width)
        values = words[start[:, None] + np.arange(width)] >> shift[:, None]
        kept = values < count[:, None]
        rank = np.cumsum(kept, axis=1, dtype=np.int32)  # words kept so far, per text
        if rank[:, -1].min() >= steps:
            break
        width *= 2
    chosen = kept & (rank <= steps)  # the first `steps` words kept: as many in every row
    cols = np.nonzero(chosen)[1].reshape(-1, steps)
    return values[chosen].reshape(-1, steps), start[:, None] + cols + 1


def _sums(columns: np.ndarray) -> np.ndarray:
    """The sums of a C-contiguous (languages x texts) array's columns, each added from the
    top down, as Python's sum() adds a list: numpy reduces axis 0 row by row (the pairwise
    summation it uses along the contiguous axis would round differently, so a single
    column, contiguous, is added by Python)."""
    if columns.shape[1] == 1:
        return np.array([sum(columns[:, 0].tolist())])
    return np.add.reduce(columns, axis=0)


def _run_trials(features: list[bytes], detector: _Detector) -> np.ndarray:
    """langdetect's random trials for many texts at once (rows: texts, columns: languages).

    Per trial, from the seeded generator: a random alpha, then n-grams drawn at random,
    each multiplying the language probabilities by alpha / BASE_FREQ + P(ngram | language),
    normalised every fifth draw until one language passes CONV_THRESHOLD; the trials are
    averaged. Every text starts from the same seed, so the words each draw reads are found
    without the generator (`_Stream`, `_choices`, `_gauss`), and the texts' trials run in
    lockstep with the same floating-point operations, in the same order, as langdetect's
    on one text: the same probabilities, whatever the batch."""
    if not isinstance(detector.seed, int):
        raise TypeError("langid needs an integer seed")
    if not all(features):
        raise ValueError("a text without n-grams has nothing to draw from")
    matrix = detector.profiles.matrix
    languages = len(detector.langlist)
    initial = (np.array(detector.prior_map) if detector.prior_map is not None
               else np.full(languages, 1.0 / languages))
    trials = detector.n_trial
    stream = _stream(detector.seed)
    if len(features) == 1:
        return _run_trials_of_one(features[0], detector, initial, stream)[None]
    flat = np.frombuffer(b"".join(features), dtype=np.int32)
    count = np.array([len(rows) for rows in features], dtype=np.int64) // flat.itemsize
    shift = np.array([32 - n.bit_length() for n in count.tolist()], dtype=np.int64)
    base = np.cumsum(count) - count
    offset = np.zeros(len(features), dtype=np.int64)  # words each text has read so far
    average = np.zeros((len(features), languages))
    ended = np.empty((len(features), languages))  # each text's probabilities at the end of a trial
    gauss = spare = [0.0] * len(features)
    for trial in range(trials):
        if trial % 2 == 0:  # gauss() reads four words for two values, and keeps the second
            words = stream.upto(int(offset.max()) + 4)
            starts = offset.tolist()
            pairs = {at: _gauss(words[at:at + 4].tolist()) for at in set(starts)}  # all at 0 at first
            gauss, spare = map(list, zip(*(pairs[at] for at in starts)))
            offset += 4
        else:
            gauss = spare
        weight = (detector.alpha + np.array(gauss) * detector.ALPHA_WIDTH) / detector.BASE_FREQ
        active = np.arange(len(features))  # texts still drawing, by their row in `prob`
        prob = np.tile(initial, (len(features), 1))
        start = offset.copy()
        i = 0  # langdetect's draw counter
        while len(active):
            steps = DRAWS_AT_ONCE + (i == 0)  # so that a chunk ends on a normalising draw
            values, ends = _choices(stream, start, count[active], shift[active], steps)
            drawn = flat[(base[active][:, None] + values).T]  # draws x texts
            first = 0
            for last in range(-i % 5, steps, 5):  # the draws after which langdetect normalises
                factors = np.take(matrix, drawn[first:last + 1], axis=0)  # draws x texts x languages
                factors += weight[:, None]
                factors[0] *= prob  # factor * prob is langdetect's prob * factor: products commute
                prob = np.multiply.reduce(factors, axis=0)  # draw by draw, as langdetect multiplies
                prob /= _sums(prob.T.copy())[:, None]  # C order: languages x texts
                # langdetect's test, on the quotients; first on all texts at once (one call), as
                # most groups end no text's trial
                if prob.max() > detector.CONV_THRESHOLD or i + last >= detector.ITERATION_LIMIT:
                    done = prob.max(axis=1) > detector.CONV_THRESHOLD
                    if i + last >= detector.ITERATION_LIMIT:
                        done[:] = True
                    finished = active[done]
                    ended[finished] = prob[done]
                    offset[finished] = ends[done, last]
                    left = ~done
                    active, prob, weight = active[left], prob[left], weight[left]
                    drawn, ends = drawn[:, left], ends[left]
                    if not len(active):
                        break
                first = last + 1
            i += steps
            start = ends[:, -1]
        average += ended / trials
    return average


def _choices_of_one(stream: _Stream, start: int, count: int) -> Iterator[tuple[int, int]]:
    """`_choices` for one text, one at a time: (choice, the word after it)."""
    shift = 32 - count.bit_length()
    at = start
    while True:
        for word in stream.upto(at + DRAWS_AT_ONCE)[at:at + DRAWS_AT_ONCE].tolist():
            at += 1
            if word >> shift < count:
                yield word >> shift, at


def _run_trials_of_one(features: bytes, detector: _Detector, initial: np.ndarray,
                       stream: _Stream) -> np.ndarray:
    """`_run_trials` for one text: langdetect's loop as it is written, on the same draws.
    Arrays of one text would cost more in numpy calls than the lockstep saves."""
    rows = np.frombuffer(features, dtype=np.int32).tolist()
    matrix = detector.profiles.matrix
    average = np.zeros(len(initial))
    offset = 0  # words read so far
    spare = 0.0
    for trial in range(detector.n_trial):
        if trial % 2 == 0:  # gauss() reads four words for two values, and keeps the second
            gauss, spare = _gauss(stream.upto(offset + 4)[offset:offset + 4].tolist())
            offset += 4
        else:
            gauss = spare
        weight = (detector.alpha + gauss * detector.ALPHA_WIDTH) / detector.BASE_FREQ
        prob = initial.copy()
        for i, (choice, offset) in enumerate(_choices_of_one(stream, offset, len(rows))):
            prob *= weight + matrix[rows[choice]]
            if i % 5 == 0:
                prob /= sum(prob.tolist())  # Python's sum, as langdetect's
                if prob.max() > detector.CONV_THRESHOLD or i >= detector.ITERATION_LIMIT:
                    break
        average += prob / detector.n_trial
    return average


def detect(text: str, config: Config) -> tuple[str, float | None]:
    """(language code, probability) or ("und", None)."""
    return detect_many([text], config)[0]


def detect_many(texts: list[str], config: Config) -> list[tuple[str, float | None]]:
    """`detect` of each text, the random trials of all run together (`_run_trials`)."""
    answers: list[tuple[str, float | None]] = [(UNDETERMINED, None)] * len(texts)
    detector = _Detector(_profiles())
    detector.seed = config.seed  # read by each detection: same text, same answer
    detector.n_trial = config.trials
    numbers: list[int] = []
    features: list[bytes] = []
    for number, text in enumerate(texts):
        sample = " ".join(text[: config.sample_chars].split())
        if len(sample) < config.min_chars:
            continue
        detector.text = ""
        detector.append(sample)
        detector.cleaning_text()
        rows = detector._extract_ngrams()
        if rows:  # else langdetect finds no features: "und"
            numbers.append(number)
            features.append(rows)
    if not features:
        return answers
    langprobs = _run_trials(features, detector)
    # langdetect's best guess: its probabilities above PROB_THRESHOLD sorted, stably, from
    # the largest: the first language (in profile order) with the largest.
    best = langprobs.argmax(axis=1)
    top = langprobs[np.arange(len(best)), best].tolist()
    for number, language, probability in zip(numbers, best.tolist(), top):
        if probability <= detector.PROB_THRESHOLD:
            continue  # langdetect ranks no language
        if probability < config.min_probability:
            answers[number] = (UNDETERMINED, round(probability, 4))
        else:
            answers[number] = (detector.langlist[language], round(probability, 4))
    return answers


def process(record: Record, config: Config) -> Outcome:
    language, score = detect(record.get("text", ""), config)
    return Outcome(records=[{**record, "language": language, "language_score": score}])


def process_batch(records: list[Record], config: Config) -> list[Outcome]:
    """`process` of each record, the language detection of all done at once."""
    answers = detect_many([record.get("text", "") for record in records], config)
    return [Outcome(records=[{**record, "language": language, "language_score": score}])
            for record, (language, score) in zip(records, answers)]
