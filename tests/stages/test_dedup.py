import hashlib
import json
import os
import pickle
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from pipeline.document import apply_spans
from pipeline.errors import StageError
from pipeline.stages import dedup

STORY = (
    "Syrian government forces took back the eastern part of Aleppo on Monday after four years "
    "of fighting, state media said. Thousands of civilians left the enclave through corridors "
    "opened by the army, while the last armed groups negotiated their evacuation to Idlib. "
    "Western governments called for a ceasefire and accused the government of abuses, claims "
    "that reporters on the ground disputed. The United Nations said buses were waiting at the "
    "crossing points and that the operation could take several days to complete."
)
OTHER = (
    "Islamic State fighters attacked Palmyra with tanks and heavy artillery on Friday and "
    "pushed into the city after the army withdrew to the south. The group had been driven out "
    "of the ancient city in March by Syrian troops backed by Russian air strikes. Officials "
    "said reinforcements were on their way and that the city would be retaken within days, "
    "while residents fled toward Homs along the main road through the desert."
)
# A five-paragraph wire story and a distinct story on the same event that borrows one paragraph.
WIRE = [
    "A convoy of forty trucks carrying flour, medicine and winter blankets reached the besieged town "
    "of Madaya on Wednesday evening, the first delivery of aid in more than three months.",
    "Local doctors said at least twenty residents had died of hunger since October and that hundreds "
    "more needed treatment for malnutrition, most of them children and elderly people.",
    "The Red Crescent said its teams would distribute food parcels door to door over the coming days "
    "because many families were too weak to walk to the distribution point near the mosque.",
    "A second convoy was expected to reach the villages of Foua and Kefraya in the north at the same "
    "time, under an agreement that ties the fate of the two areas to each other.",
    "The United Nations envoy welcomed the delivery but warned that a single convoy could not end "
    "the suffering of the four hundred thousand people living under siege across the country.",
]
SAME_EVENT = [
    "Residents of Madaya queued in the snow on Thursday as aid workers unloaded sacks of rice and "
    "lentils from lorries that had waited at a checkpoint for most of the night.",
    "Opposition activists accused the government of starving the town into surrender, a charge the "
    "information ministry rejected as propaganda spread by foreign television channels.",
    WIRE[3],
    "Relief agencies said they had asked for permission to send fuel as well, since families had been "
    "burning furniture and doors to keep warm through one of the coldest winters in years.",
    "Talks on a wider truce are due to resume in Geneva at the end of the month, although neither side "
    "has said whether it will attend.",
]


def article(doc_id: str, text: str, **fields: object) -> dict:
    return {"id": doc_id, "kind": "article", "role": "main", "text": text, **fields}


def comment(doc_id: str, text: str, page: str = "p", parent: str | None = None, position: int = 0) -> dict:
    return {"id": doc_id, "kind": "comment", "article_id": page, "page_id": page, "parent_id": parent,
            "position": position, "text": text}


def run(records: list[dict], **config: object) -> list[dict]:
    cfg = dedup.Config(**config)
    state = dedup.learn(records, cfg)
    out = []
    for record in records:
        out.extend(dedup.process(record, cfg, state).records)
    return out


def typo(text: str, word: str, wrong: str) -> str:
    assert word in text
    return text.replace(word, wrong, 1)


def syndicated_copy() -> str:
    """The wire story republished: intro line, last paragraph dropped, curly quotes, dashes, typos."""
    body = [WIRE[0].replace("flour, medicine", "flour – medicine"), typo(WIRE[1], "malnutrition", "malnutriton"),
            typo(WIRE[2], "distribute", "distribtue"), WIRE[3]]
    return "\n".join(["This story first appeared on a partner site and is republished with permission.", *body])


# ---------------------------------------------------------------- normalisation


def test_normalize_folds_case_space_quotes_dashes() -> None:
    assert dedup.normalize("It’s  “Big” – OK", False) == dedup.normalize("it's \"big\" - ok", False)
    assert dedup.normalize("«Big» — `ok`\n\tnow", False) == dedup.normalize('"big" - \'ok\' now', False)
    assert dedup.normalize("ＡＢＣ ﬁle", False) == "abc file"  # NFKC: full-width letters, ligature
    assert dedup.normalize("10,645 Views", True) == dedup.normalize("20,001 views", True)
    assert dedup.normalize("10,645 Views", False) != dedup.normalize("20,001 views", False)


def test_shingles_and_jaccard() -> None:
    assert dedup.shingles("a b c d", 2) == {"a b", "b c", "c d"}
    assert dedup.shingles("a b", 5) == {"a b"}
    assert dedup.jaccard({"x", "y"}, {"y", "z"}) == pytest.approx(1 / 3)
    assert dedup.jaccard(set(), {"y"}) == 0.0


def test_exact_copies_after_normalisation_are_one_cluster() -> None:
    variant = STORY.upper().replace(" ", "  ").replace(", ", ",\n").replace("'", "’")
    out = run([article("b", variant), article("a", STORY), article("c", OTHER)])
    assert [r["id"] for r in out] == ["a", "c"]
    assert out[0]["dup_cluster"] == "dup-a"
    assert out[1]["dup_cluster"] == "dup-c"
    marked = {r["id"]: r for r in run([article("b", variant), article("a", STORY)], mode="mark")}
    assert marked["b"]["duplicate_of"] == "a" and marked["b"]["dup_similarity"] == 1.0


def test_exact_duplicate_comments_and_short_comments() -> None:
    long_text = "I think this report leaves out what happened in the east of the city last week."
    records = [comment("p#c1", long_text, position=0), comment("p#c2", long_text.lower(), position=1),
               comment("q#c1", "Thanks!", page="q"), comment("q#c2", "Thanks!", page="q", position=1)]
    out = {r["id"]: r for r in run(records, mode="mark")}
    assert out["p#c2"]["duplicate_of"] == "p#c1"
    assert out["q#c1"]["duplicate_of"] is None and out["q#c2"]["duplicate_of"] is None


def test_articles_of_a_few_words_are_not_deduplicated() -> None:
    # Two distinct articles whose extraction left only a widget line are not one article.
    records = [article("a", "Read more", title="One"), article("b", "Read more", title="Two"),
               article("c", "Continue reading this story on our site", title="Three"),
               article("d", "Continue reading this story on our website today", title="Four"),
               article("e", "Continue reading this story on our website today", title="Five")]
    out = {r["id"]: r["duplicate_of"] for r in run(records, mode="mark")}
    assert out == {"a": None, "b": None, "c": None, "d": None, "e": "d"}


# ---------------------------------------------------------------- the fast path of summarize

