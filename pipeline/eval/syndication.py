"""Syndication benchmark for the dedup stage, generated from real article text (FA-KES).

FA-KES (Salem et al. 2019, CC-BY-4.0) holds 804 news articles on the war in Syria
(726 rows in the copy at /work/shared/devsets/fa-kes/FA-KES.csv), many about the
same events. It is read at run time; nothing of it is stored in the repository.

What is generated, deterministically from `--seed`:

* **Sources.** Each FA-KES article becomes a source: its sentences grouped 1-3
  to a paragraph (one line each). Articles with fewer than 4 paragraphs or 120
  words are left out, and so is any article of which >= 50% of the words lie in
  5-word shingles shared with an earlier article, or the other way round
  (FA-KES holds wire copies and long and short versions of one story), so the
  remaining sources are distinct articles. `--n` sources are drawn from them.
* **Copies.** Each source is published once by its own site and republished on
  2-4 synthetic sites, each with its template: a new headline (title field, and
  on some sites as the first line), an added intro or dateline line and/or an
  outro line (copyright, "follow us", credits, a "Read more" link), one or two
  paragraphs dropped, curly or straight quotes, dash style, extra spaces, a
  paragraph split in two lines or two merged into one, and 0-4 typos. Copies are
  published 0-3 days later, some undated, some as a `related` feed item.
* **Hard negatives.** Distinct articles about the same event (same FA-KES date
  and location: many), and pairs of distinct articles made to share one
  paragraph (up to `--share-rate` of the sources, 0.3 by default, get one
  paragraph of another source, preferably one on the same event; a source is
  in one such pair at most).

Ground truth and metrics. Two records of the same source share the words of
the source paragraphs both contain; their share is shared / max(words of either
record). Pairs with share >= 0.8 are the copies to find. Pairwise precision and
recall are over the pairs of records placed in one cluster: a merged pair of
one source with share >= 0.8 is a true positive, of two sources a false
positive (a merge of distinct articles), of one source with share < 0.8
neither (both answers are defensible; counted separately).

    python -m pipeline.eval.syndication [--fakes PATH] [--n 300] [--seed 0] [--runs 3]
    python -m pipeline.eval.syndication --scale 100000 [--runs 3]

`--scale N` generates N pages: the FA-KES sources plus synthetic sources of
4-7 paragraphs of random FA-KES sentences with a quarter of their words
replaced (sentences found in two articles, i.e. site template text, left
out), each with its copies as above. Generation runs in one spawned process
and each dedup run in another, so the reported peak RSS (getrusage, checked
against /proc VmHWM) is the stage's own plus the interpreter's; times are
medians over `--runs`, CPU time of the process (time.process_time: what a shared
machine does not inflate) and wall-clock. Small runs also report the verification margins and
an incremental run (originals and first copies indexed with `build_index`,
the other copies deduplicated `against` that index only).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import multiprocessing
import random
import re
import resource
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from queue import Empty
from typing import Any

DEFAULT_FAKES = Path("/work/shared/devsets/fa-kes/FA-KES.csv")
GOLD_SHARE = 0.8  # copies sharing at least this much of their text must be found
POOL_MAX_OVERLAP = 0.5  # FA-KES articles sharing this share of one's words are versions of one story
MIN_PARAGRAPHS = 4
MIN_WORDS = 120
WORD = re.compile(r"\w+")
SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[\"“A-Z0-9])")
# FA-KES was saved through a legacy code page: these byte pairs stand for quotes and symbols.
MOJIBAKE = (("\x95_", "'"), ("\x95\x81", ""), ("\x95\xb5", ""), ("\x95", ""))


@dataclass(frozen=True)
class Source:
    """One distinct article: the text every copy derives from."""

    key: str
    title: str
    paragraphs: tuple[str, ...]
    published: dt.date
    event: str  # FA-KES date and location: articles on one event share it
    origin: str  # the FA-KES source site


@dataclass(frozen=True)
class Truth:
    """What a generated record is made of."""

    source: str
    paragraphs: frozenset[int]  # indices of the source paragraphs it contains
    words: int  # words of its text, added lines included
    site: str


@dataclass(frozen=True)
class Site:
    name: str
    slug: str
    intro: str | None  # template of an added first line; "{dateline}" prefixes the first paragraph
    outro: str | None
    headline: str  # how the site rewrites the headline
    curly: bool  # curly quotes instead of straight ones
    dash: str  # what " - " becomes
    dated: bool = True
    related: float = 0.0  # share of its copies published as a related-article feed item
    headline_in_text: bool = False


SITES = (
    Site("Levant Wire", "levantwire", "{dateline}", "Follow Levant Wire on Twitter and Facebook for the latest news "
         "from the region.", "site_suffix", True, " – "),
    Site("Middle East Monitor Daily", "memdaily", "This article originally appeared on {origin} and is republished "
         "with permission.", None, "breaking", True, " — "),
    Site("The Syria Observer Digest", "syriadigest", None, "Copyright {year} The Syria Observer Digest. All rights "
         "reserved. This material may not be published, broadcast, rewritten or redistributed.", "upper",
         False, " - ", dated=False),
    Site("Global News Network", "gnn", "Editor's note: this story has been updated with the latest figures.",
         "Reporting by {reporter}; editing by {editor}.", "lead", True, " -- ", related=0.2),
    Site("Arab Affairs Today", "arabaffairs", "{dateline}", "Read more: {other}", "prefix", False, " – ",
         headline_in_text=True),
    Site("Frontline Report", "frontline", None, "Share this article with your friends. Comments are moderated.",
         "site_suffix", True, " - "),
    Site("Damascus Daily News", "damascusdaily", "{dateline}", None, "shorten", False, " — ", dated=False),
    Site("World Crisis Journal", "crisisjournal", "Originally published by {origin}.", "This article was "
         "republished from {origin} under a content-sharing agreement.", "breaking", True, " – ", related=0.3),
    Site("Near East Post", "neareast", None, None, "upper", False, " - ", headline_in_text=True),
    Site("Independent Voices", "indievoices", "The views expressed are the author's own.", "Support independent "
         "journalism: subscribe to our newsletter.", "prefix", True, " — "),
)
REPORTERS = ("Laila Bassam", "Tom Perry", "Suleiman Al-Khalidi", "Ellen Francis", "Dahlia Nehme",
             "John Davison", "Angus McDowall", "Kinda Makieh")


# --------------------------------------------------------------------------- sources


def read_fakes(path: Path) -> list[dict[str, str]]:
    """FA-KES rows with the code-page debris replaced and spaces collapsed."""
    raw = path.read_bytes().decode("latin-1")
    for bad, good in MOJIBAKE:
        raw = raw.replace(bad, good)
    rows = []
    for row in csv.DictReader(io.StringIO(raw)):
        rows.append({key: " ".join((value or "").split()) for key, value in row.items()})
    return rows


def split_paragraphs(text: str, rng: random.Random) -> list[str]:
    """Sentences grouped 1-3 to a paragraph; a paragraph has at least 12 words."""
    sentences = [s.strip() for s in SENTENCE.split(text) if s.strip()]
    paragraphs: list[str] = []
    current: list[str] = []
    target = rng.randint(1, 3)
    for sentence in sentences:
        current.append(sentence)
        if len(current) >= target and len(WORD.findall(" ".join(current))) >= 12:
            paragraphs.append(" ".join(current))
            current, target = [], rng.randint(1, 3)
    if current:
        if paragraphs and len(WORD.findall(" ".join(current))) < 12:
            paragraphs[-1] += " " + " ".join(current)
        else:
            paragraphs.append(" ".join(current))
    return paragraphs


def _shingles(text: str) -> list[tuple[str, ...]]:
    words = WORD.findall(text.lower())
    return [tuple(words[i:i + 5]) for i in range(len(words) - 4)]


def _covered(grams: list[tuple[str, ...]], other: set[tuple[str, ...]]) -> float:
    """Share of the words of a text inside a 5-word shingle that the other text has too."""
    covered: set[int] = set()
    for start, gram in enumerate(grams):
        if gram in other:
            covered.update(range(start, start + 5))
    return len(covered) / (len(grams) + 4) if grams else 0.0


def _date(value: str) -> dt.date:
    try:
        month, day, year = (int(part) for part in value.split("/"))
        return dt.date(year, month, day)
    except ValueError:
        return dt.date(2016, 1, 1)


def source_pool(rows: Sequence[dict[str, str]], seed: int) -> tuple[list[Source], dict[str, int]]:
    """Distinct, long enough FA-KES articles as sources, in unit_id order."""
    kept: list[Source] = []
    kept_shingles: list[tuple[list[tuple[str, ...]], set[tuple[str, ...]]]] = []
    counts: Counter[str] = Counter(rows=len(rows))
    for row in sorted(rows, key=lambda r: r["unit_id"]):
        rng = random.Random(f"paragraphs:{seed}:{row['unit_id']}")
        paragraphs = split_paragraphs(row["article_content"], rng)
        words = len(WORD.findall(row["article_content"]))
        if len(paragraphs) < MIN_PARAGRAPHS or words < MIN_WORDS:
            counts["too_short"] += 1
            continue
        grams = _shingles(row["article_content"])
        unique = set(grams)
        # A shared shingle covers at most 5 words: fewer shared shingles than a tenth of the
        # shorter text's words cannot reach the limit (a prefilter; repeated shingles aside).
        if any(5 * len(unique & other) >= POOL_MAX_OVERLAP * (min(len(grams), len(seq)) + 4)
               and max(_covered(grams, other), _covered(seq, unique)) >= POOL_MAX_OVERLAP
               for seq, other in kept_shingles):
            counts["copy_of_earlier_row"] += 1
            continue
        kept_shingles.append((grams, unique))
        kept.append(Source(f"fakes-{row['unit_id']}", row["article_title"], tuple(paragraphs),
                           _date(row["date"]), f"{row['date']}|{row['location']}", row["source"]))
    counts["pool"] = len(kept)
    return kept, dict(counts)


def mixed_sources(pool: Sequence[Source], count: int, seed: int) -> list[Source]:
    """Synthetic distinct articles for the scale run: 4-7 paragraphs of 1-3 random FA-KES
    sentences, a quarter of their words replaced by random words of the corpus."""
    seen: Counter[str] = Counter(s for src in pool for s in {s for p in src.paragraphs for s in SENTENCE.split(p)})
    # A sentence found in two articles is site template text ("Source TRTWorld and agencies
    # Related News ..."), which the boilerplate stage removes before dedup: left out here.
    sentences = sorted(s for s, count in seen.items() if count == 1 and 6 <= len(WORD.findall(s)) <= 60)
    locations = sorted({src.event.split("|")[1] for src in pool})
    vocabulary = sorted({w for s in sentences for w in WORD.findall(s) if len(w) >= 4 and w.isalpha()})

    def reword(sentence: str, rng: random.Random) -> str:
        # ~10k sentences serve ~300k draws: without this, two synthetic articles would share
        # whole sentences by chance far more often than distinct articles do.
        return re.sub(r"[A-Za-z]{4,}", lambda m: rng.choice(vocabulary) if rng.random() < 0.25 else m.group(),
                      sentence)

    out = []
    for number in range(count):
        rng = random.Random(f"mix:{seed}:{number}")
        paragraphs = tuple(" ".join(reword(s, rng) for s in rng.sample(sentences, rng.randint(1, 3)))
                           for _ in range(rng.randint(4, 7)))
        title = " ".join(WORD.findall(paragraphs[0])[:8]).capitalize()
        day = dt.date(2012, 1, 1) + dt.timedelta(days=rng.randrange(2200))
        out.append(Source(f"mix-{number:06d}", title, paragraphs, day,
                          f"{day.month}/{day.day}/{day.year}|{rng.choice(locations)}", "synthetic"))
    return out


# --------------------------------------------------------------------------- copies


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(4)
    if kind == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if kind == 1:
        return word[:i] + word[i + 1:]
    if kind == 2:
        return word[:i] + word[i] + word[i:]
    return word[:i] + rng.choice("aeiourstln") + word[i + 1:]


def add_typos(lines: list[str], count: int, rng: random.Random) -> list[str]:
    """`count` typos in random words of 4+ letters (swap, drop, double or replace a letter)."""
    lines = list(lines)
    for _ in range(count):
        spots = [(n, m) for n, line in enumerate(lines) for m in re.finditer(r"[A-Za-z]{4,}", line)]
        if not spots:
            break
        n, match = rng.choice(spots)
        line = lines[n]
        lines[n] = line[:match.start()] + _typo(match.group(), rng) + line[match.end():]
    return lines


def _curly(text: str) -> str:
    out, opening = [], True
    for char in text:
        if char == '"':
            out.append("“" if opening else "”")
            opening = not opening
        elif char == "'":
            out.append("’")
        else:
            out.append(char)
    return "".join(out)


def _headline(title: str, site: Site, lead: str, rng: random.Random) -> str:
    if site.headline == "site_suffix":
        return f"{title} | {site.name}"
    if site.headline == "breaking":
        return f"BREAKING: {title}"
    if site.headline == "upper":
        return title.upper()
    if site.headline == "lead":
        return " ".join(lead.split()[:10]).rstrip(",.;:") + "..."
    if site.headline == "prefix":
        return f"Syria: {title}"
    words = title.split()
    return " ".join(words[: max(4, len(words) - 3)])


def _record(source: Source, site: Site, lines: list[str], title: str, published: str | None,
            role: str, seed: int) -> dict[str, Any]:
    digest = random.Random(f"id:{seed}:{source.key}:{site.slug}").getrandbits(48)
    return {"id": f"{site.slug}-{digest:012x}", "kind": "article", "role": role, "title": title,
            "published": published, "site": site.name, "text": "\n".join(lines)}


def copies_of(source: Source, sites: Sequence[Site], others: Sequence[Source], seed: int,
              copies: int | None = None) -> list[tuple[dict[str, Any], Truth]]:
    """The original and 2-4 republished copies of one source, with their truth."""
    rng = random.Random(f"copies:{seed}:{source.key}")
    origin = Site(source.origin, f"orig-{source.origin}", None, None, "same", False, " - ")
    out = []
    lines = list(source.paragraphs)
    original = _record(source, origin, lines, source.title, source.published.isoformat(), "main", seed)
    out.append((original, Truth(source.key, frozenset(range(len(lines))), len(WORD.findall(original["text"])),
                                origin.slug)))
    count = copies if copies is not None else rng.randint(2, 4)
    for site in rng.sample(list(sites), min(count, len(sites))):
        kept = list(range(len(source.paragraphs)))
        if rng.random() < 0.45 and len(kept) > 3:
            drop = 1 if rng.random() < 0.7 or len(kept) < 6 else 2
            if rng.random() < 0.5:
                kept = kept[:-drop]  # cut at the end
            else:
                for index in rng.sample(kept[1:], drop):
                    kept.remove(index)
        lines = [source.paragraphs[i] for i in kept]
        if rng.random() < 0.5:  # whitespace: a paragraph split in two lines, or two merged
            at = rng.randrange(len(lines))
            parts = SENTENCE.split(lines[at])
            if len(parts) > 1 and rng.random() < 0.5:
                cut = rng.randrange(1, len(parts))
                lines[at:at + 1] = [" ".join(parts[:cut]), " ".join(parts[cut:])]
            elif at + 1 < len(lines):
                lines[at:at + 2] = [lines[at] + "  " + lines[at + 1]]
        if rng.random() < 0.5:
            lines = [line.replace(". ", ".  ") + " " for line in lines]
        lines = add_typos(lines, rng.randint(0, 4), rng)
        lines = [line.replace(" - ", site.dash) for line in lines]
        if site.curly:
            lines = [_curly(line) for line in lines]
        fill = {"origin": source.origin, "year": source.published.year, "reporter": rng.choice(REPORTERS),
                "editor": rng.choice(REPORTERS), "other": rng.choice(others).title if others else source.title}
        if site.intro and rng.random() < 0.6:
            if site.intro == "{dateline}":
                city = source.event.split("|")[1].upper() or "DAMASCUS"
                lines[0] = f"{city} ({site.name}) — {lines[0]}"
            else:
                lines.insert(0, site.intro.format(**fill))
        if site.outro and rng.random() < 0.6:
            lines.append(site.outro.format(**fill))
        title = _headline(source.title, site, source.paragraphs[0], rng)
        if site.headline_in_text:
            lines.insert(0, title)
        published = None
        if site.dated:
            published = (source.published + dt.timedelta(days=rng.randint(0, 3))).isoformat()
        role = "related" if rng.random() < site.related else "main"
        record = _record(source, site, lines, title, published, role, seed)
        out.append((record, Truth(source.key, frozenset(kept), len(WORD.findall(record["text"])), site.slug)))
    return out


def share_paragraphs(sources: list[Source], rate: float, seed: int) -> tuple[list[Source], list[tuple[str, str]]]:
    """Give up to `rate` of the sources one paragraph of another source (same event when possible);
    a source takes part in one such pair at most."""
    rng = random.Random(f"share:{seed}")
    by_event: dict[str, list[int]] = {}
    for i, src in enumerate(sources):
        by_event.setdefault(src.event, []).append(i)
    out = list(sources)
    pairs = []
    used: set[int] = set()  # a source shares one paragraph at most, as giver or as taker
    for taker in rng.sample(range(len(sources)), int(rate * len(sources))):
        if taker in used:
            continue
        same = [i for i in by_event[sources[taker].event] if i not in used and i != taker]
        giver = rng.choice(same) if same else rng.randrange(len(sources))
        if giver in used or giver == taker:
            continue
        used.update((giver, taker))
        paragraph = rng.choice(sources[giver].paragraphs[1:])
        paragraphs = list(out[taker].paragraphs)
        paragraphs.insert(rng.randint(1, len(paragraphs)), paragraph)
        out[taker] = Source(out[taker].key, out[taker].title, tuple(paragraphs), out[taker].published,
                            out[taker].event, out[taker].origin)
        pairs.append((sources[giver].key, sources[taker].key))
    return out, pairs


def generate(fakes: Path, n: int, seed: int, share_rate: float = 0.3,
             scale: int | None = None) -> tuple[list[dict[str, Any]], dict[str, Truth], dict[str, Any]]:
    """Records (dedup input shape), truth per record id, and facts about the benchmark."""
    pool, counts = source_pool(read_fakes(fakes), seed)
    if scale is None:
        if n > len(pool):
            raise SystemExit(f"--n {n}: only {len(pool)} distinct FA-KES articles qualify")
        chosen = sorted(random.Random(f"choose:{seed}").sample(pool, n), key=lambda s: s.key)
    else:
        chosen = list(pool) + mixed_sources(pool, max(0, scale // 4 - len(pool) + 10), seed)
    chosen, shared = share_paragraphs(chosen, share_rate, seed)
    records: list[dict[str, Any]] = []
    truth: dict[str, Truth] = {}
    for src in chosen:
        for record, fact in copies_of(src, SITES, chosen, seed):
            if scale is not None and len(records) >= scale:
                break
            records.append(record)
            truth[record["id"]] = fact
    used = {t.source for t in truth.values()}
    facts = {"fakes": counts, "sources": len(used), "records": len(records),
             "words": {s.key: [len(WORD.findall(p)) for p in s.paragraphs] for s in chosen if s.key in used},
             "events": {s.key: s.event for s in chosen if s.key in used},
             "shared": [(g, t) for g, t in shared if g in used and t in used]}
    return records, truth, facts


# --------------------------------------------------------------------------- metrics


def pair_share(a: Truth, b: Truth, words: dict[str, Sequence[int]]) -> float:
    """Words of the source paragraphs both records contain, over the larger record."""
    shared = sum(words[a.source][i] for i in a.paragraphs & b.paragraphs)
    return shared / max(a.words, b.words)


def margins(records: Sequence[dict[str, Any]], truth: dict[str, Truth], facts: dict[str, Any],
            overrides: dict[str, Any]) -> dict[str, Any]:
    """The stage's verification measures on every gold pair and on every record pair of two
    distinct sources on one event or sharing a paragraph: how far apart the two sides are."""
    from pipeline.stages import dedup

    config = dedup.Config(**overrides)
    text = {r["id"]: r["text"] for r in records}
    words = facts["words"]
    by_source: dict[str, list[str]] = {}
    for record_id, fact in truth.items():
        by_source.setdefault(fact.source, []).append(record_id)
    gold = [dedup.similarity(text[a], text[b], config) for ids in by_source.values()
            for a, b in combinations(sorted(ids), 2) if pair_share(truth[a], truth[b], words) >= GOLD_SHARE]
    events = facts["events"]
    hard = {(a, b) for a, b in combinations(sorted(by_source), 2) if events[a] == events[b]}
    hard |= {tuple(sorted(pair)) for pair in facts["shared"]}
    negative = [dedup.similarity(text[i], text[j], config) for a, b in sorted(hard)
                for i in by_source[a] for j in by_source[b]]

    def quantile(values: list[float], q: float) -> float:
        return sorted(values)[min(len(values) - 1, int(q * len(values)))] if values else float("nan")

    return {
        "gold_pairs": len(gold),
        "gold_containment_min": min(s.containment for s in gold),
        "gold_containment_p01": quantile([s.containment for s in gold], 0.01),
        "gold_jaccard_min": min(s.jaccard for s in gold),
        "gold_jaccard_p05": quantile([s.jaccard for s in gold], 0.05),
        "gold_size_ratio_min": min(s.size_ratio for s in gold),
        "gold_candidate_probability_min": dedup.candidate_probability(min(s.jaccard for s in gold),
                                                                      *dedup.lsh_params(config)),
        "hard_negative_pairs": len(negative),
        "negative_containment_max": max(s.containment for s in negative),
        "negative_containment_p99": quantile([s.containment for s in negative], 0.99),
        "negative_jaccard_max": max(s.jaccard for s in negative),
    }


def evaluate(truth: dict[str, Truth], cluster_of: dict[str, str], facts: dict[str, Any]) -> dict[str, Any]:
    """Pairwise precision/recall of the clusters against the generated truth."""
    words = facts["words"]
    by_source: dict[str, list[str]] = {}
    for record_id, fact in truth.items():
        by_source.setdefault(fact.source, []).append(record_id)
    positives = set()
    partial = set()
    shares = []
    for ids in by_source.values():
        for a, b in combinations(sorted(ids), 2):
            share = pair_share(truth[a], truth[b], words)
            shares.append(share)
            (positives if share >= GOLD_SHARE else partial).add((a, b))
    clusters: dict[str, list[str]] = {}
    for record_id, cluster in cluster_of.items():
        clusters.setdefault(cluster, []).append(record_id)
    tp = fp = merged_partial = 0
    bad_clusters = 0
    wrong: list[tuple[str, str]] = []
    for ids in clusters.values():
        if len({truth[i].source for i in ids}) > 1:
            bad_clusters += 1
        for a, b in combinations(sorted(ids), 2):
            if truth[a].source != truth[b].source:
                fp += 1
                wrong.append((a, b))
            elif (a, b) in positives:
                tp += 1
            else:
                merged_partial += 1
    events = facts["events"]
    same_event = sum(1 for a, b in combinations(sorted(by_source), 2) if events[a] == events[b])
    present = facts["shared"]
    shared_merged = sum(1 for giver, taker in present
                        if any(cluster_of[i] == cluster_of[j] for i in by_source[giver] for j in by_source[taker]))
    missed = sorted(positives - {(a, b) for ids in clusters.values() for a, b in combinations(sorted(ids), 2)})
    return {
        "records": len(truth), "sources": len(by_source), "positive_pairs": len(positives),
        "partial_pairs": len(partial), "true_positive_pairs": tp, "false_positive_pairs": fp,
        "precision": tp / (tp + fp) if tp + fp else 1.0, "recall": tp / len(positives) if positives else 1.0,
        "partial_pairs_merged": merged_partial, "clusters_merging_distinct_sources": bad_clusters,
        "same_event_source_pairs": same_event, "shared_paragraph_source_pairs": len(present),
        "shared_paragraph_pairs_merged": shared_merged, "missed": missed[:20], "wrong": wrong[:20],
    }


# --------------------------------------------------------------------------- running the stage


def _peak_rss_mb() -> tuple[float, float | None]:
    """getrusage's ru_maxrss, and /proc's VmHWM (which, unlike ru_maxrss, restarts at exec)."""
    rusage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    hwm = None
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) / 1024
    except OSError:
        pass
    return rusage, hwm


def run_stage(path: str, overrides: dict[str, Any], against: str | None = None,
              index_path: str | None = None) -> dict[str, Any]:
    """learn + process over a JSONL file read as the runner reads it (mode mark); then, if
    `index_path`, build and save the index of the kept articles (after the peak is read)."""
    from pipeline.io import read_jsonl
    from pipeline.stages import dedup

    baseline = _peak_rss_mb()
    config = dedup.Config(mode="mark", against=against, **overrides)
    started, cpu_started = time.perf_counter(), time.process_time()
    state = dedup.learn(read_jsonl(Path(path)), config)
    learned, cpu_learned = time.perf_counter(), time.process_time()
    cluster_of: dict[str, str] = {}
    duplicate_of: dict[str, str | None] = {}
    for record in read_jsonl(Path(path)):
        out = dedup.process(record, config, state).records[0]
        cluster_of[out["id"]] = out["dup_cluster"]
        duplicate_of[out["id"]] = out["duplicate_of"]
    done, cpu_done = time.perf_counter(), time.process_time()
    peak = _peak_rss_mb()
    result = {"learn_s": learned - started, "process_s": done - learned, "total_s": done - started,
              "learn_cpu_s": cpu_learned - cpu_started, "process_cpu_s": cpu_done - cpu_learned,
              "total_cpu_s": cpu_done - cpu_started,
              "peak_rss_mb": peak[0], "peak_hwm_mb": peak[1], "baseline_rss_mb": baseline[0],
              "cluster_of": cluster_of, "duplicate_of": duplicate_of, "stats": state["stats"]}
    if index_path is not None:
        del state
        started = time.perf_counter()
        index = dedup.build_index((dict(r, duplicate_of=duplicate_of[r["id"]]) for r in read_jsonl(Path(path))),
                                  config)
        dedup.save_index(index, index_path)
        size = Path(index_path).stat().st_size
        result["index"] = {"articles": len(index["ids"]), "bytes": size,
                           "bytes_per_article": round(size / max(1, len(index["ids"])), 1),
                           "signature_bytes_per_article": config.num_perm * 4,
                           "in_memory_bytes_per_article": round(sum(
                               index[k].nbytes for k in ("signatures", "has_signature", "text_hash", "n_words",
                                                         "length")) / max(1, len(index["ids"])), 1),
                           "build_and_save_s": round(time.perf_counter() - started, 2)}
    return result


def _generate_files(fakes: str, n: int, seed: int, share_rate: float, scale: int | None,
                    folder: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Generate, write records.jsonl, and measure the verification margins (small runs)."""
    started = time.perf_counter()
    records, truth, facts = generate(Path(fakes), n, seed, share_rate, scale)
    facts["generated_s"] = time.perf_counter() - started
    write_jsonl(Path(folder) / "records.jsonl", records)
    margin = margins(records, truth, facts, overrides) if scale is None else None
    return {"truth": truth, "facts": facts, "margins": margin}


