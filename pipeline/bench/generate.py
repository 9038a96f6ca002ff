"""A synthetic benchmark corpus: scraped-looking pages built from real article text.

    python -m pipeline.bench.generate --size 20MB [--seed 0] [--source auto|seeds|fakes] [--out DIR]

Article text is real: the `article` lines of the seeds (by their labels in tests/gold), or,
when /work/shared/devsets/fa-kes is present (`--source auto`), the FA-KES articles (CC-BY-4.0,
read at run time, never stored here). Once those are used up, further articles are made of
their sentences, a quarter of the words replaced, so that distinct articles stay distinct.

Every page is wrapped in the template of one of the synthetic sites below: navigation,
byline, share and subscribe prompts, a donation widget, tags, a related-articles list, a
reader comment thread in that site's format and a footer. The three thread formats are
those of the seeds: WordPress `Name says` (numbered, replies nested by bullet and indent,
seed 000), `Posted by: NAME | TIME | N` signatures after the body (flat, replies by `@N`,
seed 002), and blog threads `Name says:` + date line + body + `Reply` (nested by indent).
A share of the articles is republished on other sites (an intro line, a headline of the
site's style, sometimes the last paragraph cut, a few typos): the syndicated copies that
the dedup stage should find. Pages go in one sub-folder per site.

Generation is a stream: pages are written until the target size is reached, so the same
seed and size give byte-identical files, and a smaller corpus is a prefix of a larger one
of the same seed. `generated.json` (not a page: ingest reads `*.txt`) records what was made.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import shutil
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.eval.syndication import SENTENCE, WORD, add_typos, read_fakes, source_pool

REPO = Path(__file__).resolve().parents[2]
FAKES = Path("/work/shared/devsets/fa-kes/FA-KES.csv")
GENERATOR_VERSION = 1  # bump when the output for a given seed and size changes

EMPTY_THREAD_RATE = 0.25  # pages without comments (many news pages have none)
MAX_COMMENTS = 30  # per page; seed 000 has 27 comments, seed 002 98
REPLY_RATE = 0.35  # chance a comment gets a reply at each level (decays with depth)
MAX_DEPTH = 3
SYNDICATION_RATE = 0.35  # articles republished on 1-3 other sites
REWORD_RATE = 0.25  # words replaced in sentences reused for synthetic articles and comments
SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?)b?\s*$", re.IGNORECASE)
UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}


@dataclass(frozen=True)
class Article:
    key: str
    title: str
    paragraphs: tuple[str, ...]


@dataclass(frozen=True)
class Site:
    """One site's page template. `comments` is the thread format: wordpress, signature or blog."""

    name: str
    slug: str
    nav: tuple[str, ...]
    share: tuple[str, ...]
    donation: tuple[str, ...]
    subscribe: str
    related_heading: str
    footer: tuple[str, ...]
    comments: str
    headline: str  # how the site restyles a syndicated headline: same, suffix, upper, prefix