# Characters the fast path must treat as `normalize` does: ASCII of every class, punctuation
# it replaces by a stand-in, and characters it must leave to the general path (letters beyond
# ASCII, combining marks, compatibility forms that make letters or digits, case folding that
# changes the length).
TRICKY = ["a", "B", "z", "Q", "7", "0", "_", " ", " ", "  ", "\t", "\n", "\n", "\x1c", "\x0b", "\r", ".", ",",
          ";", ":", "!", "?", "-", "'", "\"", "`", "(", ")", "/", "…", "’", "‘", "“", "”", "«", "»", "–", "—",
          "\u00a0", "\u2009", "\u200b", "\u2028", "\x85", "·", "€", "©", "é", "É", "ß", "İ", "Σ", "ﬁ", "™", "½",
          "①", "Ⅻ", "Ａ", "\u0301", "\u00a8", "\u2026\u0338", "℃", "¹", "٣", "ª"]


def random_text(rng: random.Random, pool: list[str], lines: int) -> str:
    words = ["news", "the", "Aleppo", "2016", "it's", "U.S.", "x_y", "said"]
    out = []
    for _ in range(lines):
        parts = [rng.choice(words) if rng.random() < 0.6 else rng.choice(pool) for _ in range(rng.randint(0, 14))]
        out.append("".join(part + (" " if rng.random() < 0.7 else "") for part in parts))
    if rng.random() < 0.3 and len(out) > 1:
        out.append(out[rng.randrange(len(out))] + rng.choice(["", ".", " !", "  "]))  # a repeated line
    return "\n".join(out) + rng.choice(["", "\n"])


@pytest.mark.parametrize("fold_digits", [False, True])
def test_fast_path_gives_the_summaries_and_spans_of_the_general_path(fold_digits: bool,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(8)
    ascii_only = [c for c in TRICKY if c.isascii()]
    records = []
    for i in range(600):
        pool = ascii_only if i % 3 == 0 else TRICKY[: rng.randint(40, len(TRICKY))]
        text = random_text(rng, pool, rng.randint(1, 6))
        records.append(article(f"a{i}", text) if i % 4 == 0 else comment(f"p#c{i}", text, position=i))
    records += [article("wire", syndicated_copy()), comment("p#q", QUOTING, position=0)]
    for i, glued in enumerate(["Cafe\u0301 au lait, the\u0301 ve\u0301rite\u0301, ful\u0308l and A\u030a ring here",
                               "Got 10™ of ½ cup, ① Ａbc in İstanbul: done…", "a\u00a8b ¨ c<\u0338d e ℃ f ¹ g ª h"]):
        records += [article(f"glued{i}", glued), comment(f"p#glued{i}", glued, position=i)]
    cfg = dedup.Config(fold_digits=fold_digits, min_words=5, quote_min_words=2, repeat_min_words=2)
    fast = [dedup.summarize(r, cfg) for r in records]
    spans = [dedup.clean_text(r, cfg)[1] for r in records]
    took_fast = sum(dedup._ascii_stand_in(r["text"]) is not None for r in records)
    assert len(records) // 2 < took_fast < len(records)  # both paths are exercised
    monkeypatch.setattr(dedup, "_ascii_stand_in", lambda text: None)  # everything through the general path
    for record, summary, spans_fast in zip(records, fast, spans):
        assert dedup.summarize(record, cfg) == summary, record["text"]
        assert dedup.clean_text(record, cfg)[1] == spans_fast, record["text"]
    assert sum(s.tokens is not None for s in fast) > 300 and sum(s.repeated_lines > 0 for s in fast) > 20


def test_summary_digest_and_words_follow_normalize() -> None:
    cfg = dedup.Config(min_words=5)
    for text in ["Hello,  World!\n\nSecond\tline\x1c here  ", "`Quoted` — “curly” café … 42", "  lead", "Plain text."]:
        summary = dedup.summarize(comment("p#c1", text), cfg)
        norm = dedup.normalize(text, False)
        assert summary.length == len(norm) and summary.words == len(dedup.WORD.findall(norm))
        assert summary.digest == hashlib.sha256(norm.encode("utf-8")).digest()


def test_stand_ins_only_for_characters_that_never_make_a_word() -> None:
    assert [dedup._stand_in(c) for c in "’“–…\u00a0"] == [" ", " ", " ", ".", " "]
    assert [dedup._stand_in(c) for c in ["é", "™", "½", "①", "\u0301", "\u00a8", "Ａ"]] == [None] * 7
    assert dedup._ascii_stand_in("It’s done…") == b"It s done."
    assert dedup._ascii_stand_in("Café") is None


def test_word_offsets_take_the_sentence_punctuation_along() -> None:
    for text in [QUOTING, "U.S. troops... left?! (Yes) — «non»; done…  end", "...a", "a", "", "é!ß.x", "ab.", "abc..."]:
        expected_starts, expected_ends = [], []
        for match in dedup.WORD.finditer(text):
            end = match.end()
            while end < len(text) and text[end] in ".,;:!?…":
                end += 1
            expected_starts.append(match.start())
            expected_ends.append(end)
        starts, ends = dedup._word_offsets(dedup._shape(text))
        assert (starts.tolist(), ends.tolist()) == (expected_starts, expected_ends), text
        # as `combine` holds it: 2 bits a character, padded with "other" to whole bytes
        packed = dedup._pack_shape(dedup._shape(text))
        assert len(packed) == -(-len(text) // 4) and dedup._unpack_shape(packed)[:len(text)] == dedup._shape(text)
        starts, ends = dedup._word_offsets(dedup._unpack_shape(packed))
        assert (starts.tolist(), ends.tolist()) == (expected_starts, expected_ends), text


def test_hashing_articles_loads_neither_datasketchs_package_nor_scipy() -> None:
    # `import datasketch` imports scipy (~0.5 s of CPU per process): only its minhash module
    # is loaded (pipeline/imports.py), and only by a process that hashes an article.
    code = ("import sys; import pipeline.stages.dedup as d;"
            "print(d._permutations.cache_info().currsize);"
            "d.summarize({'id': 'a', 'text': ' '.join(['word%d' % i for i in range(40)])}, d.Config());"
            "print(d._permutations.cache_info().currsize);"
            "print(any(m.split('.')[0] in ('datasketch', 'scipy') for m in sys.modules))")
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo)
    assert done.stdout.split() == ["0", "1", "False"]


# ---------------------------------------------------------------- signatures and LSH


def seq(text: str) -> np.ndarray:
    return dedup._shingle_seq(dedup._WORD_HASHES(dedup.WORD.findall(dedup.normalize(text, False))), 5)


def test_minhash_signature_estimates_jaccard() -> None:
    base = " ".join(WIRE)
    half = " ".join(WIRE[:3] + SAME_EVENT[:2])
    sigs = np.stack([dedup.minhash_signature(seq(text), 128, 1) for text in (base, base, half, OTHER)])
    assert sigs.shape == (4, 128) and sigs.dtype == np.uint32
    assert (sigs[0] == sigs[1]).all()
    exact = dedup.jaccard(dedup.shingles(dedup.normalize(base, False), 5), dedup.shingles(dedup.normalize(half, False), 5))
    assert abs(float(np.mean(sigs[0] == sigs[2])) - exact) < 0.12
    assert float(np.mean(sigs[0] == sigs[3])) < 0.05
    other_seed = dedup.minhash_signature(seq(base), 128, 2)
    assert not (other_seed == sigs[0]).all()
    with pytest.raises(ValueError):
        dedup.minhash_signature(np.zeros(0, dtype=np.uint32), 128, 1)


def test_signature_is_a_datasketch_minhash_of_the_shingle_hashes() -> None:
    from datasketch import MinHash

    shingle_hashes = seq(STORY)
    reference = MinHash(num_perm=64, seed=3, hashfunc=int, scheme="affine32")
    reference.update_batch(shingle_hashes.tolist())  # repeated shingles and their order change nothing
    assert dedup.minhash_signature(shingle_hashes, 64, 3).tolist() == reference.hashvalues.tolist()
    many = np.random.default_rng(0).integers(0, 2**32, 20000, dtype=np.uint64).astype(np.uint32)  # past one block
    reference = MinHash(num_perm=128, seed=1, hashfunc=int, scheme="affine32")
    reference.update_batch(many.tolist())
    assert dedup.minhash_signature(many, 128, 1).tolist() == reference.hashvalues.tolist()


def test_signatures_are_the_same_in_another_process() -> None:
    # Indexes and worker processes share signatures: hashing must not depend on the process (no hash()).
    record = article("a", STORY)
    here = dedup.summarize(record, dedup.Config())
    quoting = [comment("p#c2", QUOTING, position=1), comment("p#c3", QUOTING + " Café", position=2)]  # both paths
    here_comment = [dedup.summarize(c, dedup.Config()) for c in quoting]
    code = ("import sys; from pipeline.stages import dedup as d;"
            f"s = d.summarize({record!r}, d.Config());"
            "print(s.signature.hex(), s.shingles.hex(), s.digest.hex());"
            f"print(*(getattr(d.summarize(c, d.Config()), key).hex() for c in {quoting!r} for key in ('tokens', 'shape')))")
    repo = Path(__file__).resolve().parents[2]
    for hash_seed in ("1", "2"):
        there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo,
                               env={**os.environ, "PYTHONHASHSEED": hash_seed})
        assert there.stdout.split() == [here.signature.hex(), here.shingles.hex(), here.digest.hex(),
                                        *(getattr(c, key).hex() for c in here_comment for key in ("tokens", "shape"))]