def _child(queue: Any, target: str, args: tuple[Any, ...]) -> None:
    queue.put(globals()[target](*args))


def in_child(target: str, *args: Any) -> Any:
    """Run a function of this module in a spawned process (memory measured apart, and freed)."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(queue, target, args))
    process.start()
    while True:  # a child that dies before answering must not leave us waiting forever
        try:
            result = queue.get(timeout=5)
            break
        except Empty:
            if not process.is_alive() and queue.empty():
                process.join()
                raise SystemExit(f"{target} failed in its process (exit code {process.exitcode})") from None
    process.join()
    if process.exitcode != 0:
        raise SystemExit(f"{target} failed in its process (exit code {process.exitcode})")
    return result


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")


def incremental(truth: dict[str, Truth], facts: dict[str, Any], folder: Path,
                overrides: dict[str, Any]) -> dict[str, Any]:
    """Batch 1 = each source's original and first copy; its kept articles are indexed;
    batch 2 = the other copies, deduplicated against that index only."""
    from pipeline.io import read_jsonl
    from pipeline.stages import dedup

    records = list(read_jsonl(folder / "records.jsonl"))
    first: list[dict[str, Any]] = []
    second: list[dict[str, Any]] = []
    seen: Counter[str] = Counter()
    for record in records:
        source = truth[record["id"]].source
        (first if seen[source] < 2 else second).append(record)
        seen[source] += 1
    write_jsonl(folder / "batch1.jsonl", first)
    write_jsonl(folder / "batch2.jsonl", second)
    one = in_child("run_stage", str(folder / "batch1.jsonl"), overrides, None)
    kept = [dict(r, duplicate_of=one["duplicate_of"][r["id"]]) for r in first]
    corpus = folder / "corpus"
    corpus.mkdir(exist_ok=True)
    write_jsonl(corpus / "articles.jsonl", ({"id": r["id"], "text": r["text"], "published": r["published"],
                                             "role": r["role"]} for r in kept if not r["duplicate_of"]))
    config = dedup.Config(**overrides)
    started = time.perf_counter()
    index = dedup.build_index(kept, config)
    dedup.save_index(index, corpus / "dedup-index.npz")
    build_s = time.perf_counter() - started
    size = (corpus / "dedup-index.npz").stat().st_size
    two = in_child("run_stage", str(folder / "batch2.jsonl"), overrides, str(corpus / "dedup-index.npz"))
    old_ids = set(index["ids"])
    olds_of: dict[str, list[str]] = {}
    for old in old_ids:
        olds_of.setdefault(truth[old].source, []).append(old)
    expected = right = wrong = 0
    for record in second:
        fact = truth[record["id"]]
        target = two["duplicate_of"][record["id"]]
        if target in old_ids and truth[target].source != fact.source:
            wrong += 1
        if any(pair_share(fact, truth[i], facts["words"]) >= GOLD_SHARE for i in olds_of.get(fact.source, [])):
            expected += 1
            right += bool(target in old_ids and truth[target].source == fact.source)
    return {"batch1": len(first), "batch2": len(second), "indexed": len(index["ids"]),
            "index_bytes": size, "index_bytes_per_article": round(size / max(1, len(index["ids"])), 1),
            "signature_bytes_per_article": index["signatures"].itemsize * config.num_perm,
            "build_index_s": round(build_s, 3), "batch2_s": round(two["total_s"], 3),
            "expected_links_to_old": expected, "linked_to_old": right, "wrong_links_to_old": wrong}


def _median(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.2f} (runs: {', '.join(f'{v:.2f}' for v in values)})"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fakes", type=Path, default=DEFAULT_FAKES, help="FA-KES.csv")
    parser.add_argument("--n", type=int, default=300, help="distinct source articles")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--share-rate", type=float, default=0.3,
                        help="share of sources given one paragraph of another source")
    parser.add_argument("--scale", type=int, default=None, help="generate this many pages instead")
    parser.add_argument("--runs", type=int, default=3, help="timed runs; medians are reported")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="dedup config override, e.g. --set bands=32 --set rows=4")
    parser.add_argument("--show", type=int, default=5, help="missed / wrong pairs to print")
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {}
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    if not args.fakes.is_file():
        raise SystemExit(f"{args.fakes}: FA-KES.csv not found (--fakes)")

    with tempfile.TemporaryDirectory(prefix="syndication-") as tmp:
        folder = Path(tmp)
        made = in_child("_generate_files", str(args.fakes), args.n, args.seed, args.share_rate, args.scale, tmp,
                        overrides)
        truth, facts, margin = made["truth"], made["facts"], made["margins"]
        index_path = str(folder / "dedup-index.npz") if args.scale else None
        runs = [in_child("run_stage", str(folder / "records.jsonl"), overrides, None,
                         index_path if number == 0 else None) for number in range(max(1, args.runs))]
        same = all(r["cluster_of"] == runs[0]["cluster_of"] for r in runs)
        inc = incremental(truth, facts, folder, overrides) if args.scale is None else None
    metrics = evaluate(truth, runs[0]["cluster_of"], facts)

    what = f"scale {args.scale}" if args.scale else f"n {args.n}"
    print(f"# dedup syndication benchmark (seed {args.seed}, {what}, config overrides {overrides or 'none'})")
    print(f"FA-KES rows: {facts['fakes']}; generated in {facts['generated_s']:.1f} s")
    print(f"records {metrics['records']}, sources {metrics['sources']}, "
          f"same-event source pairs {metrics['same_event_source_pairs']}, "
          f"shared-paragraph source pairs {metrics['shared_paragraph_source_pairs']}")
    print(f"gold pairs (share >= {GOLD_SHARE}): {metrics['positive_pairs']}; "
          f"partial same-source pairs (share < {GOLD_SHARE}): {metrics['partial_pairs']}")
    print(f"precision {metrics['precision']:.4f}  recall {metrics['recall']:.4f}  "
          f"(TP {metrics['true_positive_pairs']}, FP {metrics['false_positive_pairs']})")
    print(f"merges of distinct articles: {metrics['false_positive_pairs']} pairs in "
          f"{metrics['clusters_merging_distinct_sources']} clusters; shared-paragraph source pairs merged: "
          f"{metrics['shared_paragraph_pairs_merged']}")
    print(f"partial same-source pairs merged too: {metrics['partial_pairs_merged']}/{metrics['partial_pairs']}")
    stats = runs[0]["stats"]
    print(f"LSH {stats['lsh']}: candidate pairs {stats['candidate_pairs']}, verified {stats['verified_pairs']}, "
          f"accepted {stats['verified_copies']}")
    for key in ("learn_cpu_s", "process_cpu_s", "total_cpu_s", "learn_s", "process_s", "total_s", "peak_rss_mb",
                "peak_hwm_mb", "baseline_rss_mb"):
        values = [r[key] for r in runs if r[key] is not None]
        if values:
            print(f"{key}: median {_median(values)}")
    total = statistics.median(r["total_cpu_s"] for r in runs)
    print(f"pages per CPU second (median): {metrics['records'] / total:.0f}")
    print(f"identical clusters in every run: {same}")
    if margin is not None:
        print("margins: " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                      for k, v in margin.items()))
    if "index" in runs[0]:
        print("index of the kept articles: " + ", ".join(f"{k} {v}" for k, v in runs[0]["index"].items()))
    if inc is not None:
        print("incremental: " + ", ".join(f"{k} {v}" for k, v in inc.items()))
    for label in ("missed", "wrong"):
        for a, b in metrics[label][: args.show]:
            print(f"{label}: {a} {b}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