SITES = (
    Site("Levant Ledger", "levantledger", ("Home", "News", "Middle East", "Opinion", "Video", "About", "Contact"),
         ("Share this:", "Twitter", "Facebook", "Email"),
         ("Support Levant Ledger", "Independent journalism needs your help. Please consider a small donation.",
          "Donate"),
         "Subscribe to the Levant Ledger newsletter", "Related Articles",
         ("© {year} Levant Ledger. All rights reserved.", "Privacy Policy", "Terms of Use"), "wordpress", "same"),
    Site("Crossroads Review", "crossroads", ("Latest", "World", "Politics", "Analysis", "Podcasts", "Donate"),
         ("Tweet", "Share on Facebook", "Share on Reddit"),
         ("Liked it? Take a second to support Crossroads Review on Patreon!",),
         "Get our daily briefing in your inbox", "You may also like",
         ("Copyright {year} Crossroads Review", "About Us", "Contact", "Advertise"), "signature", "suffix"),
    Site("Desert Dispatch", "desertdispatch", ("Menu", "Home", "Syria", "Iraq", "Lebanon", "Features", "Search"),
         ("Share", "Tweet", "WhatsApp", "Print"),
         ("Your donations make all the difference. Together we can expose fake news lies and deliver truth.",
          "Amount to donate in USD$:", "5 10 25 100", "Donate Now"),
         "Sign up for our newsletter", "More from Desert Dispatch",
         ("© {year} Desert Dispatch", "All rights reserved.", "Cookie settings"), "blog", "upper"),
    Site("The Open Frontier", "openfrontier", ("Home", "Articles", "Archive", "Topics", "Support us"),
         ("Share this article", "Facebook", "Twitter", "LinkedIn"),
         ("Please support The Open Frontier", "We rely on readers like you. Donate via PayPal"),
         "Subscribe to The Open Frontier newsletter", "Related Posts",
         ("© {year} The Open Frontier. All rights reserved.", "Terms", "Privacy"), "wordpress", "prefix"),
    Site("Harbour Post", "harbourpost", ("Skip to content", "Home", "News", "Region", "Business", "Culture"),
         ("Share:", "Email", "Facebook", "Twitter", "Pinterest"),
         ("Make a donation to Harbour Post", "Every contribution, however big or small, makes a difference."),
         "Follow us on Twitter and Facebook", "Recommended",
         ("Copyright © {year} Harbour Post", "Site map", "Contact us"), "signature", "same"),
    Site("Meridian Daily", "meridian", ("Meridian Daily", "Home", "World", "Syria war", "Opinion", "Sections"),
         ("Share this story", "Tweet", "Facebook", "Copy link"),
         ("Support Meridian Daily", "Quick Donate", "Donate a quick 10 spot!"),
         "Subscribe to our newsletter", "Read more",
         ("© {year} Meridian Daily. All rights reserved.", "Privacy Policy", "RSS"), "blog", "suffix"),
    Site("Northern Observer", "northobserver", ("Home", "Front page", "International", "Columns", "Letters"),
         ("Share on Facebook", "Share on Twitter"),
         ("Donate to Northern Observer", "Reader-funded since 2009."),
         "Join our mailing list", "Related Stories",
         ("© {year} Northern Observer", "All rights reserved.", "Contact the editors"), "wordpress", "upper"),
)
REPORTERS = ("Nadia Haddad", "Peter Walsh", "Omar Rifai", "Claire Dubois", "Samir Aziz", "Helen Marsh",
             "Yusuf Karim", "Anna Lindqvist", "David Okafor", "Rania Saleh", "Mark Fenton", "Leila Nasser")
FIRST = ("John", "Maria", "Ahmed", "Sarah", "Pete", "Lena", "Karim", "Joe", "Anne", "Mike", "Fatima", "Tom",
         "Rosa", "Ali", "Jenny", "Paul", "Nour", "Dave", "Eva", "Sam", "Hassan", "Kate", "Brian", "Mona")
LAST = ("Smith", "Haddad", "Brown", "Novak", "Khoury", "Miller", "Rossi", "Jensen", "Ali", "Walker", "Costa")
HANDLES = ("truthseeker", "oldtimer", "realist", "skeptic", "watcher", "nomad", "peacenik", "anon", "reader",
           "bystander", "citizen", "observer")
PLACES = ("Australia", "Canada", "UK", "Berlin", "Texas", "Ohio", "Beirut", "Paris")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
TAGS = ("Syria", "Aleppo", "Russia", "United States", "ISIS", "Turkey", "Iran", "Kurds", "Damascus", "Refugees")


@dataclass(frozen=True)
class Comment:
    author: str
    paragraphs: tuple[str, ...]
    posted: dt.datetime
    depth: int
    number: int  # 1-based position on the page
    reply_to: int | None  # number of the comment it answers (signature format: shown as "@N")


@dataclass(frozen=True)
class Page:
    path: str  # relative to the corpus folder
    text: str
    site: str
    comments: int
    copy_of: str | None  # path of the original when this page republishes an article


def parse_size(text: str) -> int:
    """"20MB" -> 20_000_000 bytes (decimal units, as MB/s is reported)."""
    match = SIZE.match(text)
    if not match:
        raise SystemExit(f"--size {text!r}: expected a size like 500KB, 20MB or 1GB")
    return int(float(match.group(1)) * UNITS[match.group(2).lower()])


# --------------------------------------------------------------------------- article text


def seed_articles(repo: Path = REPO) -> tuple[list[Article], list[str]]:
    """The seeds' article paragraphs and comment lines, by their gold line labels."""
    articles, comment_lines = [], []
    for gold_path in sorted((repo / "tests" / "gold").glob("*.json")):
        gold = json.loads(gold_path.read_text(encoding="utf-8"))
        lines = (repo / "seeds" / gold["source"]).read_text(encoding="utf-8").split("\n")
        text = [" ".join(lines[e["n"] - 1].split()) for e in gold["lines"] if e["label"] == "article"]
        comment_lines += [" ".join(lines[e["n"] - 1].split()).lstrip("•– ") for e in gold["lines"]
                          if e["label"] == "comment"]
        if text:
            title = gold["metadata"].get("title") or " ".join(text[0].split()[:8])
            articles.append(Article(f"seed-{gold_path.stem}", title, tuple(t for t in text if t)))
    return articles, [line for line in comment_lines if len(WORD.findall(line)) >= 3]