def test_s_curve_and_band_choice() -> None:
    assert dedup.candidate_probability(0.5, 42, 3) == pytest.approx(0.9963, abs=1e-4)
    assert dedup.candidate_probability(0.1, 42, 3) < 0.05
    assert dedup.lsh_params(dedup.Config()) == (42, 3)
    assert dedup.lsh_params(dedup.Config(bands=None, rows=None, lsh_threshold=0.3)) == (42, 3)
    assert dedup.lsh_params(dedup.Config(bands=None, rows=None, lsh_threshold=0.7)) == (16, 8)
    with pytest.raises(ValidationError):
        dedup.Config(bands=42, rows=None)
    with pytest.raises(ValidationError):
        dedup.Config(bands=64, rows=3)  # 192 > num_perm


def test_candidate_pairs_bands_and_big_buckets() -> None:
    rng = np.random.default_rng(0)
    sigs = rng.integers(0, 2**32, size=(6, 12), dtype=np.uint64).astype(np.uint32)
    sigs[3, :3] = sigs[1, :3]  # 1 and 3 share band 0 only
    sigs[5] = sigs[4]  # 4 and 5 share every band
    pairs, hits = dedup._candidate_pairs(sigs, 4, 3)
    assert pairs.tolist() == [[1, 3], [4, 5]] and hits.tolist() == [1, 4]
    pairs, _ = dedup._candidate_pairs(sigs, 4, 3, skip_both_from=4)
    assert pairs.tolist() == [[1, 3]]
    big = np.zeros((dedup.MAX_BUCKET_PAIRS + 5, 12), dtype=np.uint32)
    pairs, _ = dedup._candidate_pairs(big, 4, 3)
    linked = {0} | {int(j) for i, j in pairs.tolist() if i == 0}
    assert linked == set(range(len(big)))  # a star from the first member reaches everyone
    assert len(pairs) < len(big) * (len(big) - 1) // 2


def test_band_keys_agree_exactly_when_a_band_agrees() -> None:
    cfg = dedup.Config()
    wire, again = dedup.summarize(article("a", "\n".join(WIRE)), cfg), dedup.summarize(article("b", "\n".join(WIRE)), cfg)
    other = dedup.summarize(article("c", OTHER), cfg)
    keys = dedup.band_keys(wire, cfg)
    assert len(keys) == 42 and len(set(keys)) == 42 and keys == dedup.band_keys(again, cfg)
    assert not set(keys) & set(dedup.band_keys(other, cfg))
    assert dedup.band_keys(dedup.summarize(comment("p#c1", STORY), cfg), cfg) == []
    assert dedup.band_keys(dedup.summarize(article("d", "Too short to hash."), cfg), cfg) == []
    signature = np.frombuffer(wire.signature, dtype="<u4")
    assert keys[1] == "1:" + signature[3:6].astype("<u4").tobytes().hex()


def test_bucket_pairs_all_pairs_then_star_and_chain() -> None:
    assert dedup.bucket_pairs(["b", "a10", "a9"]) == [("a9", "a10"), ("a9", "b"), ("a10", "b")]
    ids = [f"x{n}" for n in range(dedup.MAX_BUCKET_PAIRS + 5)]
    pairs = dedup.bucket_pairs(reversed(ids))
    assert len(pairs) == 2 * len(ids) - 3 and {b for a, b in pairs if a == "x0"} == set(ids[1:])


# ---------------------------------------------------------------- verification


