"""Language id: langdetect on articles and comments, seeded, with an honest 'und'.

langdetect guesses wildly on short text (it calls "Hello" Finnish), so below
`min_chars` characters or `min_probability` the language is "und". Only the
first `sample_chars` characters are read, which keeps the stage fast on long
articles without changing the answer for any text of one language.

The detector is langdetect's own (its profiles, n-gram features, seeded random
trials and convergence test) with the three inner loops it runs per character and
per sampled n-gram written as list operations (`_Detector`); it returns exactly the
probabilities of `langdetect.detector.Detector` (tests/stages/test_langid.py checks
this text by text) at about a third of the time.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace

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
WORD_CACHE_SIZE = 200_000  # n-grams of this many distinct words are kept per process


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
    spaced: dict[str, list[int]] = field(default_factory=dict)  # memo of word_grams(word, True)
    final: dict[str, list[int]] = field(default_factory=dict)  # memo of word_grams(word, False)

    def word_grams(self, word: str, space_after: bool) -> list[int]:
        """Rows of the n-grams langdetect's NGram buffer yields over one word (and the space
        after it). The buffer starts afresh after every space, so a word's n-grams do not
        depend on what came before it."""
        memo = self.spaced if space_after else self.final
        rows = memo.get(word)
        if rows is not None:
            return rows
        rows = []
        grams = " "
        capital = False
        for ch in word + " " if space_after else word:
            last = grams[-1]
            if last == " ":
                grams = " "
            elif len(grams) >= 3:
                grams = grams[1:]
            grams += ch
            if ch.isupper():
                capital = capital or last.isupper()
            else:
                capital = False
            if capital:
                continue
            for n in (1, 2, 3):
                if len(grams) < n:
                    break
                row = self.index.get(grams[-n:])
                if row is not None and grams[-n:] != " ":
                    rows.append(row)
        if len(memo) >= WORD_CACHE_SIZE:
            memo.clear()
        memo[word] = rows
        return rows


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


class _Detector(Detector):  # type: ignore[misc]
    """langdetect's Detector with its inner loops over characters and languages done on
    words and arrays: the same random draws and the same floating-point operations in the
    same order (sums are sequential, as Python's), so the same probabilities."""

    def __init__(self, profiles: _Profiles) -> None:
        super().__init__(SimpleNamespace(word_lang_prob_map=profiles.index, langlist=profiles.languages, seed=None))
        self.profiles = profiles

    def append(self, text: str) -> None:
        text = self.URL_RE.sub(" ", text)
        text = self.MAIL_RE.sub(" ", text)
        text = NGram.normalize_vi(text)
        # langdetect keeps a space only after a character that is not a space.
        self.text += _SPACE_RUN.sub(" ", text[: self.max_text_length])

    def cleaning_text(self) -> None:
        if len(_LATIN.findall(self.text)) * 2 < len(_NON_LATIN.findall(self.text)):
            self.text = _LATIN.sub("", self.text)

    def _extract_ngrams(self) -> list[int]:
        *words, last = self.text.translate(_NORMAL).split(" ")
        memo = self.profiles.spaced
        word_grams = self.profiles.word_grams
        rows: list[int] = []
        for word in words:
            if word:
                found = memo.get(word)
                rows += found if found is not None else word_grams(word, True)
        if last:
            rows += word_grams(last, False)
        return rows

    def _detect_block(self) -> None:
        """langdetect's trials: from a seeded generator, a random alpha per trial, then
        n-grams drawn at random, each multiplying the language probabilities by
        alpha / BASE_FREQ + P(ngram | language), normalised every fifth draw until one
        language passes CONV_THRESHOLD; the trials are averaged."""
        self.cleaning_text()
        rows = self._extract_ngrams()
        if not rows:
            raise LangDetectException(ErrorCode.CantDetectError, "No features in text.")
        matrix = self.profiles.matrix
        languages = len(self.langlist)
        average = np.zeros(languages)
        draw = self.random
        draw.seed(self.seed)
        for _ in range(self.n_trial):
            prob = (np.array(self.prior_map) if self.prior_map is not None
                    else np.full(languages, 1.0 / languages))
            weight = (self.alpha + draw.gauss(0.0, 1.0) * self.ALPHA_WIDTH) / self.BASE_FREQ
            i = 0
            while True:
                prob *= weight + matrix[draw.choice(rows)]
                if i % 5 == 0:
                    prob /= sum(prob.tolist())  # Python's sum, as langdetect's
                    if prob.max() > self.CONV_THRESHOLD or i >= self.ITERATION_LIMIT:
                        break
                i += 1
            average += prob / self.n_trial
        self.langprob = average.tolist()


def detect(text: str, config: Config) -> tuple[str, float | None]:
    """(language code, probability) or ("und", None)."""
    sample = " ".join(text[: config.sample_chars].split())
    if len(sample) < config.min_chars:
        return UNDETERMINED, None
    detector = _Detector(_profiles())
    detector.seed = config.seed  # read by each detection: same text, same answer
    detector.n_trial = config.trials
    detector.append(sample)
    try:
        best = detector.get_probabilities()[0]
    except (LangDetectException, IndexError):
        return UNDETERMINED, None
    probability = float(best.prob)
    if probability < config.min_probability:
        return UNDETERMINED, round(probability, 4)
    return best.lang, round(probability, 4)


def process(record: Record, config: Config) -> Outcome:
    language, score = detect(record.get("text", ""), config)
    return Outcome(records=[{**record, "language": language, "language_score": score}])