def fakes_articles(path: Path, seed: int) -> list[Article]:
    """Distinct FA-KES articles (wire copies left out, as in the syndication benchmark)."""
    pool, _ = source_pool(read_fakes(path), seed)
    return [Article(src.key, src.title, src.paragraphs) for src in pool]


class TextPool:
    """Sentences to build synthetic articles and comments from, with words replaced at random."""

    def __init__(self, articles: Sequence[Article], comment_lines: Sequence[str]) -> None:
        def sentences(texts: Iterator[str]) -> list[str]:
            found = {s.strip() for text in texts for s in SENTENCE.split(text)}
            return sorted(s for s in found if 4 <= len(WORD.findall(s)) <= 60)

        self.article_sentences = sentences(p for a in articles for p in a.paragraphs)
        self.comment_sentences = sentences(iter(comment_lines)) or self.article_sentences
        self.vocabulary = sorted({w for s in self.article_sentences for w in WORD.findall(s)
                                  if len(w) >= 4 and w.isalpha()})
        self.titles = sorted({a.title for a in articles if a.title})

    def reword(self, sentence: str, rng: random.Random) -> str:
        return re.sub(r"[A-Za-z]{4,}", lambda m: rng.choice(self.vocabulary) if rng.random() < REWORD_RATE
                      else m.group(), sentence)

    def paragraph(self, rng: random.Random, comment: bool = False) -> str:
        pool = self.comment_sentences if comment and rng.random() < 0.7 else self.article_sentences
        return " ".join(self.reword(rng.choice(pool), rng) for _ in range(rng.randint(1, 3)))

    def article(self, number: int, seed: int) -> Article:
        rng = random.Random(f"article:{seed}:{number}")
        paragraphs = tuple(self.paragraph(rng) for _ in range(rng.randint(4, 12)))
        title = " ".join(WORD.findall(paragraphs[0])[:rng.randint(6, 11)]).capitalize()
        return Article(f"synthetic-{number:07d}", title, paragraphs)


# --------------------------------------------------------------------------- comment threads


def _name(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.45:
        return f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    if kind < 0.7:
        return f"{rng.choice(HANDLES)}{rng.randint(1, 999)}"
    if kind < 0.85:
        return rng.choice(FIRST)
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}, {rng.choice(PLACES)}"


def make_thread(pool: TextPool, rng: random.Random, posted: dt.datetime) -> list[Comment]:
    """A comment tree in page order (pre-order): top-level comments and nested replies."""
    if rng.random() < EMPTY_THREAD_RATE:
        return []
    target = rng.randint(1, MAX_COMMENTS)
    out: list[Comment] = []

    def add(depth: int, parent: int | None) -> None:
        nonlocal posted
        posted += dt.timedelta(minutes=rng.randint(1, 240))
        body = tuple(pool.paragraph(rng, comment=True) for _ in range(rng.choice((1, 1, 1, 2, 2, 3))))
        out.append(Comment(_name(rng), body, posted, depth, len(out) + 1, parent))
        number = len(out)
        while depth < MAX_DEPTH and len(out) < target and rng.random() < REPLY_RATE / (depth + 1):
            add(depth + 1, number)

    while len(out) < target:
        add(0, None)
    return out


def _heading(comments: Sequence[Comment], title: str, rng: random.Random) -> str:
    n = len(comments)
    if rng.random() < 0.5:
        return f"{n} Responses to “{title}”" if n > 1 else f"One Response to “{title}”"
    return f"{n} comments" if n > 1 else "One comment"


def render_wordpress(comments: Sequence[Comment], title: str, rng: random.Random) -> list[str]:
    """Seed 000: "  1. Name says", body indented; replies "• Name says", two spaces deeper."""
    lines = [_heading(comments, title, rng), ""]
    top = 0
    for c in comments:
        if c.depth == 0:
            top += 1
            lines += [f"  {top}. {c.author} says", "", ""]
        else:
            lines += [" " * (2 + 2 * c.depth) + f"• {c.author} says", ""]
        indent = " " * (4 + 2 * c.depth)
        for paragraph in c.paragraphs:
            lines += [indent + paragraph, ""]
    return lines + ["Leave a Reply", "Your email address will not be published. Required fields are marked *",
                    "Comment", "Name *", "Email *", "Website", ""]