def test_compare_measures_as_their_definitions() -> None:
    # Shingle sequences with repeats, over few values so that they share some.
    rng = random.Random(8)
    for _ in range(300):
        size = rng.choice([1, 2, 5])
        seqs = [[rng.randrange(30) for _ in range(rng.randint(1, 50))] for _ in range(2)]
        sets = [set(seq) for seq in seqs]

        def coverage(seq: list[int], other: set[int]) -> float:
            covered = {i + k for i, shingle in enumerate(seq) if shingle in other for k in range(size)}
            return len(covered) / (len(seq) + size - 1)

        words = [len(seq) + size - 1 for seq in seqs]
        measured = dedup.compare(*(np.array(seq, dtype=np.uint32) for seq in seqs), size)
        assert measured.jaccard == len(sets[0] & sets[1]) / len(sets[0] | sets[1])
        assert measured.containment == max(coverage(seqs[0], sets[1]), coverage(seqs[1], sets[0]))
        assert measured.size_ratio == min(words) / max(words)


def test_verification_catches_syndicated_copy_by_containment() -> None:
    measured = dedup.similarity("\n".join(WIRE), syndicated_copy(), dedup.Config())
    assert measured.jaccard < dedup.Config().near_threshold  # Jaccard alone would miss it
    assert measured.containment >= 0.85
    assert measured.is_copy(dedup.Config())
    assert not measured.is_copy(dedup.Config(containment_threshold=1.01))


def test_verification_rejects_same_event_and_quoted_paragraph() -> None:
    cfg = dedup.Config()
    shared = dedup.similarity("\n".join(WIRE), "\n".join(SAME_EVENT), cfg)
    assert 0.1 < shared.containment < 0.4 and not shared.is_copy(cfg)
    quoted = dedup.similarity("\n".join(WIRE), WIRE[3] + " " + WIRE[4], cfg)
    assert quoted.containment == 1.0 and quoted.size_ratio < 0.5 and not quoted.is_copy(cfg)


