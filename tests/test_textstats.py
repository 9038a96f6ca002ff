from pathlib import Path

import yaml

from pipeline.textstats import count_sentences, count_words, split_sentences

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
