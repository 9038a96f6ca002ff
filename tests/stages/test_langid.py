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


# Texts that exercise langdetect's text handling: scripts it strips Latin from, capitals it
# skips, Vietnamese normalisation, URLs and e-mail addresses, runs of spaces, Romanian commas.
SAMPLES = [
    EN,
    FR,
    "Der Rat hat am Dienstag beschlossen, die alte Brücke für Reparaturen zu schließen.",
    "El consejo votó el martes para cerrar el viejo puente por reparaciones durante el año.",
    "Совет проголосовал во вторник за закрытие старого моста на ремонт, сообщает NATO.",
    "مجلس المدينة صوت يوم الثلاثاء على إغلاق الجسر القديم للإصلاحات ی",
    "日本語のテキストです。これはテストです。ひらがなとカタカナ、そして漢字。",
    "Hội đồng đã bỏ phiếu vào thứ Ba để đóng cửa cây cầu cũ để sửa chữa.",
    "Consiliul a votat marți închiderea podului vechi pentru reparații, a spus șeful.",
    "THE NATO SUMMIT IN BRUSSELS and the EU said on Tuesday https://example.org/x?a=1 mail@example.org",
    "many    spaces   between\twords and a tab, then 12345 numbers and — dashes — too",
]


def test_same_probabilities_as_langdetect() -> None:
    from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    for text in SAMPLES:
        for seed, trials in ((0, 3), (7, 7)):
            theirs = factory.create()
            ours = langid._Detector(langid._profiles())
            for detector in (theirs, ours):
                detector.seed, detector.n_trial = seed, trials
                detector.append(text)
            assert [(p.lang, float(p.prob)) for p in ours.get_probabilities()] == \
                [(p.lang, float(p.prob)) for p in theirs.get_probabilities()], text


def test_profiles_from_the_cache_equal_the_built_ones(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(langid, "_cache_path", lambda: tmp_path / "profiles.npz")
    langid._profiles.cache_clear()
    try:
        built = langid._profiles()
        assert (tmp_path / "profiles.npz").is_file()
        langid._profiles.cache_clear()
        cached = langid._profiles()
    finally:
        langid._profiles.cache_clear()
    assert cached.languages == built.languages
    assert cached.index == built.index
    assert (cached.matrix == built.matrix).all()
