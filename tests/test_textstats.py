import subprocess
import sys
from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.textstats import WORD, count_sentences, count_words, sentence_tokenizer, split_sentences

CASES = yaml.safe_load((Path(__file__).parent / "cases" / "sentences.yaml").read_text(encoding="utf-8"))


def test_news_sentence_set_is_at_least_95_percent_exact() -> None:
    expected = [sentence for case in CASES for sentence in case["sentences"]]
    got = [sentence for case in CASES for sentence in split_sentences(case["text"])]
    exact = sum(1 for case in CASES for sentence in split_sentences(case["text"])
                if sentence in case["sentences"])
    assert len(expected) >= 30
    assert exact / len(expected) >= 0.95, [s for s in got if s not in expected]


def test_news_abbreviations_do_not_end_sentences() -> None:
    for text in ["The U.S. said so.", "Lt. Gen. Smith spoke.", "On Dec. 12 it rained.",
                 "Mr. Smith left.", "St. Louis won."]:
        assert split_sentences(text) == [text]


def test_lines_are_split_separately() -> None:
    assert split_sentences("A heading\nThe body goes on. It ends.") == [
        "A heading", "The body goes on.", "It ends."]
    assert count_sentences("One.\n\nTwo. Three.") == 3


def test_word_count() -> None:
    assert count_words("Syria’s 2nd city – Aleppo, 2016.") == 6


def test_counting_sentences_loads_punkt_without_the_rest_of_nltk() -> None:
    # A fresh interpreter: this test session may have imported NLTK already.
    code = (
        "import sys\n"
        "from pipeline.textstats import count_sentences\n"
        "assert count_sentences('Mr. Smith left. He came back.') == 2\n"
        "print(sorted(m for m in ('nltk', 'nltk.tokenize.punkt', 'scipy') if m in sys.modules))\n"
        "import nltk\n"
        "from nltk.tokenize import sent_tokenize, punkt\n"
        "print(nltk.tokenize.punkt is punkt, hasattr(punkt, 'PunktSentenceTokenizer'))\n"
        "print(nltk.redos.DEFAULT_TIMEOUT is not None)\n"  # the time limit is untouched
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[:3] == ["[]", "True True", "True"]


def test_split_sentences_agrees_with_nltk_loaded_whole() -> None:
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    tokenizer = sentence_tokenizer()
    whole = PunktSentenceTokenizer(tokenizer._params)  # the same parameters, NLTK imported as usual
    for case in CASES:
        for paragraph in case["text"].split("\n"):
            if paragraph.strip():
                assert tokenizer.tokenize(paragraph.strip()) == whole.tokenize(paragraph.strip())


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from("ab Z9_-.\n\t\x00\x7fé’ß٣²ǅ\u200d😀")) | st.text())
def test_count_words_counts_the_words_findall_finds(text: str) -> None:
    assert count_words(text) == len(WORD.findall(text))
    ascii_text = text.encode("ascii", "replace").decode("ascii")
    assert count_words(ascii_text) == len(WORD.findall(ascii_text))