def test_hash_collisions_alone_never_merge(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every article gets the same signature: every pair is an LSH candidate, only real copies merge.
    monkeypatch.setattr(dedup, "minhash_signature",
                        lambda seq, num_perm, seed: np.zeros(num_perm, dtype=np.uint32))
    records = [article("wire", "\n".join(WIRE), published="2016-01-13"), article("copy", syndicated_copy()),
               article("event", "\n".join(SAME_EVENT)), article("story", STORY + " " + OTHER)]
    state = dedup.learn(records, dedup.Config())
    assert state["stats"]["candidate_pairs"] == 6
    assert state["members"] == {"copy": {"cluster": "dup-wire", "duplicate_of": "wire",
                                         "similarity": state["members"]["copy"]["similarity"],
                                         "reason": "near_duplicate"},
                                "wire": {"cluster": "dup-wire"}}


def test_near_copy_is_verified_and_marked() -> None:
    edited = STORY.replace("Monday", "Tuesday").replace(" to complete.", ".")
    out = run([article("a", STORY), article("b", edited), article("c", OTHER)], mode="mark")
    by_id = {r["id"]: r for r in out}
    assert by_id["b"]["duplicate_of"] == "a"
    assert 0.8 <= by_id["b"]["dup_similarity"] < 1.0
    assert by_id["a"]["duplicate_of"] is None
    assert by_id["c"]["duplicate_of"] is None


def test_distinct_articles_on_one_event_are_not_merged() -> None:
    half = STORY[: len(STORY) // 2] + " " + OTHER
    out = run([article("a", STORY), article("b", half), article("w", "\n".join(WIRE)),
               article("e", "\n".join(SAME_EVENT))])
    assert [r["duplicate_of"] for r in out] == [None, None, None, None]


def test_audit_lists_each_copy_with_its_measures() -> None:
    records = [article("wire", "\n".join(WIRE), published="2016-01-13"),
               article("copy", syndicated_copy(), published="2016-01-14"),
               article("exact", "\n".join(WIRE).upper(), published="2016-01-15")]
    state = dedup.learn(records, dedup.Config())
    [cluster] = state["clusters"]
    assert cluster["keep"] == "wire" and cluster["cluster"] == "dup-wire"
    copies = {c["id"]: c for c in cluster["copies"]}
    assert copies["exact"]["reason"] == "exact_duplicate"
    assert copies["copy"]["reason"] == "near_duplicate"
    assert {"jaccard", "containment", "size_ratio"} <= set(copies["copy"])
    json.dumps(state)  # state.json must be plain JSON


# ---------------------------------------------------------------- keep policy


def keep_of(records: list[dict], **config: object) -> str:
    state = dedup.learn(records, dedup.Config(**config))
    [cluster] = state["clusters"]
    return cluster["keep"]


def test_keep_policy_earliest_then_main_then_longest_then_id() -> None:
    assert keep_of([article("a", STORY, published="2016-12-05"), article("z", STORY, published="2016-12-01")]) == "z"
    # same day: main before related
    assert keep_of([article("a", STORY, role="related", published="2016-12-01"),
                    article("b", STORY, published="2016-12-01")]) == "b"
    # everything tied: the smallest id, in natural order (c9 before c10)
    assert keep_of([article("p#c10", STORY), article("p#c9", STORY)]) == "p#c9"
    assert keep_of([article("b", STORY), article("a", STORY)]) == "a"


def test_keep_policy_longest_breaks_ties_of_date_and_role() -> None:
    longer = STORY + " The army said it had found weapons depots in the eastern districts."
    records = [article("a", STORY, published="2016-12-01"), article("b", longer, published="2016-12-01")]
    assert keep_of(records) == "b"
    assert keep_of(records, keep_policy=["earliest_published", "smallest_id"]) == "a"


def test_keep_policy_undated_last_and_time_zones() -> None:
    assert keep_of([article("a", STORY), article("b", STORY, published="2017-01-01")]) == "b"
    # 23:00 at UTC-5 is 04:00 UTC the next day: later than 01:00 UTC
    assert keep_of([article("a", STORY, published="2016-12-01T23:00:00-05:00"),
                    article("b", STORY, published="2016-12-02T01:00:00+00:00")]) == "b"
    # a date alone is midnight UTC
    assert keep_of([article("a", STORY, published="2016-12-02T00:30:00+00:00"),
                    article("b", STORY, published="2016-12-02")]) == "b"


def test_keep_policy_is_configurable_and_validated() -> None:
    records = [article("b", STORY, published="2016-12-01"), article("a", STORY, role="related")]
    assert keep_of(records) == "b"
    assert keep_of(records, keep_policy=["smallest_id"]) == "a"
    assert keep_of(records, keep_policy=["main_first", "earliest_published"]) == "b"
    with pytest.raises(ValidationError):
        dedup.Config(keep_policy=["newest"])
    with pytest.raises(ValidationError):
        dedup.Config(keep_policy=["longest", "longest"])
    with pytest.raises(ValidationError):
        dedup.Config(keep_policy=[])


def test_keep_key_orders_criteria() -> None:
    early_related = {"id": "x", "published": "2016-01-01", "role": "related", "text": "short"}
    late_main = {"id": "y", "published": "2016-02-01", "role": "main", "text": "much longer text"}
    assert dedup.keep_key(early_related) < dedup.keep_key(late_main)
    assert dedup.keep_key(late_main, ["main_first"]) < dedup.keep_key(early_related, ["main_first"])
    assert dedup.keep_key(late_main, ["longest"]) < dedup.keep_key(early_related, ["longest"])


# ---------------------------------------------------------------- mark and drop


def test_mark_keeps_every_record_and_drop_removes_copies() -> None:
    records = [article("wire", "\n".join(WIRE), published="2016-01-13"), article("copy", syndicated_copy()),
               article("event", "\n".join(SAME_EVENT))]
    marked = run(records, mode="mark")
    assert [(r["id"], r["duplicate_of"], r["dup_cluster"]) for r in marked] == [
        ("wire", None, "dup-wire"), ("copy", "wire", "dup-wire"), ("event", None, "dup-event")]
    assert marked[1]["dup_similarity"] >= 0.7 and marked[0]["dup_similarity"] is None
    dropped = run(records, mode="drop")
    assert [r["id"] for r in dropped] == ["wire", "event"]
    cfg = dedup.Config(mode="drop")
    outcome = dedup.process(records[1], cfg, dedup.learn(records, cfg))
    assert outcome.records == [] and outcome.drop_reason == "near_duplicate"
    assert outcome.notes == {"duplicate_of": "wire"}


def test_comments_of_a_dropped_copy_follow_the_kept_article() -> None:
    text = "I think this report leaves out what happened in the east of the city."
    reply = "That is not what the people who live there told the reporters, though."
    records = [article("a", STORY), article("b", STORY), comment("b#c1", text, page="b"),
               comment("b#c2", reply, page="b", parent="b#c1", position=1)]
    out = {r["id"]: r for r in run(records)}
    assert out["b#c1"]["article_id"] == "a" and out["b#c2"]["article_id"] == "a"
    assert out["b#c2"]["parent_id"] == "b#c1"


def test_reply_to_a_dropped_double_post_hangs_under_the_kept_one() -> None:
    text = "I think this report leaves out what happened in the east of the city."
    records = [comment("p#c1", text, position=0), comment("p#c2", text, position=1),
               comment("p#c3", "You are right, and the same happened in the west of the city.", parent="p#c2",
                       position=2)]
    out = {r["id"]: r for r in run(records)}
    assert "p#c2" not in out and out["p#c3"]["parent_id"] == "p#c1"
    marked = {r["id"]: r for r in run(records, mode="mark")}
    assert marked["p#c3"]["parent_id"] == "p#c2"  # mark mode changes nothing


# ---------------------------------------------------------------- repeated lines


def test_repeated_lines_are_removed_as_spans() -> None:
    dek = "Washington can never be trusted, the foreign ministry says."
    widget = "Liked it? Take a second to support us on Patreon!"
    text = "\n".join([dek, "The Duran", WIRE[0], widget, "“Washington can never be trusted,”  the foreign "
                      "ministry says.", WIRE[1], widget, "Share", "Share"])
    cfg = dedup.Config()
    spans = dedup.repeated_line_spans(text, cfg)
    assert [s.reason for s in spans] == ["repeated_line"] * 2
    assert [s.original.strip() for s in spans] == ["“Washington can never be trusted,”  the foreign ministry says.",
                                                   widget]
    out = dedup.process(article("a", text), cfg, dedup.learn([article("a", text)], cfg))
    assert out.records[0]["text"] == apply_spans(text, spans)
    assert out.records[0]["text"].split("\n") == [dek, "The Duran", WIRE[0], widget, WIRE[1], "Share", "Share"]
    assert out.spans == spans  # recorded for the audit


def test_repeated_line_removal_uses_the_cleaned_text_for_duplicates() -> None:
    doubled = "\n".join(WIRE + WIRE[1:3])
    out = {r["id"]: r for r in run([article("a", "\n".join(WIRE)), article("b", doubled)], mode="mark")}
    assert out["b"]["text"] == "\n".join(WIRE)
    assert out["b"]["duplicate_of"] == "a" and out["b"]["dup_similarity"] == 1.0


def test_no_spans_without_repeats() -> None:
    assert dedup.repeated_line_spans("\n".join(WIRE), dedup.Config()) == []
    assert dedup.repeated_line_spans("one line only", dedup.Config()) == []


# ---------------------------------------------------------------- quoted comments

PARENT = ("How can you even joke about it? The US supports terrorism for political purposes. That is a given, "
          "so deal with it.")
QUOTING = ("“The US supports terrorism for political purposes. That is a given, so deal with it.”\n"
           "You completely missed my point, which is: when has Washington not supported terrorism?")


def test_quoted_comment_span_is_marked() -> None:
    records = [comment("p#c1", PARENT, position=0), comment("p#c2", QUOTING, parent="p#c1", position=1)]
    out = {r["id"]: r for r in run(records)}
    [quote] = out["p#c2"]["quotes"]
    assert quote["comment_id"] == "p#c1"
    assert out["p#c2"]["text"][quote["start"]:quote["end"]] == (
        "The US supports terrorism for political purposes. That is a given, so deal with it.")
    assert out["p#c2"]["text"] == QUOTING and out["p#c2"]["duplicate_of"] is None
    assert out["p#c1"]["quotes"] == []


def test_quotes_need_enough_words_same_page_and_an_earlier_comment() -> None:
    short = comment("p#c2", "That is a given, so deal. I disagree with you entirely, and so do most readers.",
                    parent="p#c1", position=1)  # 7 words of the parent in a row
    assert run([comment("p#c1", PARENT), short])[1]["quotes"] == []
    other_page = comment("q#c1", QUOTING, page="q", position=1)
    assert run([comment("p#c1", PARENT), other_page])[1]["quotes"] == []
    # only earlier comments are quoted: the first of two overlapping comments quotes nothing
    later = [comment("p#c2", PARENT, position=1), comment("p#c1", QUOTING, position=0)]
    out = {r["id"]: r for r in run(later)}
    assert out["p#c1"]["quotes"] == [] and [q["comment_id"] for q in out["p#c2"]["quotes"]] == ["p#c1"]


def test_quote_of_two_comments_prefers_the_parent() -> None:
    records = [comment("p#c1", PARENT, position=0), comment("p#c2", PARENT + " Indeed.", position=1),
               comment("p#c3", QUOTING, parent="p#c2", position=2)]
    out = {r["id"]: r for r in run(records, mode="mark")}
    assert [q["comment_id"] for q in out["p#c3"]["quotes"]] == ["p#c2"]


def test_quote_offsets_follow_the_export_paragraphs() -> None:
    from pipeline.stages.export import paragraphs

    text = "  Opening words here.\n\n   “" + PARENT.split("? ")[1] + "”  \nMy answer to that."
    records = [comment("p#c1", PARENT, position=0), comment("p#c2", text, parent="p#c1", position=1)]
    [quote] = {r["id"]: r for r in run(records)}["p#c2"]["quotes"]
    exported = paragraphs(text, "\n\n")
    [moved] = dedup.rebase_quotes(text, [quote], "\n\n")
    assert exported[moved["start"]:moved["end"]] == text[quote["start"]:quote["end"]]
    assert moved["comment_id"] == "p#c1"


def quotes_one_gram_at_a_time(comments: list[dict], cfg: dedup.Config) -> dict[str, list[dict]]:
    """Quote detection written plainly, per page: an index of the grams of earlier comments,
    looked up gram by gram (what `combine` does with a sort over many pages at once)."""
    size, found = cfg.quote_min_words, {}
    pages: dict[str, list[dict]] = {}
    for c in sorted(comments, key=lambda c: (c["position"], dedup._natural(c["id"]))):
        if len(dedup.WORD.findall(c["text"])) >= size:  # shorter ones neither quote nor count as parents
            pages.setdefault(c["page_id"], []).append(c)
    for page in pages.values():
        words = [[hashlib.sha256(w.encode()).digest() for w in dedup.WORD.findall(dedup.normalize(c["text"], False))]
                 for c in page]
        index: dict[tuple[bytes, ...], list[int]] = {}
        for order, comment in enumerate(page):
            chain, parent = [], comment["parent_id"]
            while parent is not None and parent not in chain:
                chain.append(parent)
                parent = next((c["parent_id"] for c in page if c["id"] == parent), None)
            grams = [tuple(words[order][i:i + size]) for i in range(len(words[order]) - size + 1)]
            masks: dict[int, np.ndarray] = {}
            for start, gram in enumerate(grams):
                for source in index.get(gram, []):
                    masks.setdefault(source, np.zeros(len(words[order]), dtype=bool))[start:start + size] = True
            candidates = sorted((-(last - first), chain.index(page[s]["id"]) if page[s]["id"] in chain else len(chain),
                                 s, first, last) for s, mask in masks.items() for first, last in dedup._runs(mask))
            taken, chosen = np.zeros(len(words[order]), dtype=bool), []
            for _, _, source, first, last in candidates:
                if not taken[first:last].any():
                    taken[first:last] = True
                    chosen.append((first, last, source))
            if chosen:
                starts, ends = dedup._word_offsets(dedup._shape(comment["text"]))
                found[comment["id"]] = [{"comment_id": page[s]["id"], "start": int(starts[first]),
                                         "end": int(ends[last - 1])} for first, last, s in sorted(chosen)]
            for gram in set(grams):
                index.setdefault(gram, []).append(order)
    return found


def quoting_pages(rng: random.Random) -> list[dict]:
    """Pages whose comments copy runs of words from earlier comments, from other pages, from
    themselves, or whole comments; page after page."""
    vocabulary = (STORY + " " + OTHER).replace(".", ". ").split()[:60]
    comments: list[dict] = []
    for p in range(12):
        page: list[dict] = []
        for n in range(rng.randint(1, 9)):
            words = [rng.choice(vocabulary) for _ in range(rng.randint(3, 40))]
            if page and rng.random() < 0.6:  # a run of words from an earlier comment, maybe too short
                source = rng.choice(page)["text"].split()
                start, length = rng.randrange(len(source)), rng.randint(5, 14)
                at = rng.randrange(len(words) + 1)
                words[at:at] = source[start:start + length] * rng.choice([1, 1, 2])
            if comments and rng.random() < 0.2:
                words += rng.choice(comments)["text"].split()[:12]  # from another page: never a quote
            parent = rng.choice(page)["id"] if page and rng.random() < 0.5 else None
            page.append(comment(f"p{p}#c{n}", " ".join(words), page=f"p{p}", parent=parent,
                                position=rng.choice([n, n, 0])))  # equal positions: ids break the tie
        comments += page
    # the end of one comment and the start of the next, together in a third: no quote
    joined = ["one two three four five six seven eight", "nine ten eleven twelve thirteen fourteen fifteen sixteen",
              "so: five six seven eight nine ten eleven twelve, said he"]
    comments += [comment(f"j#c{n}", text, page="j", position=n) for n, text in enumerate(joined)]
    return comments


def test_quotes_of_many_pages_match_a_gram_by_gram_search(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dedup, "QUOTE_BATCH_WORDS", 300)  # small batches: pages share a pass and split them
    comments = quoting_pages(random.Random(3))
    cfg = dedup.Config()
    expected = quotes_one_gram_at_a_time(comments, cfg)
    assert "j#c2" not in expected
    assert len(expected) > 10
    assert dedup.learn(comments, cfg)["quotes"] == dict(sorted(expected.items()))


def test_quotes_are_the_same_whatever_order_the_comments_arrive_in(monkeypatch: pytest.MonkeyPatch) -> None:
    # `combine` looks for a page's quotes while summaries arrive, once a comment of another
    # page comes; a page whose comments come in several runs is looked at again at the end.
    monkeypatch.setattr(dedup, "QUOTE_BATCH_WORDS", 300)
    comments = quoting_pages(random.Random(3))
    cfg = dedup.Config()
    expected = dict(sorted(quotes_one_gram_at_a_time(comments, cfg).items()))
    states: list[set[int]] = []  # the states of the pages once all comments have arrived, per run
    quotes = dedup._Records.quotes

    def quotes_noting_states(records: dedup._Records) -> dict[str, list[dict]]:
        states.append(set(records.page_state))
        return quotes(records)

    monkeypatch.setattr(dedup._Records, "quotes", quotes_noting_states)
    # the comments that quote on the page with most of them arrive last, after the other pages
    page = max({c["page_id"] for c in comments}, key=lambda p: sum(c["page_id"] == p for c in comments
                                                                    if c["id"] in expected))
    late = [c for c in comments if c["page_id"] == page and c["id"] in expected]
    orders = [comments, [c for c in comments if c not in late] + late, random.Random(4).sample(comments, len(comments))]
    for order in orders:
        assert dedup.learn(order, cfg)["quotes"] == expected
    assert dedup.PAGE_DONE in states[0] and dedup.PAGE_REOPENED not in states[0]
    assert {dedup.PAGE_DONE, dedup.PAGE_REOPENED} <= states[1]


def test_packed_shapes_hold_two_bits_a_character() -> None:
    rng = random.Random(6)
    for length in list(range(13)) + [rng.randrange(13, 2000) for _ in range(50)]:
        shape = bytes(rng.choice([0, 1, 2]) for _ in range(length))
        padded = shape + bytes(-length % 4)
        plain = bytes(sum(padded[i + k] << 2 * k for k in range(4)) for i in range(0, len(padded), 4))
        assert dedup._pack_shape(shape) == plain
        assert dedup._unpack_shape(plain) == padded


def test_gram_hashes_by_doubling_are_the_polynomial() -> None:
    rng = np.random.default_rng(5)
    for size in range(1, 14):
        for count in [0, 1, size - 1, size, size + 1, 37]:
            tokens = rng.integers(0, 2**64, size=max(count, 0), dtype=np.uint64)
            plain = [sum(int(t) * int(dedup._ROLL) ** (size - 1 - k) for k, t in enumerate(tokens[i:i + size]))
                     % 2**64 for i in range(len(tokens) - size + 1)]
            expected = dedup._mix(np.array(plain, dtype=np.uint64))
            assert dedup._gram_hashes(tokens, size).tolist() == expected.tolist(), (size, count)


# ---------------------------------------------------------------- incremental index


def write_corpus(folder: Path, records: list[dict], cfg: dedup.Config) -> Path:
    """What the export side does: rows to articles.jsonl, and the index beside them."""
    state = dedup.learn(records, cfg)
    rows = [out for r in records for out in dedup.process(r, cfg, state).records]
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "articles.jsonl").open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps({k: v for k, v in row.items() if k != "kind"}, ensure_ascii=False,
                                    separators=(",", ":")) + "\n")
    dedup.save_index(dedup.build_index(rows, cfg), folder / "dedup-index.npz")
    return folder / "dedup-index.npz"