def _posted_signature(when: dt.datetime) -> str:
    return f"{MONTHS[when.month - 1][:3]} {when.day} {when.year} {when:%H:%M} utc"


def render_signature(comments: Sequence[Comment], author: str, published: dt.datetime) -> list[str]:
    """Seed 002: the body, then "Posted by: NAME | Dec 12 2016 14:48 utc | N"; replies by "@N"."""
    lines = [f"Posted by {author} on {MONTHS[published.month - 1]} {published.day}, {published.year} "
             f"at {published:%H:%M} UTC | Permalink", "", "next page »", ""]
    by_number = {c.number: c for c in comments}
    for c in comments:
        body = list(c.paragraphs)
        if c.reply_to is not None:
            body[0] = f"@{c.reply_to} {by_number[c.reply_to].author.split(',')[0]}: {body[0]}"
        for paragraph in body:
            lines += [paragraph, ""]
        lines += [f"Posted by: {c.author} | {_posted_signature(c.posted)} | {c.number}", ""]
    return lines


def _posted_blog(when: dt.datetime) -> str:
    hour = when.hour % 12 or 12
    return f"{MONTHS[when.month - 1]} {when.day}, {when.year} at {hour}:{when:%M} {'am' if when.hour < 12 else 'pm'}"


def render_blog(comments: Sequence[Comment], title: str, rng: random.Random) -> list[str]:
    """`Name says:`, a date line, the body, `Reply`; a reply indented four spaces per level."""
    lines = [_heading(comments, title, rng), ""]
    for c in comments:
        indent = " " * (4 * c.depth)
        lines += [f"{indent}{c.author} says:", indent + _posted_blog(c.posted)]
        lines += [indent + paragraph for paragraph in c.paragraphs]
        lines += [f"{indent}Reply", ""]
    return lines + ["Leave a Reply", "Name (required)", "Email (will not be published) (required)", ""]


# --------------------------------------------------------------------------- pages


def _headline(title: str, site: Site) -> str:
    if site.headline == "suffix":
        return f"{title} | {site.name}"
    if site.headline == "upper":
        return title.upper()
    if site.headline == "prefix":
        return f"Syria: {title}"
    return title


def render_page(site: Site, article: Article, paragraphs: Sequence[str], title: str, author: str,
                published: dt.datetime, thread: Sequence[Comment], related: Sequence[str],
                rng: random.Random, intro: str | None = None) -> str:
    """One page as a scraper dumps it: one block per line, blank lines between most blocks."""
    lines: list[str] = []
    for item in site.nav:
        lines += [item, ""]
    lines += [title, "", f"By {author}" if rng.random() < 0.7 else author,
              f"{MONTHS[published.month - 1]} {published.day}, {published.year}", ""]
    if intro:
        lines += [intro, ""]
    for paragraph in paragraphs:
        lines += [paragraph, ""]
    lines += list(site.share) + [""]
    lines += list(site.donation) + ["", site.subscribe, ""]
    lines += ["Tags: " + ", ".join(rng.sample(TAGS, rng.randint(2, 4))), ""]
    lines += [site.related_heading, ""]
    for item in related:
        lines += [item, ""]
    if thread:
        if site.comments == "wordpress":
            lines += render_wordpress(thread, article.title, rng)
        elif site.comments == "signature":
            lines += render_signature(thread, author, published)
        else:
            lines += render_blog(thread, article.title, rng)
    else:
        lines += ["Comments are closed.", ""]
    lines += [line.format(year=published.year) for line in site.footer]
    return "\n".join(lines) + "\n"


def _slug(title: str) -> str:
    return "-".join(WORD.findall(title.lower())[:8]) or "page"


