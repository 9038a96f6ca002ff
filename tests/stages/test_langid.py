import random
import subprocess
import sys

import numpy as np

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
# skips, Vietnamese normalisation, URLs and e-mail addresses, runs of spaces, Romanian commas;
# and close languages, whose trials run for hundreds of draws, up to langdetect's limit.
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
    "og det er ikke " * 5,
    "je to dobro ali ne, ja sam mislio da je bolje tako nego drugačije, kaže on",
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


def test_batch_same_probabilities_as_langdetect() -> None:
    """All samples' trials run together give each text langdetect's own probabilities."""
    from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    for seed, trials in ((0, 3), (7, 7)):
        ours = []
        for text in SAMPLES:
            detector = langid._Detector(langid._profiles())
            detector.seed, detector.n_trial = seed, trials
            detector.append(text)
            detector.cleaning_text()
            ours.append(detector._extract_ngrams())
        batch = langid._run_trials(ours, detector)
        for text, langprob in zip(SAMPLES, batch):
            theirs = factory.create()
            theirs.seed, theirs.n_trial = seed, trials
            theirs.append(text)
            theirs.get_probabilities()
            assert langprob.tolist() == theirs.langprob, text


def test_stream_is_the_generators() -> None:
    words = langid._stream(5).upto(3000)
    generator = random.Random(5)
    assert words[:3000].tolist() == [generator.getrandbits(32) for _ in range(3000)]


def test_choices_and_gauss_read_the_words_random_reads() -> None:
    """From any word on: random.choice's picks and where each ends, and gauss's two values."""
    stream = langid._stream(3)
    counts = np.array([1, 2, 3, 5, 64, 65, 1000, 4096, 4097, 30000])
    shift = np.array([32 - int(n).bit_length() for n in counts])
    for start in (0, 4, 37):
        values, ends = langid._choices(stream, np.full(len(counts), start), counts, shift, 50)
        for n, picks, after in zip(counts.tolist(), values.tolist(), ends.tolist()):
            generator = random.Random(3)
            for _ in range(start):
                generator.getrandbits(32)
            for pick, end in zip(picks, after):
                assert pick == generator.choice(range(n))
                state = generator.getstate()
                assert generator.getrandbits(32) == stream.upto(end + 1)[end]
                generator.setstate(state)
        generator = random.Random(3)
        for _ in range(start):
            generator.getrandbits(32)
        assert langid._gauss(stream.upto(start + 4)[start:start + 4].tolist()) == \
            (generator.gauss(0.0, 1.0), generator.gauss(0.0, 1.0))


def test_sums_add_as_python() -> None:
    generator = np.random.default_rng(0)
    for texts in (1, 2, 3, 8, 65, 300) * 10:
        columns = (generator.random((55, texts)) ** generator.integers(1, 40, (55, texts))
                   * 10.0 ** generator.integers(-300, 1, (55, texts)))
        assert langid._sums(columns).tolist() == [sum(column) for column in columns.T.tolist()]


def test_products_multiply_draw_by_draw() -> None:
    """_run_trials multiplies a group's factors with numpy's reduce over its first axis: in
    order, as langdetect multiplies one draw after the other."""
    generator = np.random.default_rng(0)
    for draws, texts in ((1, 1), (2, 3), (5, 1), (5, 64), (6, 300)):
        factors = (generator.random((draws, texts, 55)) ** generator.integers(1, 40, (draws, texts, 55))
                   * 10.0 ** generator.integers(-150, 1, (draws, texts, 55)))
        expected = factors[0].copy()
        for factor in factors[1:]:
            expected *= factor
        assert np.multiply.reduce(factors, axis=0).tobytes() == expected.tobytes()


MIXED = [
    {"id": "en", "text": EN},
    {"id": "fr", "text": FR},
    {"id": "short", "text": "Hello there"},
    {"id": "empty", "text": ""},
    {"id": "none"},
    {"id": "ru", "text": SAMPLES[4]},
    {"id": "ja", "text": SAMPLES[6]},
    {"id": "digits", "text": "1234567890 " * 6},  # long enough, but no n-grams: "und"
    {"id": "long", "text": " ".join([EN, FR] * 20)},  # past sample_chars
    {"id": "close", "text": SAMPLES[-2]},
    {"id": "mixed", "text": "Hello bonjour merci thank you " * 3},
]


def test_batch_equals_one_by_one() -> None:
    config = langid.Config()
    assert langid.process_batch(MIXED, config) == [langid.process(record, config) for record in MIXED]
    answers = {record["id"]: record["language"] for outcome in langid.process_batch(MIXED, config)
               for record in outcome.records}
    assert answers["en"] == "en" and answers["fr"] == "fr" and answers["ru"] == "ru"
    assert answers["short"] == answers["empty"] == answers["none"] == answers["digits"] == "und"


def test_batch_does_not_depend_on_its_company() -> None:
    config = langid.Config(trials=7, seed=11)
    whole = langid.process_batch(MIXED, config)
    assert langid.process_batch(MIXED[::-1], config)[::-1] == whole
    assert langid.process_batch(MIXED[:4], config) + langid.process_batch(MIXED[4:], config) == whole
    assert langid.process_batch(MIXED * 3, config) == whole * 3
    features = []
    for text in SAMPLES:  # and to the last bit, not only to 4 decimals
        detector = langid._Detector(langid._profiles())
        detector.seed, detector.n_trial = 11, 7
        detector.append(text)
        features.append(detector._extract_ngrams())
    together = langid._run_trials(features, detector)
    for rows, alone in zip(features, together):
        assert langid._run_trials([rows], detector)[0].tolist() == alone.tolist()


def test_ngrams_are_langdetects() -> None:
    """The n-gram rows of a text, words new (memoised as they are met) and known, are
    langdetect's own n-grams, in its order."""
    from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    profiles = langid._profiles()
    for memo in (profiles.spaced, profiles.final, profiles.windows):
        memo.clear()
    for text in SAMPLES + ["a, b;  c", "word.", "Ends without a space", "x"]:
        theirs = factory.create()
        theirs.append(text)
        theirs.cleaning_text()
        expected = [profiles.index[gram] for gram in theirs._extract_ngrams()]
        for _ in range(2):  # new words, then the same words known
            ours = langid._Detector(profiles)
            ours.append(text)
            ours.cleaning_text()
            assert ours.text == theirs.text, text
            assert np.frombuffer(ours._extract_ngrams(), dtype=np.int32).tolist() == expected, text


def test_answers_are_langdetects_best_guess() -> None:
    """A batch's answers are langdetect's top language and probability, or "und"."""
    from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    config = langid.Config(trials=7, seed=3, min_probability=0.9)
    texts = SAMPLES + [record.get("text", "") for record in MIXED]
    for text, answer in zip(texts, langid.detect_many(texts, config)):
        sample = " ".join(text[: config.sample_chars].split())
        expected: tuple[str, float | None] = (langid.UNDETERMINED, None)
        if len(sample) >= config.min_chars:
            theirs = factory.create()
            theirs.seed, theirs.n_trial = config.seed, config.trials
            theirs.append(sample)
            try:
                ranked = theirs.get_probabilities()
            except langid.LangDetectException:  # no n-grams
                ranked = []
            if ranked:
                best = ranked[0]
                expected = (best.lang if best.prob >= config.min_probability else langid.UNDETERMINED,
                            round(best.prob, 4))
        assert answer == expected, text
