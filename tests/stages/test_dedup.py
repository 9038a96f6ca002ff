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


def article(doc_id: str, text: str, **fields: object) -> dict:
    return {"id": doc_id, "kind": "article", "role": "main", "text": text, **fields}


def run(records: list[dict], **config: object) -> list[dict]:
    cfg = dedup.Config(**config)
    state = dedup.learn(records, cfg)
    out = []
    for record in records:
        out.extend(dedup.process(record, cfg, state).records)
    return out


def test_normalize_folds_case_space_quotes_dashes() -> None:
    assert dedup.normalize("It’s  “Big” – OK", False) == dedup.normalize("it's \"big\" - ok", False)
    assert dedup.normalize("10,645 Views", True) == dedup.normalize("20,001 views", True)
    assert dedup.normalize("10,645 Views", False) != dedup.normalize("20,001 views", False)


def test_exact_copy_is_dropped_and_clustered() -> None:
    out = run([article("b", STORY.upper()), article("a", STORY), article("c", OTHER)])
    assert [r["id"] for r in out] == ["a", "c"]
    assert out[0]["dup_cluster"] == "dup-a"
    assert out[1]["dup_cluster"] == "dup-c"


def test_near_copy_is_verified_and_marked() -> None:
    # A lightly edited, shorter copy: the longer original is kept.
    edited = STORY.replace("Monday", "Tuesday").replace(" to complete.", ".")
    out = run([article("a", STORY), article("b", edited), article("c", OTHER)], mode="mark")
    by_id = {r["id"]: r for r in out}
    assert by_id["b"]["duplicate_of"] == "a"
    assert 0.8 <= by_id["b"]["dup_similarity"] < 1.0
    assert by_id["a"]["duplicate_of"] is None
    assert by_id["c"]["duplicate_of"] is None


def test_distinct_articles_on_one_event_are_not_merged() -> None:
    half = STORY[: len(STORY) // 2] + " " + OTHER
    out = run([article("a", STORY), article("b", half)])
    assert [r["duplicate_of"] for r in out] == [None, None]


def test_keep_policy_earliest_then_main_then_longest_then_id() -> None:
    early = article("z", STORY, published="2016-12-01")
    late = article("a", STORY, published="2016-12-05")
    assert [r["id"] for r in run([late, early])] == ["z"]
    related = article("a", STORY, role="related")
    main = article("b", STORY)
    assert [r["id"] for r in run([related, main])] == ["b"]
    assert [r["id"] for r in run([article("b", STORY), article("a", STORY)])] == ["a"]


def test_comments_of_a_dropped_copy_follow_the_kept_article() -> None:
    comment = {"id": "b#c1", "kind": "comment", "article_id": "b",
               "text": "I think this report leaves out what happened in the east of the city."}
    out = run([article("a", STORY), article("b", STORY), comment])
    assert out[-1]["article_id"] == "a"


def test_short_comments_are_never_deduplicated() -> None:
    thanks = [{"id": f"p{i}#c1", "kind": "comment", "article_id": f"p{i}", "text": "Thanks!"} for i in range(2)]
    assert len(run(thanks)) == 2


def test_clusters_do_not_depend_on_input_order() -> None:
    records = [article("a", STORY), article("b", STORY + " Updated."), article("c", OTHER)]
    cfg = dedup.Config()
    assert dedup.learn(records, cfg) == dedup.learn(list(reversed(records)), cfg)