def pages(articles: Sequence[Article], pool: TextPool, seed: int) -> Iterator[Page]:
    """The endless page stream: each article on its home site, then its syndicated copies."""
    order = list(articles)
    random.Random(f"order:{seed}").shuffle(order)
    number = 0
    index = 0
    while True:
        article = order[index] if index < len(order) else pool.article(index - len(order), seed)
        index += 1
        rng = random.Random(f"page:{seed}:{article.key}")
        home, *others = rng.sample(SITES, len(SITES))
        published = dt.datetime(2012, 1, 1) + dt.timedelta(minutes=rng.randrange(7 * 365 * 24 * 60))
        author = rng.choice(REPORTERS)
        related = [rng.choice(pool.titles) if pool.titles and rng.random() < 0.5
                   else " ".join(pool.paragraph(rng).split()[:9]) for _ in range(rng.randint(3, 6))]
        thread = make_thread(pool, rng, published)
        text = render_page(home, article, article.paragraphs, article.title, author, published, thread,
                           related, rng)
        original = f"{home.slug}/{number:07d}-{_slug(article.title)}.txt"
        yield Page(original, text, home.slug, len(thread), None)
        number += 1
        copies = rng.randint(1, 3) if rng.random() < SYNDICATION_RATE else 0
        for site in others[:copies]:
            paragraphs = list(article.paragraphs)
            if len(paragraphs) > 5 and rng.random() < 0.3:
                paragraphs = paragraphs[:-1]
            paragraphs = add_typos(paragraphs, rng.randint(0, 2), rng)
            intro = f"This article originally appeared on {home.name}." if rng.random() < 0.5 else None
            later = published + dt.timedelta(hours=rng.randint(1, 72))
            thread = make_thread(pool, rng, later)
            text = render_page(site, article, paragraphs, _headline(article.title, site), author, later,
                               thread, related[::-1], rng, intro)
            yield Page(f"{site.slug}/{number:07d}-{_slug(article.title)}.txt", text, site.slug,
                       len(thread), original)
            number += 1


def load_articles(source: str, seed: int, fakes: Path = FAKES) -> tuple[str, list[Article], TextPool]:
    """Resolve `source` (auto: FA-KES when present, else the seeds) to articles and a text pool."""
    seeds, comment_lines = seed_articles()
    if source == "auto":
        source = "fakes" if fakes.is_file() else "seeds"
    if source == "fakes":
        if not fakes.is_file():
            raise SystemExit(f"{fakes}: FA-KES.csv not found (--source seeds works without it)")
        articles = fakes_articles(fakes, seed)
    elif source == "seeds":
        articles = seeds
    else:
        raise SystemExit(f"--source {source!r}: expected auto, seeds or fakes")
    return source, articles, TextPool(articles, comment_lines)


def generate(out: Path, size: int, seed: int = 0, source: str = "auto") -> dict[str, Any]:
    """Write pages until `size` bytes into `out` (replaced atomically); reuse it when it already
    holds the same seed, size, source and generator version. Returns the summary."""
    source, articles, pool = load_articles(source, seed)
    wanted = {"generator_version": GENERATOR_VERSION, "seed": seed, "size": size, "source": source}
    summary_path = out / "generated.json"
    if summary_path.is_file():
        old = json.loads(summary_path.read_text(encoding="utf-8"))
        if {k: old.get(k) for k in wanted} == wanted:
            return old
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    written = 0
    made: list[Page] = []
    sites: Counter[str] = Counter()
    for page in pages(articles, pool, seed):
        if written >= size:
            break
        data = page.text.encode("utf-8")
        path = tmp / page.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written += len(data)
        sites[page.site] += 1
        made.append(page)
    formats = {site.slug: site.comments for site in SITES}
    comments: Counter[str] = Counter()
    for page in made:
        comments[formats[page.site]] += page.comments
    summary = dict(wanted, bytes=written, pages=len(made),
                   real_articles=min(len(articles), sum(1 for p in made if p.copy_of is None)),
                   articles=sum(1 for p in made if p.copy_of is None),
                   sites=dict(sorted(sites.items())), comments=dict(sorted(comments.items())),
                   syndicated=[[p.path, p.copy_of] for p in made if p.copy_of])
    (tmp / "generated.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.bench.generate", description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="20MB", help="target size: 500KB, 20MB, 200MB, 1GB")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--source", default="auto", help="auto (FA-KES when present), seeds or fakes")
    parser.add_argument("--out", type=Path, default=None, help="default: data/bench/corpus-SIZE-seedN")
    args = parser.parse_args(argv)
    out = args.out or REPO / "data" / "bench" / f"corpus-{args.size}-seed{args.seed}"
    summary = generate(out, parse_size(args.size), args.seed, args.source)
    print(f"{out}: {summary['pages']} pages, {summary['bytes'] / 1e6:.2f} MB from {summary['source']} "
          f"({summary['articles']} articles, {len(summary['syndicated'])} syndicated copies)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