def test_index_round_trip(tmp_path: Path) -> None:
    cfg = dedup.Config()
    rows = [article("wire", "\n".join(WIRE), published="2016-01-13"), article("short", "Too short to hash."),
            article("dup", "\n".join(WIRE), duplicate_of="wire"), {"id": "c", "kind": "comment", "text": STORY}]
    index = dedup.build_index(rows, cfg)
    assert index["ids"] == ["wire", "short"]
    assert index["has_signature"].tolist() == [True, False]
    dedup.save_index(index, tmp_path / "a.npz")
    dedup.save_index(dedup.build_index(rows, cfg), tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    loaded = dedup.load_index(tmp_path / "a.npz")
    assert loaded["ids"] == index["ids"] and loaded["meta"] == index["meta"]
    for name in ("signatures", "has_signature", "text_hash", "n_words", "length"):
        assert np.array_equal(loaded[name], index[name]) and loaded[name].dtype == index[name].dtype
    size = (tmp_path / "a.npz").stat().st_size
    assert size < 2 * (512 + 100) + 2000  # signatures, a few fixed-size fields, the zip and .npy headers
    (tmp_path / "junk.npz").write_bytes(b"not an index")
    with pytest.raises(StageError):
        dedup.load_index(tmp_path / "junk.npz")


def test_new_batch_is_deduplicated_against_an_old_corpus(tmp_path: Path) -> None:
    cfg = dedup.Config(mode="mark")
    index = write_corpus(tmp_path / "v1", [article("old-wire", "\n".join(WIRE), published="2016-01-13"),
                                           article("old-story", STORY)], cfg)
    batch = [article("new-copy", syndicated_copy(), published="2016-01-10"),  # earlier, but the old one is kept
             article("new-exact", STORY.upper()), article("new-event", "\n".join(SAME_EVENT)),
             article("new-copy-2", syndicated_copy().replace("partner site", "sister site"))]
    against = dedup.Config(mode="mark", against=index)
    out = {r["id"]: r for r in run(batch, mode="mark", against=index)}
    assert out["new-copy"]["duplicate_of"] == "old-wire" and out["new-copy"]["dup_cluster"] == "dup-old-wire"
    assert out["new-copy-2"]["duplicate_of"] == "old-wire"
    assert out["new-exact"]["duplicate_of"] == "old-story" and out["new-exact"]["dup_similarity"] == 1.0
    assert out["new-event"]["duplicate_of"] is None
    state = dedup.learn(batch, against)
    assert {c["keep"]: c["previous"] for c in state["clusters"]} == {"old-story": True, "old-wire": True}
    assert "old-wire" not in state["members"]
    dropped = run(batch, mode="drop", against=index)
    assert [r["id"] for r in dropped] == ["new-event"]


def test_old_index_without_texts_needs_high_estimated_jaccard(tmp_path: Path) -> None:
    cfg = dedup.Config(mode="mark")
    index = write_corpus(tmp_path / "v1", [article("old-wire", "\n".join(WIRE)), article("old-story", STORY)], cfg)
    (tmp_path / "v1" / "articles.jsonl").unlink()
    near = "\n".join(WIRE[:4] + [WIRE[4].replace("suffering", "sufferings")])
    out = {r["id"]: r for r in run([article("near", near), article("exact", STORY)], mode="mark", against=index)}
    assert out["exact"]["duplicate_of"] == "old-story"  # the text hash
    assert out["near"]["duplicate_of"] == "old-wire"  # estimated Jaccard >= 0.8
    # containment cannot be estimated from signatures: a copy with a paragraph dropped is not merged
    assert run([article("copy", syndicated_copy())], mode="mark", against=index)[0]["duplicate_of"] is None
    # ... unless it is a copy of a new article that is (the cluster has one kept member: the old one)
    out = {r["id"]: r for r in run([article("near", near), article("copy", syndicated_copy())], mode="mark",
                                   against=index)}
    assert out["copy"]["duplicate_of"] == "old-wire"


def test_index_built_with_other_settings_is_refused(tmp_path: Path) -> None:
    index = write_corpus(tmp_path / "v1", [article("old", "\n".join(WIRE))], dedup.Config(shingle_words=4))
    with pytest.raises(StageError, match="shingle_words"):
        dedup.learn([article("new", STORY)], dedup.Config(against=index))


# ---------------------------------------------------------------- order and the seeds


def corpus() -> list[dict]:
    records = [article("wire", "\n".join(WIRE), published="2016-01-13"),
               article("copy-a", syndicated_copy(), published="2016-01-13"),
               article("copy-b", "\n".join(WIRE[:4]).upper(), role="related"),
               article("event", "\n".join(SAME_EVENT)), article("story", STORY), article("story-2", STORY + " Updated."),
               article("other", OTHER), comment("x#c1", PARENT), comment("x#c2", QUOTING, parent="x#c1", position=1),
               comment("y#c1", PARENT, page="y")]
    return records


def test_clusters_do_not_depend_on_input_order() -> None:
    records = corpus()
    cfg = dedup.Config()
    expected = dedup.learn(records, cfg)
    assert len(expected["clusters"]) == 3 and expected["quotes"]
    for seed in range(5):
        shuffled = list(records)
        random.Random(seed).shuffle(shuffled)
        assert dedup.learn(shuffled, cfg) == expected


# ---------------------------------------------------------------- summaries, for parallel and distributed runs


def band_key_pairs(summaries: list[dict], cfg: dedup.Config) -> list[tuple[str, str]]:
    """What a distributed executor does: group ids by band key, then pair each bucket."""
    buckets: dict[str, list[str]] = {}
    for summary in summaries:
        for key in dedup.band_keys(summary, cfg):
            buckets.setdefault(key, []).append(summary.id)
    return [pair for ids in buckets.values() if len(ids) > 1 for pair in dedup.bucket_pairs(ids)]


def test_summarize_then_combine_is_learn() -> None:
    records = corpus()
    cfg = dedup.Config()
    assert dedup.combine([dedup.summarize(r, cfg) for r in records], cfg) == dedup.learn(records, cfg)


def test_summaries_are_small_picklable_and_hold_no_text() -> None:
    cfg = dedup.Config()
    for record in corpus():
        summary = dedup.summarize(record, cfg)
        assert pickle.loads(pickle.dumps(summary)) == summary
        assert {type(v) for v in summary} <= {str, int, float, bool, bytes, type(None)}
        assert max(len(v) for v in summary if isinstance(v, str)) <= 16  # ids and kinds only
        assert summary.page is None  # the same as article_id: not repeated
    wire = dedup.summarize(article("wire", "\n".join(WIRE)), cfg)
    assert len(wire.signature) == 4 * cfg.num_perm
    assert len(wire.shingles) == 4 * (wire.words - cfg.shingle_words + 1)
    quoting = dedup.summarize(comment("x#c2", QUOTING, parent="x#c1", position=1), cfg)
    assert quoting.signature is None and len(quoting.tokens) == 8 * len(dedup.WORD.findall(QUOTING))
    assert len(quoting.shape) == -(-len(QUOTING) // 4)  # 2 bits a character


def test_combine_does_not_depend_on_summary_order() -> None:
    cfg = dedup.Config()
    summaries = [dedup.summarize(r, cfg) for r in corpus()]
    expected = dedup.combine(summaries, cfg)
    for seed in range(5):
        random.Random(seed).shuffle(summaries)
        assert dedup.combine(summaries, cfg) == expected


def test_combine_with_given_candidate_pairs_equals_combine_without(tmp_path: Path) -> None:
    cfg = dedup.Config()
    records = corpus() + [article("wire-exact", "\n".join(WIRE).upper())]  # pairs name it, not its group's first
    summaries = [dedup.summarize(r, cfg) for r in records]
    pairs = band_key_pairs(summaries, cfg)
    expected = dedup.combine(summaries, cfg)
    assert expected["stats"]["candidate_pairs"] > 0
    assert dedup.combine(summaries, cfg, candidate_pairs=pairs) == expected
    assert dedup.combine(reversed(summaries), cfg, candidate_pairs=[(b, a) for a, b in pairs]) == expected
    # No pairs given: nothing is banded here, so only exact copies are found.
    alone = dedup.combine(summaries, cfg, candidate_pairs=[])
    assert alone["stats"]["candidate_pairs"] == 0
    assert {m.get("reason") for m in alone["members"].values()} == {None, "exact_duplicate"}
    # Against an old index, the batch is still banded against its entries here.
    index = write_corpus(tmp_path / "v1", [article("old-wire", "\n".join(WIRE), published="2016-01-13")], cfg)
    against = dedup.Config(against=index)
    batch = [dedup.summarize(r, against) for r in corpus()]
    expected = dedup.combine(batch, against)
    assert expected["members"]["copy-a"]["duplicate_of"] == "old-wire"
    assert dedup.combine(batch, against, candidate_pairs=band_key_pairs(batch, against)) == expected


def test_given_pairs_of_a_big_bucket_match_the_banding(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every article gets the same signature: one bucket per band, cut to a star and a chain.
    monkeypatch.setattr(dedup, "minhash_signature", lambda seq, num_perm, seed: np.zeros(num_perm, dtype=np.uint32))
    rng = random.Random(0)
    words = STORY.split() + OTHER.split()
    records = [article(f"a{n}", " ".join(rng.choice(words) for _ in range(60))) for n in range(dedup.MAX_BUCKET_PAIRS + 8)]
    records += [article("a3-copy", records[3]["text"] + " Updated.")]  # next to a3 in the chain
    cfg = dedup.Config()
    summaries = [dedup.summarize(r, cfg) for r in records]
    expected = dedup.combine(summaries, cfg)
    assert expected["stats"]["candidate_pairs"] == 2 * len(records) - 3
    assert expected["members"]["a3"]["duplicate_of"] == "a3-copy"  # the longer one is kept
    assert dedup.combine(summaries, cfg, candidate_pairs=band_key_pairs(summaries, cfg)) == expected


def test_index_of_the_previous_format_is_refused(tmp_path: Path) -> None:
    index = dedup.build_index([article("old", "\n".join(WIRE))], dedup.Config())
    index["meta"]["format"] = "news-corpus-pipeline/dedup-index/1"
    dedup.save_index(index, tmp_path / "old.npz")
    with pytest.raises(StageError, match="rebuild"):
        dedup.load_index(tmp_path / "old.npz")


def test_seed_pages_no_false_duplicates_and_the_quote_is_marked(tmp_path: Path) -> None:
    from pipeline.config import load_config
    from pipeline.runner import run as run_pipeline

    repo = Path(__file__).resolve().parents[2]
    run_pipeline(load_config(repo / "configs" / "default.yaml"), repo / "seeds", tmp_path / "out",
                 until="dedup", progress=False)
    folder = tmp_path / "out" / "stages" / "06-dedup"
    state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    assert state["clusters"] == []
    rows = {r["id"]: r for r in map(json.loads, (folder / "records.jsonl").read_text(encoding="utf-8").splitlines())}
    [reply] = [r for r in rows.values() if "You COMPLETELY missed my point" in r["text"]]
    [quote] = reply["quotes"]
    quoted = rows[quote["comment_id"]]
    assert quoted["id"] == reply["parent_id"] and quoted["text"].startswith("How can you even joke about it")
    assert reply["text"][quote["start"]:quote["end"]].startswith("The US supports terrorism")
    assert reply["text"][quote["start"]:quote["end"]].endswith("destructive your nation has become!")
