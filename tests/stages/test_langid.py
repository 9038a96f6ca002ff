import subprocess
import sys

from pipeline.stages import langid

EN = "The liberation of Aleppo represents the most serious setback for the United States in fifteen years."
FR = "La libération d'Alep représente le plus grave revers pour les États-Unis depuis quinze ans."


def test_languages_and_scores() -> None:
    assert langid.detect(EN, langid.Config())[0] == "en"
    assert langid.detect(FR, langid.Config())[0] == "fr"


def test_short_text_is_undetermined() -> None:
    assert langid.detect("Hello", langid.Config()) == ("und", None)
    assert langid.detect("wake up", langid.Config()) == ("und", None)


def test_same_answer_across_processes() -> None:
    mixed = "Hello bonjour merci thank you " * 3
    here = langid.detect(mixed, langid.Config())
    code = ("from pipeline.stages import langid;"
            f"print(langid.detect({mixed!r}, langid.Config()))")
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert there.stdout.strip() == str(here)
