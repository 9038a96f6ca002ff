"""Dedup: one copy of each article and comment, and a record of the copies.

A corpus stage. `learn` finds clusters: exact copies after normalisation, and
near-duplicate articles by MinHash LSH (datasketch) whose candidates are then
verified by their real shingle Jaccard similarity, so a hash collision alone
never merges two articles. The keep policy picks one record per cluster.
`process` marks or drops the other members.

Trade-off of the LSH settings: with b bands of r rows, a pair of Jaccard
similarity s becomes a candidate with probability 1 - (1 - s^r)^b. The defaults
(num_perm 128, threshold 0.7) let datasketch choose b and r to balance false
positives and negatives around 0.7; false positives cost only a verification,
false negatives are copies kept twice, so the LSH threshold sits below the
verification threshold.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from typing import Any, Literal

from datasketch import MinHash, MinHashLSH

from pipeline.stage import Outcome, Record, StageConfig

NAME = "dedup"
REASONS = frozenset(
    {
        "exact_duplicate",  # same text after normalisation as the kept record
        "near_duplicate",  # shingle Jaccard similarity >= near_threshold with the kept record
    }
)

QUOTES = str.maketrans({"‘": "'", "’": "'", "‚": "'", "‛": "'", "“": '"', "”": '"', "„": '"',
                        "«": '"', "»": '"', "–": "-", "—": "-", "‒": "-", "―": "-", "−": "-"})
WORD = re.compile(r"\w+")
DIGITS = re.compile(r"\d")


class Config(StageConfig):
    mode: Literal["drop", "mark"] = "drop"  # drop the copies, or keep them marked with duplicate_of
    fold_digits: bool = False  # treat all digits as equal when comparing (view counts, dates)
    shingle_words: int = 5  # word n-grams; 5 is the usual choice for news near-duplicates
    num_perm: int = 128  # MinHash permutations: more = sharper LSH, more memory per document
    lsh_threshold: float = 0.5  # candidate threshold for LSH banding; below near_threshold on purpose
    near_threshold: float = 0.8  # verified Jaccard similarity that makes two articles copies
    min_words: int = 30  # shorter articles are only deduplicated exactly
    comment_min_words: int = 8  # shorter comments ("Thanks!") are never deduplicated
    seed: int = 1  # MinHash seed: fixed, so clusters are the same on every run


def normalize(text: str, fold_digits: bool) -> str:
    """Case, whitespace, quotes and dashes folded; what makes two copies 'the same'."""
    text = unicodedata.normalize("NFKC", text).translate(QUOTES).casefold()
    if fold_digits:
        text = DIGITS.sub("0", text)
    return " ".join(text.split())


def shingles(text: str, size: int) -> set[str]:
    words = WORD.findall(text)
    if len(words) < size:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i:i + size]) for i in range(len(words) - size + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def keep_key(record: Record) -> tuple[Any, ...]:
    """Default keep policy: earliest published, main over related, longest, smallest id."""
    published = record.get("published") or "9999"
    role_rank = 0 if record.get("role", "main") == "main" else 1
    return (published, role_rank, -len(record.get("text", "")), record["id"])


def learn(records: Iterable[Record], config: Config) -> dict[str, Any]:
    """Cluster the corpus: {"clusters": [kept id and copies], "members": {id: its cluster}}."""
    summaries: dict[str, dict[str, Any]] = {}
    by_hash: dict[tuple[str, str], list[str]] = {}
    signatures: dict[str, tuple[MinHash, set[str]]] = {}
    for record in records:
        kind = record.get("kind", "article")
        norm = normalize(record.get("text", ""), config.fold_digits)
        words = len(norm.split())
        summaries[record["id"]] = {"id": record["id"], "kind": kind, "role": record.get("role"),
                                   "published": record.get("published"), "text": norm}
        if kind == "comment" and words < config.comment_min_words or not norm:
            continue
        by_hash.setdefault((kind, hashlib.sha256(norm.encode()).hexdigest()), []).append(record["id"])
        if kind == "article" and words >= config.min_words:
            grams = shingles(norm, config.shingle_words)
            minhash = MinHash(num_perm=config.num_perm, seed=config.seed)
            for gram in sorted(grams):
                minhash.update(gram.encode("utf-8"))
            signatures[record["id"]] = (minhash, grams)

    parent: dict[str, str] = {}
    similarity: dict[tuple[str, str], tuple[float, str]] = {}

    def find(node: str) -> str:
        while parent.get(node, node) != node:
            node = parent[node]
        return node

    def union(a: str, b: str, score: float, reason: str) -> None:
        similarity[(min(a, b), max(a, b))] = (score, reason)
        root_a, root_b = find(a), find(b)
        if root_a != root_b:
            parent[max(root_a, root_b)] = min(root_a, root_b)

    for ids in by_hash.values():
        for other in ids[1:]:
            union(ids[0], other, 1.0, "exact_duplicate")

    lsh = MinHashLSH(threshold=config.lsh_threshold, num_perm=config.num_perm)
    for doc_id in sorted(signatures):
        minhash, grams = signatures[doc_id]
        for candidate in sorted(lsh.query(minhash)):
            score = jaccard(grams, signatures[candidate][1])
            if score >= config.near_threshold and find(candidate) != find(doc_id):
                union(candidate, doc_id, round(score, 4), "near_duplicate")
        lsh.insert(doc_id, minhash)

    groups: dict[str, list[str]] = {}
    for doc_id in parent:
        groups.setdefault(find(doc_id), []).append(doc_id)
    clusters = []
    for members in groups.values():
        members = sorted(set(members) | {find(members[0])})
        keep = min(members, key=lambda m: keep_key(summaries[m]))
        copies = []
        for member in members:
            if member == keep:
                continue
            pair = (min(member, keep), max(member, keep))
            score, reason = similarity.get(pair) or _score(summaries, member, keep, config)
            copies.append({"id": member, "similarity": score, "reason": reason})
        clusters.append({"cluster": f"dup-{keep}", "keep": keep, "copies": copies})
    clusters.sort(key=lambda c: c["keep"])
    members: dict[str, dict[str, Any]] = {}
    for cluster in clusters:
        members[cluster["keep"]] = {"cluster": cluster["cluster"]}
        for copy in cluster["copies"]:
            members[copy["id"]] = {"cluster": cluster["cluster"], "duplicate_of": cluster["keep"],
                                   "similarity": copy["similarity"], "reason": copy["reason"]}
    return {"clusters": clusters, "members": dict(sorted(members.items()))}


def _score(summaries: dict[str, dict[str, Any]], a: str, b: str, config: Config) -> tuple[float, str]:
    """Similarity of two members joined through a third (transitive in the cluster)."""
    text_a, text_b = summaries[a]["text"], summaries[b]["text"]
    if text_a == text_b:
        return 1.0, "exact_duplicate"
    score = jaccard(shingles(text_a, config.shingle_words), shingles(text_b, config.shingle_words))
    return round(score, 4), "near_duplicate"


def process(record: Record, config: Config, state: dict[str, Any]) -> Outcome:
    member = state["members"].get(record["id"])
    out = dict(record)
    out["dup_cluster"] = member["cluster"] if member else f"dup-{record['id']}"
    out["duplicate_of"] = member.get("duplicate_of") if member else None
    out["dup_similarity"] = member.get("similarity") if member else None
    if out["duplicate_of"] and config.mode == "drop":
        return Outcome(records=[], drop_reason=member["reason"],
                       notes={"duplicate_of": out["duplicate_of"]})
    if config.mode == "drop" and record.get("kind") == "comment":
        # The comments of a dropped copy follow the kept article; `page_id` still says where they were.
        article = state["members"].get(record.get("article_id", ""))
        if article and article.get("duplicate_of"):
            out["article_id"] = article["duplicate_of"]
    return Outcome(records=[out])
