"""Boilerplate removal: drop navigation, widgets and prompts line by line; keep all a later stage needs.

A corpus stage. `learn` finds lines repeated on many pages of one site (templates).
`process` decides every non-blank line in three passes:

1. **Line classifier.** The user's pins, the phrase and regex rules of the pattern
   files, the learned templates, and text-only signals (word count, stopword
   density, sentence-final punctuation, title case, digits, link-like separators).
2. **Context pass** (jusText). Undecided short lines take the class of their
   nearest decided neighbours.
3. **Main-region pass.** The page's main text is the densest run of prose lines;
   menus, headline lists and widget text far from it go as `outside_main`, while
   reader comments and related feeds after it stay for the split stage.

The classifier and the context pass follow jusText (Pomikálek, "Removing
Boilerplate and Duplicate Content from Web Corpora", PhD thesis, Masaryk
University 2011, ch. 3; https://corpus.tools/wiki/Justext/Algorithm): blocks are
first classified without context by length and stopword density, then short
blocks take the class of their nearest decided neighbours, and a short block
shortly before good text counts as a heading and stays. Here blocks are lines of
plain text, and the revision is biased to keep: this stage runs before the split
and metadata stages, so comments, comment headers, related teasers, titles,
bylines and datelines must survive, and a short line is removed only when
boilerplate surrounds it on both sides.

The main-region pass follows Finn, Kushmerick and Smyth, "Fact or fiction: Content
classification for digital libraries" (DELOS 2001; the "Body Text Extraction"
method): the body is the contiguous stretch that maximises text inside it minus
markup inside it, i.e. a maximum-sum segment (Kadane) over per-line scores. Here a
prose line scores its word count (a share of it when the line ends no sentence: captions,
teaser blurbs and excerpts cut off by an ellipsis are not article paragraphs; so do the items
of a list that a line ending in a colon introduces; a line that reads as a headline, a related
story's title, scores nothing) and every other line a negative cost.
What lies before the region is sidebar and masthead (its non-heading lines go; a line next to
a date line stays only in the article's own header, not in a dated teaser list, and a run of
date lines is a calendar or archive, not a header). A share bar
or comment chrome inside the segment with little prose after it (an author bio, an info box,
a blog footer) ends it there. After it come comments and feeds, so only blocks that look like
neither go (a comment block has a header or date line next to prose; a feed starts at a feed
header and is the split stage's business). A block that looks like a comment but is
apart from the main text also goes when the split stage's comment parser, run here on the
kept lines, finds it in no thread: the split stage would merge it into the article.

Every removed line becomes a span (its reason, its newline) and a marker
`[index of the next kept output line, reason, text]` for the split stage.

Speed: lines repeat across the pages of a site, so a line's context-free verdict is
computed once per distinct text and kept in a per-config memo of bounded size (when full,
the lines in use stay, see `MEMO_LINES`; it is a speed cache, not corpus state, so what it
keeps never changes a verdict). `process_batch` looks up
a whole batch of pages and classifies the lines not seen yet together, column by column
(`_classify_many`: one C-level call per step over all of them, or one scan over them joined
by newlines, the same verdicts as `_classify` line by line). The regexes are not tried one by one: each is indexed by the
first two characters it can match (found by walking its parse tree), by the length range
it can match when it is anchored at both ends, and by literals it cannot match without;
a line only meets the regexes that can match it, in file order, so the verdict is the
same as trying them all. In a batch, each regex is tried on the lines it admits that no
earlier regex matched; regexes that may backtrack badly keep their time bound there too.
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import functools
import gc
import itertools
import operator
import re
import unicodedata
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, compress, repeat
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from pipeline.document import Line, Span
from pipeline.extract.comments import CommentFormats, compile_formats, find_comment_section, load_formats
from pipeline.io import load_yaml
from pipeline.patterns import BoundedPattern, Pattern, compile_pattern, forget_parse_trees, parse_once
from pipeline.stage import ConfigPath, Outcome, Record, StageConfig

try:  # the opcodes of the regex parser behind `re`; only used to index the pattern files' regexes
    from re import _constants as _sre_c  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python < 3.11
    import sre_constants as _sre_c  # type: ignore[no-redef]

NAME = "boilerplate"

REASONS: frozenset[str] = frozenset(
    {
        "navigation",  # menu items, account and policy links, taxonomy lines ("Tags: ...")
        "donation",  # donate / support-us appeals, Patreon and PayPal prompts, amount pickers
        "comment_widget",  # comment-form and thread chrome: "Leave a Reply", "Notify of", "avatar"
        "comments_heading",  # the heading that opens a thread: "12 Comments", "3 thoughts on ..."
        "share",  # share / follow prompts and social-network button labels
        "newsletter",  # newsletter, e-mail and RSS subscription prompts
        "cookie",  # cookie-consent notices and their buttons
        "pagination",  # next / previous page, "Continue Reading", page numbers
        "advertisement",  # "Advertisement", "Sponsored" labels
        "view_counter",  # "10,645 Views"
        "publish_stub",  # "Published" / "on" labels whose value the scrape lost
        "photo_credit",  # a credit alone on its line: "© Name / Reuters", "Photo: AP"
        "feed_header",  # the header over a feed: "Latest", "Trending", "Related Posts"
        "site_header",  # masthead chrome: "Skip to content", "Menu", "Search"
        "legal",  # footer lines: "© 2016 Site. All rights reserved", "Powered by WordPress"
        "template",  # a line learned as repeated on many pages of the same site
        "pinned",  # a line the user pinned as boilerplate in the config
        "link_list",  # menu-like items joined by | » › • ·, or a run of headline-like lines after the text
        "empty_widget",  # a line without words: lone separators, bare numbers, amount pickers
        "short_context",  # a short undecided line with boilerplate on both sides (jusText rule)
        "outside_main",  # away from the page's main text: sidebar, masthead, footer, teaser blocks
        "inline_feed",  # a related-links box inside the main text (header and items): not a feed cut
    }
)

KEEP = "keep"
"""Pattern-file reason for lines later stages need: never removed by templates or context."""

GOOD, BAD, WEAK, SHORT, PROTECTED = "good", "bad", "weak", "short", "protected"
"""Line classes: text, boilerplate, boilerplate-if-next-to-boilerplate, undecided, keep-rule hit."""


class Config(StageConfig):
    """Boilerplate stage settings. Figures in the comments are from dragnet-train (965 pages from
    many sites). "Stage F1" is `python -m pipeline.eval.boilerplate_devset` (the kept text against
    the gold article); "article F1" is the main article of the whole pipeline
    (`python -m pipeline.eval.devset`), measured while calibrating with templates off."""

    patterns: tuple[ConfigPath, ...] = (Path("boilerplate/en.yaml"), Path("boilerplate/fr.yaml"))
    # English and French function-word lists for the stopword-density signal.
    stopwords: ConfigPath = Path("boilerplate/stopwords.yaml")
    # A line on at least this many pages of one site is a template. Measured with one site key
    # for all pages: of the learned lines' occurrences, 0.68% / 0.50% / 0.35% are gold-article
    # lines at 3 / 5 / 8 pages; stage F1 0.660 / 0.646 / 0.633, pages under 0.97 recall 45 / 33 / 30.
    template_min_pages: int = 5
    # Lines of more words than this are never learned: repeated long lines are syndicated text
    # or related-feed teasers, which the split stage needs; menus and widget labels are short.
    template_max_words: int = 8
    pin: tuple[str, ...] = ()  # user-pinned template lines (always boilerplate, every site)
    veto: tuple[str, ...] = ()  # user-vetoed template lines (never learned)
    # Lines longer than this (characters) skip the pattern rules, which bounds regex work per
    # line (the stage stays linear). With no cap, the longest line any rule matched is 268.
    pattern_max_chars: int = 400
    # The word signals of a longer line are read from its first this many characters (about 50
    # words), which bounds the work per line; every such line is prose or a link list by then.
    # 200 / 300 / all characters: article F1 equal to 4 decimals.
    signal_max_chars: int = 120
    # "Good" (prose) = at least this many words at this stopword density (jusText's length and
    # density test). Of lines of 10+ words, the share found verbatim in gold article+comments is
    # 0.13-0.19 below density 0.25, 0.26 at 0.25, 0.51 at 0.35, 0.86 at 0.5+. The bar sits low
    # because a good line only shields its neighbours and keeping is the safe error; 0.20-0.30
    # and 10-12 words move stage F1 by < 0.006.
    good_min_words: int = 10
    good_min_stopword_density: float = 0.25
    # ... or a sentence end, this many words and this density (6-9-word sentences: 0.25 found in
    # gold at density 0.15-0.25, 0.59 at 0.5+; 0.10-0.20 moves stage F1 by < 0.002).
    sentence_min_words: int = 6
    sentence_min_stopword_density: float = 0.15
    # Lines at least this share Title Case are never prose without a sentence end (menus and
    # headlines); 0.8 / 0.9 / off give stage F1 0.649 / 0.646 / 0.644 at equal recall.
    title_case_max_share: float = 0.9
    # A link list is at least this many separator-joined segments of at most this many words
    # ("Home | News | Contact"). Two segments gain 0.0006 F1 but catch "Name | date" headers.
    link_list_min_segments: int = 3
    link_segment_max_words: int = 4
    # A short line this close (characters of the lines in between) before good text is a
    # heading and stays: jusText's MAX_HEADING_DISTANCE. 0 / 100 / 200 give stage F1 0.658 /
    # 0.652 / 0.646 and 52 / 38 / 33 pages under 0.97 recall: titles matter more here than F1.
    heading_max_chars: int = 200
    # Page edges count as boilerplate neighbours, as in jusText: pages open with mastheads and
    # close with footers (off: stage F1 0.645, 31 pages under 0.97 recall).
    edges_are_boilerplate: bool = True

    # --- main-region pass (article F1 0.725 without it, templates off) ---
    main_region: bool = True
    # Line scores of the maximum-sum segment: a prose line scores its words; any other kept line
    # costs this plus this per word; a removed line costs this. Costs 3 / 6 / 10 per line and
    # 1 / 2 per word move article F1 by < 0.002; the segment's edges are what matter, not its size.
    region_line_cost: float = 3.0
    region_word_cost: float = 1.0
    # A removed line (menu, share bar, tag line, widget) is markup between the article and the
    # next text block, several tags' worth in the body-text method: at 1 a blurb, bio or sidebar
    # text after the share bar and tag line outweighed them and the segment ran on into it.
    # Without `region_unfinished_share`, 1 / 4 / 6 / 8 / 15 give article F1 0.8658 / 0.8691 /
    # 0.8703 / 0.8704 / 0.8712 (precision 0.8512 / 0.8572 / 0.8595 / 0.8601 / 0.8628, recall
    # 0.9173 / 0.9171 / 0.9167 / 0.9163 / 0.9146), comment F1 0.8843 up to 8 and 0.8811 from 10
    # on; with it, 1 / 4 / 6 / 10 give 0.8731 / 0.8758 / 0.8768 / 0.8770. The gain is all from
    # pattern and template removals (this cost for context-pass removals alone: 0.8659).
    region_removed_cost: float = 6.0
    # A prose line that ends no sentence, or ends in an ellipsis (an excerpt), scores this share
    # of its words: article paragraphs end with a full stop, while photo captions, teaser and
    # sidebar blurbs and cut-off excerpts mostly do not. In the main articles at share 1, such
    # lines held 21,400 article tokens and 18,500 others, finished ones 463,000 and 36,000; at full
    # weight a slideshow's captions or a "most read" box carried the segment past the article's
    # end, or became the first segment. A page with no segment at this weight is scored
    # again at full weight (its only paragraph lacks a full stop). 1 / 0.5 / 0.25 / 0 give
    # article F1 0.8703 / 0.8755 / 0.8768 / 0.8747; counting an ellipsis as a sentence end 0.8753
    # at 0.25 (comment F1 0.8844 against 0.8811: one page's comment of an unknown format was only
    # kept while the segment ran on into it).
    region_unfinished_share: float = 0.25
    # A comment header, date line or comment widget inside the segment costs this: comment
    # threads fall apart into their comments and the article stays whole. 15 / 25 / 40 / 60 / 100
    # give article F1 0.8521 / 0.8536 / 0.8572 / 0.8583 / 0.8565, comment F1 0.8082 / 0.8074 /
    # 0.8018 / 0.7989 / 0.7988: 40 for articles without giving up comments.
    region_frame_cost: float = 40.0
    # A page whose best segment scores less (about words of prose) has no main text to anchor
    # on and keeps the classifier's verdicts: 20 / 40 / 60 give article F1 0.8326 / 0.8319 / 0.8318.
    region_min_score: float = 20.0
    # The main text is the first segment scoring at least this share of the best one: articles
    # come before comments and sidebars. 1.0 / 0.5 / 0.3: article F1 0.8341 / 0.8346 / 0.8359.
    region_first_share: float = 0.3
    # The segment runs on past a dip of up to this many lines (a date line or a subheading inside
    # the article) when the text after the dip outweighs it: off / 10 / 20 / no limit give
    # article F1 0.8520 / 0.8536 / 0.8532 / 0.8518.
    region_extend_lines: int = 10
    # This many kept lines right before the main text stay whatever they are: title, dek,
    # byline, dateline. 3 / 4 / 6 / 10: article F1 0.8406 / 0.8422 / 0.8406 / 0.8380.
    head_lines: int = 4
    # A header or date line is a comment frame when a prose line is within this many lines of it
    # in its block; blocks after the main text without one go. 2 / 3: article F1 0.8326 / 0.8323.
    frame_window: int = 2
    # ... where prose is a good line, a sentence, or a short line of at least this many words that
    # is not a headline ("The video is blocked here"): off / 3 / 4 / 5 give article F1 0.8536 /
    # 0.8516 / 0.8520 / 0.8522 and comment F1 0.8011 / 0.8045 / 0.8045 / 0.8045.
    comment_body_min_words: int = 4
    # A framed block apart from the main text (a removed line between) stays only if the split
    # stage's comment parser (pipeline/extract/comments.py, with these formats: keep them the
    # split stage's) puts it in the page's thread: a lone date or "@handle" line next to a widget
    # blurb, a dated teaser list or a horoscope frames a block as well as a comment header does,
    # and what the parser finds in no thread the split stage merges into the article. Off / on,
    # on the tuning half (even positions of the sorted page ids) / the other half: article F1
    # 0.8775 / 0.8875 and 0.8793 / 0.8846 (pages better 88 and 68, worse 4 and 7), comment F1
    # 0.8967 both, comments found on 1.80% / 1.65% of the pages without. Blocks the main text runs
    # on into are spared: judged too, 0.8872 and 0.8800 (worse 23 and 27 pages: a region cut
    # short lost its article's continuation, a list of dated items, captions). The parse costs
    # about 7% of the stage's CPU time cold and a fifth of it warm (over the dev set, where 278 of
    # 965 pages have such a block: 0.28 s of 3.6 s cold, 0.32 s of 1.5 s warm); off gives it back.
    region_parsed_comments: bool = True
    comment_formats: ConfigPath = Path("comments/formats.yaml")
    # A date or time makes a line a header or date line only up to this many words (longer lines
    # are prose that mentions a date).
    stamp_max_words: int = 12
    # A block after the main text that is at least this share headline-like lines (Title Case,
    # this many words or more, no sentence end) with two or more of them is a teaser list, not a
    # comment thread: off / 0.33 / 0.25 give article F1 0.8467 / 0.8494 / 0.8511.
    teaser_min_headline_share: float = 0.25
    headline_min_words: int = 4
    headline_min_title_share: float = 0.6
    # A run of this many short non-prose lines after the main text (where comments may be) is a
    # headline list: off / 3 gives article F1 0.8488 / 0.8511 (comment F1 0.8061 / 0.8023).
    headline_run: int = 3
    # A feed header inside the main text followed within this many lines by two paragraphs of
    # at least this many words is an inline box ("Related: ..."), not the article's end: off / on
    # 0.8422 / 0.8467; 2 / 4 / 6 lines 0.8434 / 0.8467 / 0.8473; 15 / 25 / 40 words 0.8449 /
    # 0.8467 / 0.8459.
    inline_box_max_lines: int = 4
    inline_paragraph_words: int = 25
    # The main text ends at a closing line inside it (share bar, comment chrome, newsletter prompt:
    # `CLOSING`) when what follows is at most this share of its prose (positive line scores) in at
    # most this many prose lines: an author bio, an info box on the article's subject or a blog
    # footer after the share bar outweighed the removed lines and the segment ran on into it.
    # Measured on the tuning half (even positions of the sorted page ids) / the other half, article
    # F1 0.8873 / 0.8851 without; share 0.15 / 0.2 / 0.25 / 0.3 at 3 lines: 0.8875 / 0.8881 /
    # 0.8881 / 0.8878 and 0.8852 / 0.8856 / 0.8851 / 0.8839 (per-page kept recall 0.9652 up to 0.2,
    # 0.9644 at 0.25); 2 / 3 / 4 lines at 0.2 alike; no line limit 0.8888 / 0.8854 (a recipe card
    # after a "Print" button went, kept recall 0.9650); navigation lines as closing too (tag
    # lines; breadcrumbs), 0.8883 / 0.8860 but kept recall 0.9647; any removed line 0.8867 / 0.8852.
    region_tail_share: float = 0.2
    region_tail_max_lines: int = 3
    # The short kept lines right after a kept line ending in a colon ("The new markets are:"), up
    # to a removed line, a frame or prose, are the items of a list the text introduces: each scores
    # this share of its words, as unfinished prose does, instead of costing as a non-prose line. A
    # list of ten items inside an article cost more than the paragraphs after it weighed, and the
    # segment ended before the list. A run of more than `region_list_max_items` is a menu ("Our
    # sites:" over forty site names), not a list in a text: on a page with a short article such a
    # run outweighed it. On the tuning half (even positions of the sorted page ids) / the other
    # half, article F1 0.8885 / 0.8862 without; share 0.1 / 0.25 / 0.5 at 25 items: 0.8922 /
    # 0.8924 / 0.8916 and 0.8874 / 0.8875 / 0.8870 (pages better 16, worse 11; per-page kept recall
    # 0.9652 without, 0.9690 at 0.25); 10 / 15 / 25 / no limit at 0.25: odd half 0.8870 / 0.8872 /
    # 0.8875 / 0.8875, tuning half 0.8907 with no limit.
    region_list_share: float = 0.25
    region_list_max_items: int = 25
    # Before the main text, a line next to a header or date line stays only next to the last run
    # of such lines (the article's own header: its title above the byline and date); lines next
    # to earlier ones are the headlines of dated teaser lists, event calendars and "3 weeks ago"
    # sidebars. On the two halves with `region_list_share`, article F1 0.8924 / 0.8875 without,
    # 0.8948 / 0.8885 with (pages better 33, worse 7; alone 0.8909 / 0.8871, kept recall 0.9645);
    # next to any header or date line (titles too) about as good, but the title far above its
    # article went. Header and date lines themselves stay (the metadata stage reads them).
    head_frame_last_only: bool = True
    # A prose line that reads as a headline (Title Case, `headline_min_words` or more, no sentence
    # end: `headline_min_title_share` of its words capitalised) scores this share of its words, in
    # both passes of `_best_segment`: a "related stories" list after the article, whose long titles
    # pass the prose test by their function words, carried the segment on past the article's end,
    # and a headline is no paragraph of the text (a subheading inside it is outweighed by the
    # paragraphs around it). On the tuning half (even positions of the sorted page ids) / the other
    # half, article F1 0.8954 / 0.8889 as unfinished prose (0.25, in the first pass only); 0.25 /
    # 0.1 / 0 / -1 (a cost): 0.8963 / 0.8969 / 0.8974 / 0.8977 and 0.8889 / 0.8901 / 0.8905 /
    # 0.8894 (at -1 article F1 on comment pages 0.9012 against 0.9032); 0 only in the first pass
    # (full weight when no segment scores): 0.8965 / 0.8905. At 0 pages better 27, worse 2;
    # per-page kept recall 0.9683 / 0.9690; with blank lines between blocks 0.8970 / 0.8908
    # before, 0.8990 / 0.8924 after.
    region_headline_share: float = 0.0
    # Before the main text, a run of more than this many header or date lines with no other kept
    # line between them goes, keep-rule lines too: an event calendar ("May 9: City"), an archive
    # or a dated list is no article header, which holds a byline, a date and perhaps an "Updated"
    # line. Judged after the lines before the text have gone, so the dates of a teaser list whose
    # headlines went go too (a date there is not the article's), and a list's heading goes with it.
    # Judged before that, the teaser dates stay: 0.8995 / 0.8911 at 3.
    # On the two halves with `region_headline_share`, article F1 0.8974 / 0.8905 without; 2 / 3 / 5:
    # 0.9000 / 0.9001 / 0.8998 and 0.8905 / 0.8911 / 0.8911 (at 3 pages better 10, worse 2; at 2
    # better 16, worse 12 and comment F1 0.9067 against 0.9101: a byline, date and time line above
    # a text went), and with blank lines between blocks 0.8990 / 0.8924 without, 0.9014 / 0.8930
    # at 3. 0 turns it off.
    head_frame_run_max: int = 3


# --- patterns ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    """One pattern-file entry's verdict: a reason, and whether it needs boilerplate next to it."""

    reason: str
    context: bool


@dataclass(frozen=True, slots=True)
class _Bucket:
    """The regexes that can match lines starting with one pair of characters."""

    rest: tuple[int, ...]  # in file order
    combined: re.Pattern[str] | None  # `rest` as one alternation: one call in C says "none of them"
    gated: tuple[tuple[int, re.Pattern[str]], ...]  # regexes that can start anywhere, and a literal they need
    gates: tuple[tuple[float, re.Pattern[str]], ...]  # (n, the literals of the gated regexes that can
    # match a line of n characters or more), n rising: one call says "none of them"
    rest_max: float  # the longest line any of `rest` can match
    bounded: bool  # some of `rest` run under a time bound: `combined` leaves them out, each is tried


@dataclass(frozen=True)
class _Index:
    """Where to look for the regexes that can match a line (see `_index_regexes`)."""

    patterns: tuple[re.Pattern[str], ...]
    by_prefix: dict[str, tuple[int, ...]]  # lowercased first two characters -> regex numbers
    by_first: dict[str, tuple[int, ...]]  # lowercased first character -> regex numbers
    anywhere: tuple[int, ...]  # regexes that can start with any character
    min_len: tuple[int, ...]  # per regex: shortest line it can match
    max_len: tuple[float, ...]  # per regex: longest line it can match (anchored at both ends)
    needs: tuple[tuple[str, ...] | None, ...]  # per regex: one of these lowercase literals occurs
    buckets: dict[str, _Bucket] = field(default_factory=dict)  # memo of `bucket`
    numbers: dict[str, tuple[int, ...]] = field(default_factory=dict)  # memo of `candidates`
    masks: dict[str, np.ndarray] = field(default_factory=dict)  # memo of `admits`

    def bucket(self, low: str) -> _Bucket:
        """The regexes that can match a line whose lowercased text starts with `low[:2]`.

        The index holds ASCII characters only: past a non-ASCII first character every regex is
        a candidate, past a non-ASCII second one every regex that can start with the first."""
        key = low[:2]
        found = self.buckets.get(key)
        if found is None:
            found = self.buckets[key] = self._bucket(self.candidates(key))
        return found

    def candidates(self, key: str) -> tuple[int, ...]:
        """The numbers of the regexes that can match a line whose lowercased text starts with `key`."""
        found = self.numbers.get(key)
        if found is None:
            numbers = set(self.anywhere) | set(self.by_first.get(key[:1], ()))
            if key.isascii():
                numbers.update(self.by_prefix.get(key, ()))
            elif key[:1].isascii():
                for prefix, members in self.by_prefix.items():
                    if prefix[:1] == key[:1]:
                        numbers.update(members)
            else:
                numbers = set(range(len(self.patterns)))
            found = self.numbers[key] = tuple(sorted(numbers))
        return found

    def admits(self, key: str) -> np.ndarray:
        """`candidates(key)` as a mask over the regexes."""
        found = self.masks.get(key)
        if found is None:
            found = self.masks[key] = np.zeros(len(self.patterns), dtype=bool)
            found[list(self.candidates(key))] = True
        return found

    def _bucket(self, numbers: tuple[int, ...]) -> _Bucket:
        anywhere = set(self.anywhere)
        gated = tuple((number, re.compile("|".join(map(re.escape, self.needs[number]))))  # type: ignore[arg-type]
                      for number in numbers if number in anywhere and self.needs[number] is not None)
        skip = {number for number, _ in gated}
        rest = tuple(number for number in numbers if number not in skip)
        combined: re.Pattern[str] | None = None
        # A pattern that may backtrack badly runs only under its own time bound, never inside
        # this unbounded alternation (pipeline/patterns.py).
        plain = [n for n in rest if not isinstance(self.patterns[n], BoundedPattern)]
        if plain:
            try:
                combined = re.compile("|".join(f"(?:{self.patterns[n].pattern})" for n in plain), re.IGNORECASE)
            except re.error:  # e.g. a global inline flag inside: no shortcut, every line is tried
                combined = re.compile("")
        gates = tuple(
            (limit, re.compile("|".join(literals.pattern for n, literals in gated if self.max_len[n] >= limit)))
            for limit in sorted({self.max_len[n] for n, _ in gated}))
        return _Bucket(rest, combined, gated, gates, max((self.max_len[n] for n in rest), default=0),
                       len(plain) < len(rest))


@dataclass(frozen=True)
class Rules:
    """Compiled pattern files: exact phrases by phrase key, regexes in file order, and their index."""

    phrases: dict[str, Rule]
    keep_phrases: frozenset[str]
    regexes: tuple[tuple[re.Pattern[str], Rule], ...]
    keep_regexes: tuple[re.Pattern[str], ...]
    index: _Index
    keep_index: _Index
    patterns: tuple[re.Pattern[str], ...]  # the boilerplate regexes alone, as `regexes` orders them
    joint_index: _Index  # boilerplate and keep regexes together, in this order: one pass for both


BULLET_CHARS = " \t\u00a0•·*▪►●◦‣⁃–—-"
TRAILING_CHARS = " \t\u00a0:»›|.…>→–—-"
BULLETS = re.compile(r"^[\s•·*▪►●◦‣⁃–—-]+")
TRAILING = re.compile(r"[\s:»›|.…>→–—-]+$")
WORD = re.compile(r"[^\W\d_]+")
DIGIT = re.compile(r"\d")
SEPARATORS = re.compile(r"\s*[|»›•·]\s*")
SEPARATOR_RE = re.compile(r"[|»›•·]")
LINK_MARKS = re.compile(r"[|»›•·]|https?://|www\.|\bread more\b", re.IGNORECASE)
LINKISH_SYMBOLS = frozenset("|»›«‹•·><→←")
# Closing quotes and brackets may follow the sentence's end, French ones after a (narrow,
# no-break) space: « Il est parti. »
SENTENCE_END = re.compile(r"[.!?…:;][\"'”’»)\] \u00a0\u202f]*$")
SENTENCE_CHARS = frozenset(".!?…:;")
CLOSERS = "\"'”’»)] \u00a0\u202f"
DATE_OR_TIME = re.compile(r"^[\d\s:./,-]+(am|pm|utc|gmt)?$", re.IGNORECASE)
# A clock time, a month next to a number, a numeric date, or "ago" / "yesterday": the stamp of a
# comment header, a dateline, or a dated teaser.
STAMP = re.compile(
    r"\d{1,2}:\d{2}|\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s\d"
    r"|\d\s(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)|\d{1,4}[./-]\d{1,2}[./-]\d{2,4}"
    r"|\bago\b|\b(?:yesterday|today)\b",
    re.IGNORECASE,
)
STAMP_HINT = re.compile(r"\d|ago|day", re.IGNORECASE)  # every STAMP match has one: a cheap first test
# STAMP's alternatives regrouped by how they start, for one scan over many lines joined by newlines
# (`_lines_with`; `\s` made `[^\S\n]` so that no match crosses a line): a line holds a match of one
# of them iff it holds a STAMP match. The lookahead lets the engine skip to the letters that can
# start a month, "ago", "yesterday" or "today" (tests/stages/test_boilerplate.py keeps them in step).
STAMP_PARTS = (
    re.compile(r"\d(?::\d\d|[^\S\n](?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)|[./-]\d{1,2}[./-]\d\d)",
               re.IGNORECASE),
    re.compile(r"(?=[ajfmsondty])\b(?:(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?[^\S\n]\d"
               r"|ago\b|(?:yesterday|today)\b)", re.IGNORECASE),
)
# WORD, STAMP and STAMP_HINT for ASCII text (the stamps on the lowercased text): the same matches
# without Unicode classes or case folding per character.
ASCII_WORD = re.compile(r"[A-Za-z]+")
ASCII_STAMP = re.compile(STAMP.pattern)
ASCII_STAMP_HINT = re.compile(r"[0-9]|ago|day")
RULE_KEYS = frozenset({"reason", "phrases", "regexes", "context"})


def normalise(text: str) -> str:
    """The comparison form of a line: NFKC, case-folded, spaces collapsed (templates, pins)."""
    return " ".join(unicodedata.normalize("NFKC", text).split()).casefold()


@dataclass(frozen=True, slots=True)
class Forms:
    """The three comparison forms of one line, computed once."""

    key: str  # `normalise`: templates and pins
    phrase: str  # `key` minus leading bullets and trailing separators: phrase lookup
    subject: str  # NFKC, spaces collapsed, leading bullets removed, case kept: regexes


def line_forms(text: str) -> Forms:
    if text.isascii() and text.isprintable() and "  " not in text:
        collapsed = text.strip()  # no tabs, controls or double spaces: nothing to normalise or collapse
    else:
        collapsed = " ".join((text if text.isascii() else unicodedata.normalize("NFKC", text)).split())
    key = collapsed.casefold()
    return Forms(key, key.lstrip(BULLET_CHARS).rstrip(TRAILING_CHARS), collapsed.lstrip(BULLET_CHARS))


def _compile_entry_regex(pattern: Any, path: Path) -> Pattern:
    """A rule's regex (time-bounded if its shape may backtrack badly: pipeline.patterns); its
    `.pattern` and `.flags` are `re`'s, which the index reads. An invalid one raises
    PatternError, a ValueError, naming the file and the pattern."""
    compiled = compile_pattern(pattern, str(path), re.IGNORECASE)
    if compiled.groupindex:
        raise ValueError(f"{path}: regex {pattern!r} uses a named group; use (?:...)")
    return compiled


# --- regex index ---------------------------------------------------------------------------
# A regex is tried only on lines it can match, judged from its parse tree: the lowercased
# first two characters it can start with (ASCII literals only), the length range of what it
# matches when anchored at both ends, and a literal every match contains. Each is a necessary
# condition, so skipping a regex that fails one never changes a verdict.

_OPEN, _DONE, _ANY = 0, 1, 2  # a prefix still growing / complete / followed by anything
_PREFIX = 2
_MAX_PREFIXES = 20000
_REPEATS = {_sre_c.MAX_REPEAT, _sre_c.MIN_REPEAT, getattr(_sre_c, "POSSESSIVE_REPEAT", _sre_c.MAX_REPEAT)}
_ENDS = {_sre_c.AT_END, _sre_c.AT_END_STRING}


class _Unindexable(Exception):
    """Too many prefixes: the regex goes to the try-always list."""


# The ASCII members of the classes \d, \w, \s: a line whose first two characters are not all
# ASCII is looked up more widely (`_Index.bucket`), so the index only needs these.
_CATEGORIES = {
    _sre_c.CATEGORY_DIGIT: set("0123456789"),
    _sre_c.CATEGORY_WORD: set("abcdefghijklmnopqrstuvwxyz0123456789_"),
    _sre_c.CATEGORY_SPACE: set(" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"),
}


@functools.lru_cache(maxsize=4096)
def _ascii_twins(char: str) -> frozenset[str]:
    """The lowercase ASCII characters that `char` matches case-insensitively ("K", the Kelvin
    sign, matches "k"); a line starting with other characters is looked up more widely."""
    pattern = re.compile(re.escape(char), re.IGNORECASE)
    return frozenset(chr(code).lower() for code in range(128) if pattern.fullmatch(chr(code)))


def _charset(items: list[tuple[Any, Any]]) -> tuple[set[str], bool] | None:
    """The lowercase ASCII characters a class can match, and whether it can match others too;
    None if unknown (negated, wide ranges)."""
    chars: set[str] = set()
    wide = False
    for op, value in items:
        if op is _sre_c.LITERAL:
            chars.update(_ascii_twins(chr(value)))
            wide = wide or value > 127
        elif op is _sre_c.RANGE and value[1] - value[0] <= 128:
            for code in range(value[0], value[1] + 1):
                chars.update(_ascii_twins(chr(code)))
            wide = wide or value[1] > 127
        elif op is _sre_c.CATEGORY and value in _CATEGORIES:
            chars.update(_CATEGORIES[value])
            wide = True  # \d, \w and \s match non-ASCII characters as well
        else:
            return None
    return chars, wide


def _grow(states: set[tuple[str, int]], chars: set[str] | frozenset[str], wide: bool) -> set[tuple[str, int]]:
    """Each open prefix followed by each of `chars`. When the element can also match a non-ASCII
    character, a one-character prefix stays findable by its first character (a line with a
    non-ASCII second character is looked up that way); a line with a non-ASCII first character
    meets every regex, so an empty prefix needs nothing."""
    grown = {(text + char, _DONE if len(text) + 1 >= _PREFIX else _OPEN)
             for text, kind in states if kind == _OPEN for char in chars}
    if wide:
        grown |= {(text, _ANY) for text, kind in states if kind == _OPEN and text}
    return grown | {state for state in states if state[1] != _OPEN}


def _walk(items: Any, states: set[tuple[str, int]]) -> set[tuple[str, int]]:
    for op, value in items:
        if all(kind != _OPEN for _, kind in states):
            break
        states = _step(op, value, states)
        if len(states) > _MAX_PREFIXES:
            raise _Unindexable
    return states


def _step(op: Any, value: Any, states: set[tuple[str, int]]) -> set[tuple[str, int]]:
    opened = {state for state in states if state[1] == _OPEN}
    closed = states - opened
    if op is _sre_c.LITERAL:
        return _grow(states, _ascii_twins(chr(value)), value > 127)
    if op is _sre_c.IN:
        found = _charset(value)
        return _grow(states, *found) if found is not None else closed | {(t, _ANY) for t, _ in opened}
    if op is _sre_c.AT:  # zero-width; a line end closes the prefix: the line is exactly it
        return closed | ({(t, _DONE) for t, _ in opened} if value in _ENDS else opened)
    if op is _sre_c.SUBPATTERN:
        return closed | _walk(value[-1], opened)
    if op is _sre_c.BRANCH:
        result = set(closed)
        for alternative in value[1]:
            result |= _walk(alternative, opened)
        return result
    if op in _REPEATS:
        low, high, body = value
        once = _walk(body, opened)
        if high > 1:  # further rounds could add anything: what is still open is open-ended
            once = {(t, _ANY if kind == _OPEN else kind) for t, kind in once}
        return closed | once | (opened if low == 0 else set())
    return closed | {(t, _ANY) for t, _ in opened}


def _selective(literal: str) -> bool:
    """Rare enough to be worth checking: 3+ characters, or punctuation ("/", "|")."""
    return len(literal) >= 3 or any(not char.isalnum() and char != " " for char in literal)


def _required(items: Any) -> set[str] | None:
    """Lowercase ASCII literals, one of which every match contains (or None)."""
    best: set[str] | None = None

    def consider(found: set[str] | None) -> None:
        nonlocal best
        if found and all(_selective(literal) for literal in found) and (
                best is None or min(map(len, found)) > min(map(len, best))):
            best = found

    run = ""
    for op, value in items:
        if op is _sre_c.LITERAL and chr(value).isascii():
            run += chr(value).lower()
            continue
        consider({run} if run else None)
        run = ""
        if op is _sre_c.SUBPATTERN:
            consider(_required(value[-1]))
        elif op is _sre_c.BRANCH:
            alternatives = [_required(alternative) for alternative in value[1]]
            if all(alternatives):
                consider(set().union(*alternatives))  # type: ignore[arg-type]
        elif op in _REPEATS and value[0] >= 1:
            consider(_required(value[2]))
    consider({run} if run else None)
    return best


def _index_regexes(patterns: Sequence[re.Pattern[str]]) -> _Index:
    by_prefix: dict[str, set[int]] = {}
    by_first: dict[str, set[int]] = {}
    anywhere: list[int] = []
    min_len: list[int] = []
    max_len: list[float] = []
    needs: list[tuple[str, ...] | None] = []
    for number, compiled in enumerate(patterns):
        try:
            parsed = parse_once(compiled.pattern, compiled.flags)  # compile_pattern's parse, read only
            low, high = parsed.getwidth()
            items = list(parsed)
            anchored = bool(items) and items[-1][0] is _sre_c.AT and items[-1][1] in _ENDS
            states = _walk(items, {("", _OPEN)})
            required = _required(items)
        except (_Unindexable, RecursionError, TypeError, ValueError, AttributeError):
            anywhere.append(number)
            min_len.append(0)
            max_len.append(float("inf"))
            needs.append(None)
            continue
        min_len.append(low)
        max_len.append(high if anchored else float("inf"))
        needs.append(tuple(sorted(required)) if required else None)
        for text, kind in states:
            if kind == _OPEN:  # the pattern ended: the match may be followed by anything
                kind = _ANY
            if kind == _DONE:
                by_prefix.setdefault(text, set()).add(number)
            elif text:
                by_first.setdefault(text[:1], set()).add(number)
            else:
                anywhere.append(number)
    return _Index(
        tuple(patterns),
        {key: tuple(sorted(value)) for key, value in by_prefix.items()},
        {key: tuple(sorted(value)) for key, value in by_first.items()},
        tuple(sorted(set(anywhere))),
        tuple(min_len),
        tuple(max_len),
        tuple(needs),
    )


def _lowered(subject: str) -> str:
    """The subject lowercased so that ASCII literals compare as in a case-insensitive regex
    (Turkish dotted and dotless i match "i" there, and NFKC has folded the other look-alikes)."""
    if not subject.isascii() and ("\u0130" in subject or "\u0131" in subject):
        subject = subject.replace("\u0130", "i").replace("\u0131", "i")
    return subject.lower()


def _first_match(subject: str, patterns: Sequence[re.Pattern[str]], index: _Index) -> int | None:
    """The number of the first regex (file order) that matches `subject` at its start, or None."""
    low = _lowered(subject)
    bucket = index.bucket(low)
    found: int | None = None
    size = len(subject)
    if size <= bucket.rest_max and (bucket.bounded or (bucket.combined is not None
                                                        and bucket.combined.match(subject) is not None)):
        min_len, max_len = index.min_len, index.max_len
        for number in bucket.rest:
            if min_len[number] <= size <= max_len[number] and patterns[number].match(subject):
                found = number
                break
    gate = _gate(bucket, size) if bucket.gates else None
    if gate is not None and gate.search(low) is not None:
        for number, literals in bucket.gated:
            if found is not None and number > found:
                break
            if literals.search(low) is not None and patterns[number].match(subject):
                return number
    return found


@functools.lru_cache(maxsize=8)
def load_rules(paths: tuple[Path, ...]) -> Rules:
    """Compile pattern files into rules; a bad entry raises ValueError naming file and pattern."""
    phrases: dict[str, Rule] = {}
    keep_phrases: set[str] = set()
    regexes: list[tuple[re.Pattern[str], Rule]] = []
    keep_regexes: list[re.Pattern[str]] = []
    for path in paths:
        entries = load_yaml(Path(path).read_text(encoding="utf-8")) or []
        if not isinstance(entries, list):
            raise ValueError(f"{path}: expected a list of entries")
        for number, entry in enumerate(entries, 1):
            if not isinstance(entry, dict) or "reason" not in entry:
                raise ValueError(f"{path}: entry {number} needs a reason")
            unknown = set(entry) - RULE_KEYS
            if unknown:
                raise ValueError(f"{path}: entry {number}: unknown keys {sorted(unknown)}")
            reason = entry["reason"]
            if reason != KEEP and reason not in REASONS:
                raise ValueError(f"{path}: entry {number}: unknown reason {reason!r}")
            rule = Rule(reason, bool(entry.get("context", False)))
            for phrase in entry.get("phrases") or []:
                if not isinstance(phrase, str):
                    raise ValueError(f"{path}: phrase {phrase!r} is not a string (quote yes/no/on/off)")
                key = line_forms(phrase).phrase
                if reason == KEEP:
                    keep_phrases.add(key)
                else:
                    phrases.setdefault(key, rule)  # earlier entries win
            for pattern in entry.get("regexes") or []:
                compiled = _compile_entry_regex(pattern, Path(path))
                if reason == KEEP:
                    keep_regexes.append(compiled)
                else:
                    regexes.append((compiled, rule))
    return Rules(
        phrases,
        frozenset(keep_phrases),
        tuple(regexes),
        tuple(keep_regexes),
        _index_regexes([compiled for compiled, _ in regexes]),
        _index_regexes(keep_regexes),
        tuple(compiled for compiled, _ in regexes),
        _index_regexes([compiled for compiled, _ in regexes] + keep_regexes),
    )


@functools.lru_cache(maxsize=4)
def load_stopwords(path: Path) -> tuple[frozenset[str], ...]:
    """One frozenset of function words per language in the stopword file."""
    data = load_yaml(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict) or not data:
        raise ValueError(f"{path}: expected a mapping of language to word list")
    languages: list[frozenset[str]] = []
    for language, words in data.items():
        if not isinstance(words, list) or not all(isinstance(word, str) for word in words):
            raise ValueError(f"{path}: {language}: expected a list of strings (quote yes/no/on/off)")
        languages.append(frozenset(word.casefold() for word in words))
    return tuple(languages)


def _gate(bucket: _Bucket, size: int) -> re.Pattern[str] | None:
    """The literals of the bucket's gated regexes that can match a line of `size` characters."""
    for limit, gate in bucket.gates:
        if size <= limit:
            return gate
    return None


def match_rule(forms: Forms, rules: Rules) -> Rule | None:
    """The boilerplate rule a line matches: a strong phrase, else the first regex, else a context phrase."""
    found = rules.phrases.get(forms.phrase)
    if found is None or found.context:
        number = _first_match(forms.subject, rules.patterns, rules.index) if rules.regexes else None
        if number is not None:
            rule = rules.regexes[number][1]
            if found is None or not rule.context:
                found = rule
    return found


def is_protected(forms: Forms, rules: Rules) -> bool:
    """Whether a keep rule names the line (comment header, byline, dateline)."""
    if forms.phrase in rules.keep_phrases:
        return True
    return bool(rules.keep_regexes) and _first_match(forms.subject, rules.keep_regexes, rules.keep_index) is not None


# --- signals -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Signals:
    """Text-only evidence about one line."""

    words: int
    stopword_density: float  # share of words that are function words (best language)
    sentence_end: bool  # ends with . ! ? … : ; (optionally before closing quotes)
    title_share: float  # share of words starting with a capital letter
    digits: int
    link_marks: int  # | » › • · separators, URLs and "read more"
    letters: bool


def ends_sentence(text: str) -> bool:
    """`SENTENCE_END.search(text)` without scanning the line: the last character before closing quotes."""
    trimmed = text.rstrip(CLOSERS)
    return bool(trimmed) and trimmed[-1] in SENTENCE_CHARS


def line_signals(text: str, stopwords: tuple[frozenset[str], ...]) -> Signals:
    """Measure one stripped line."""
    tokens = WORD.findall(text)
    count = len(tokens)
    density = 0.0
    titled = 0
    if count:
        lowered = [token.casefold() for token in tokens]
        density = max((sum(map(language.__contains__, lowered)) / count for language in stopwords), default=0.0)
        titled = sum(map(str.isupper, "".join([token[0] for token in tokens])))
    return Signals(
        words=count,
        stopword_density=density,
        sentence_end=ends_sentence(text),
        title_share=titled / count if count else 0.0,
        digits=len(DIGIT.findall(text)),
        link_marks=len(LINK_MARKS.findall(text)),
        letters=count > 0,
    )


def is_good(signals: Signals, config: Config) -> bool:
    """Text that reads as prose: enough words and function words (jusText's good/neargood)."""
    return _is_good(signals.words, signals.stopword_density, signals.sentence_end, signals.title_share, config)


def _is_good(words: int, density: float, sentence_end: bool, title_share: float, config: Config) -> bool:
    if title_share >= config.title_case_max_share and not sentence_end:
        return False
    if words >= config.good_min_words and density >= config.good_min_stopword_density:
        return True
    return sentence_end and words >= config.sentence_min_words and density >= config.sentence_min_stopword_density


def is_link_list(text: str, link_marks: int, config: Config) -> bool:
    """Several short menu-like items joined by link separators ("Home | News | Contact"); `link_marks`
    is the line's `Signals.link_marks`."""
    if link_marks < config.link_list_min_segments - 1:
        return False
    segments = [segment for segment in SEPARATORS.split(text) if segment]
    if len(segments) < config.link_list_min_segments:
        return False
    menu_like = 0
    for segment in segments:
        words = WORD.findall(segment)
        if len(segment.split()) > config.link_segment_max_words:
            return False
        if words and not DIGIT.search(segment) and not SENTENCE_END.search(segment):
            menu_like += 1
    # Comment headers ("Name | Dec 12 2016 14:48 | 12") have one wordy segment in three.
    return menu_like * 3 >= len(segments) * 2


def classify_wordless(text: str, signals: Signals) -> tuple[str, str | None]:
    """Lines without letters: separators are widgets, bare numbers need context, dates stay."""
    if signals.digits == 0:
        if any(char in LINKISH_SYMBOLS for char in text):
            return BAD, "empty_widget"
        return WEAK, "empty_widget"
    if DATE_OR_TIME.match(text) and re.search(r"[:./-]", text):
        return SHORT, None
    return WEAK, "empty_widget"


# --- the verdict on one line -----------------------------------------------------------------

STAMPED, SENTENCE, HEADLINE, ELIDED = 1, 2, 4, 8
"""Flags of a line's verdict: a date or time in a short line, a sentence end, a headline-like line,
an ending cut short by an ellipsis (an excerpt: a teaser's blurb, "Read more ..." text)."""
ELLIPSES = ("…", "...")


class Verdict(NamedTuple):
    """The context-free verdict on one stripped non-blank line, cached per distinct text.

    A tuple of atoms: cheap to make, left alone by the garbage collector once cached, and a page's
    verdicts transpose into per-field lists in one call (`zip(*verdicts)`)."""

    key: str | None  # `normalise(text)`; None for lines too long to be a template or a pin
    cls: str
    reason: str | None
    words: int  # words between spaces (the main-region score of a prose line)
    flags: int
    size: int  # characters (jusText's heading distance)


_verdict = functools.partial(tuple.__new__, Verdict)
"""`Verdict(*fields)` from a tuple of the fields, without the Python-level __new__."""

BLANK = Verdict(None, "blank", None, 0, 0, 0)
"""The verdict on a blank line (in every cache under the key ""); compared by identity."""


MEMO_LINES = 1 << 17
"""Entries of each per-process memo (`_Memo`) at most, plus one batch's new lines: verdicts by line,
template keys by line. A speed cache, not corpus state, so it must not grow with the corpus; the bound
before (2^19 lines, cleared when full) reached 522,000 lines and ~300 MB at 200 MB. Measured with one
worker, up to the boilerplate stage, the stage's peak RSS at 20 MB / 200 MB: 209 / 518 MB with the old
bound, 199 / 256 MB with two generations of 2^15, 269 MB at 200 MB with two of 2^16 (as many lines as
this bound); this memo against those two generations, run side by side: 306 / 311 MB at 200 MB
(`parent_peak_rss_mb`), and the same output. It holds dragnet-train's 78,766 distinct lines, so a
warm pass over the dev set classifies nothing again, where two generations of 2^16 (the young one
turning over at 2^16 lines in use) re-classified ~13,000 lines a pass and moved the others back one by
one. On the bench corpora the hits lost to the bound are mostly long prose lines repeated far apart
(syndicated copies)."""


class _Memo(dict):  # type: ignore[type-arg]
    """`compute(key)` by key, at most `MEMO_LINES` keys plus one batch's. `lookup` finds a batch's
    keys and marks the ones found (one C call each); a key found since the memo was last full has
    proved reusable, one computed and never found again (most prose lines) has not. When full, the
    memo keeps the reusable keys if they are at most half of it, else it starts over: what is in use
    stays (a second chance, as a clock cache gives; no key is moved one by one) and memory stays
    bounded whatever the corpus. Values depend on the key alone, so what is kept changes the work,
    never the results."""

    def __init__(self, compute: Callable[[str], Any], pinned: Mapping[str, Any]) -> None:
        super().__init__(pinned)
        self.compute = compute
        self.pinned = dict(pinned)  # kept whatever the use (the blank line's verdict)
        self.used: set[str] = set()  # keys found by `lookup` since the memo was last full

    def __missing__(self, key: str) -> Any:
        found = self.compute(key)
        self.make_room(1)
        self[key] = found
        return found

    def lookup(self, keys: list[str]) -> list[Any]:
        """The value of each key, None for the keys not in the memo; the others are marked in use."""
        found = list(map(self.get, keys))
        self.used.update(compress(keys, map(operator.is_not, found, repeat(None))))
        return found

    def make_room(self, count: int) -> bool:
        """Keep only the keys in use (or none, when they are too many) unless `count` more keys fit;
        whether it did (the keys in use are unmarked then)."""
        if len(self) + count <= MEMO_LINES:
            return False
        kept = self.used if len(self.used) <= MEMO_LINES // 2 else ()  # found keys are in the memo
        survivors = dict(zip(kept, map(self.__getitem__, kept)))
        self.clear()
        self.update(self.pinned)
        self.update(survivors)
        self.used = set()
        return True

    def forget(self) -> None:
        """Drop every key (a cold start)."""
        self.clear()
        self.update(self.pinned)
        self.used = set()


def _plain_key(line: str) -> str:
    """`normalise` of a stripped line; plain lines (ASCII, printable, single spaces) need only case
    folding."""
    if line.isascii() and line.isprintable() and "  " not in line:
        return line.casefold()
    return normalise(line)


class _Context:
    """Per-config state: compiled rules, stopwords, pins and the per-process memos."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.rules = load_rules(tuple(config.patterns))
        self.stopwords = load_stopwords(config.stopwords)
        self.pins = frozenset(normalise(pin) for pin in config.pin)
        self.veto = frozenset(normalise(line) for line in config.veto)
        # A line longer than this is neither a learnable template nor a pin: its key is not needed.
        self.key_max_chars = max([config.pattern_max_chars, *map(len, self.pins)])
        self.good_min_count = min(config.good_min_words, config.sentence_min_words)  # of a sentence
        self.cache = _Memo(functools.partial(_classify, context=self), {"": BLANK})
        self.verdict = self.cache.__getitem__  # the verdict on a stripped line, cached
        self.keys = _Memo(_plain_key, {})
        self.learnable: dict[str, bool] = {}  # template key -> neither a keep-rule line nor prose
        self.comment_formats: CommentFormats | None = None
        if config.main_region and config.region_parsed_comments:
            self.comment_formats = load_formats(config.comment_formats)
            compile_formats(self.comment_formats)

    def verdicts(self, pages: list[list[str]]) -> list[list[Verdict]]:
        """The verdict on each stripped line of each page; the lines not in the memo are classified
        together (`_classify_many`), or one by one when they are few."""
        cache = self.cache
        found = list(map(cache.lookup, pages))
        missing = {line for lines, verdicts in zip(pages, found) if None in verdicts
                   for line in itertools.compress(lines, map(operator.not_, verdicts))}
        if not missing:
            return found
        fresh = list(missing)
        cache.make_room(len(fresh))  # what the batch found may go: the pages with a miss look up again
        if len(fresh) < BULK_MIN_LINES:
            cache.update(zip(fresh, map(cache.compute, fresh)))
        else:
            cache.update(zip(fresh, _classify_many(fresh, self)))
        return [verdicts if None not in verdicts else list(map(cache.__getitem__, lines))
                for lines, verdicts in zip(pages, found)]

    def keys_of(self, lines: list[str]) -> list[str]:
        """`normalise` of each stripped line, memoised."""
        found = self.keys.lookup(lines)
        if None not in found:
            return found  # type: ignore[return-value]
        return list(map(self.keys.__getitem__, lines))


_LIVE: weakref.WeakSet[_Context] = weakref.WeakSet()


@functools.lru_cache(maxsize=8)
def _context(config: Config) -> _Context:
    context = _Context(config)
    _LIVE.add(context)
    forget_parse_trees()  # the rules' trees are indexed: the forked workers need not carry them
    return context


def warm(config: Config) -> None:
    """Compile the rules and load the stopwords before the run's workers fork (see pipeline.stage)."""
    _context(config)


def clear_caches() -> None:
    """Forget every cached verdict (a cold start, as in a fresh process; the rules stay compiled)."""
    for context in list(_LIVE):
        context.cache.forget()
        context.keys.forget()
        context.learnable.clear()


def _classify(text: str, context: _Context) -> Verdict:
    """Site-independent verdict on a stripped non-blank line."""
    config = context.config
    size = len(text)
    trimmed = text.rstrip(CLOSERS)  # `ends_sentence`, inlined: this runs once per distinct line
    sentence_end = bool(trimmed) and trimmed[-1] in SENTENCE_CHARS
    ending = (SENTENCE | ELIDED if trimmed.endswith(ELLIPSES) else SENTENCE) if sentence_end else 0
    key: str | None = None
    plain = text.isascii()  # ASCII: the cheaper, equivalent regexes below apply
    if size <= config.pattern_max_chars:
        if plain and text.isprintable() and "  " not in text:
            collapsed = text.strip()  # `line_forms`, inlined for the common line: nothing to normalise
            key = collapsed.casefold()
            phrase = key.lstrip(BULLET_CHARS).rstrip(TRAILING_CHARS)
            subject = collapsed.lstrip(BULLET_CHARS)
        else:
            forms = line_forms(text)
            key, phrase, subject = forms.key, forms.phrase, forms.subject
        words = key.count(" ") + 1
        rules = context.rules
        rule = rules.phrases.get(phrase)
        if rule is not None and not rule.context:  # a strong phrase: no regex can change it
            protected = False
        else:
            # `match_rule` and `is_protected` in one pass: the boilerplate regexes come first in the
            # joint file order, so the first match is the rule's regex, else proof of a keep regex.
            number = _first_match(subject, rules.joint_index.patterns, rules.joint_index)
            if number is None:  # no regex matches: the phrases decide
                protected = phrase in rules.keep_phrases
            elif number < len(rules.regexes):
                found = rules.regexes[number][1]
                if rule is None or not found.context:
                    rule = found
                protected = rule.context and is_protected(Forms(key, phrase, subject), rules)
            else:
                protected = True
        if rule is not None and not rule.context:
            return _verdict((key, BAD, rule.reason, words, _flags(text, words, ending, config), size))
        if protected:
            return _verdict((key, PROTECTED, None, words, _flags(text, words, ending, config), size))
        if rule is not None:
            return _verdict((key, WEAK, rule.reason, words, _flags(text, words, ending, config), size))
    else:
        words = text.count(" ") + 1
        if size <= context.key_max_chars:
            key = normalise(text)
    head = text if size <= config.signal_max_chars else text[: config.signal_max_chars]
    tokens = (ASCII_WORD if plain else WORD).findall(head)
    count = len(tokens)
    flags = ending  # `_flags`, inlined
    if words <= config.stamp_max_words:
        low = text.lower() if plain else text
        if (ASCII_STAMP_HINT if plain else STAMP_HINT).search(low) and (ASCII_STAMP if plain else STAMP).search(low):
            flags |= STAMPED
    if not count:
        cls, reason = classify_wordless(text, Signals(0, 0.0, sentence_end, 0.0, len(DIGIT.findall(text)), 0, False))
        return _verdict((key, cls, reason, words, flags, size))
    if ("|" in text if plain else SEPARATOR_RE.search(text) is not None) and is_link_list(
            text, len(LINK_MARKS.findall(text)), config):
        return _verdict((key, BAD, "link_list", words, flags, size))
    title_share = -1.0  # not measured yet
    # Only lines long enough to pass the good test need its density (most short lines are not).
    if count >= (context.good_min_count if sentence_end else config.good_min_words):
        title_share = sum(map(str.isupper, map(_FIRST, tokens))) / count
        if title_share < config.title_case_max_share or sentence_end:
            lowered = " ".join(tokens).casefold().split()
            hits = max([sum(map(language.__contains__, lowered)) for language in context.stopwords], default=0)
            if _is_good(count, hits / count, sentence_end, title_share, config):
                if (not sentence_end and words >= config.headline_min_words
                        and title_share >= config.headline_min_title_share):
                    flags |= HEADLINE  # a long headline: prose by its function words
                return _verdict((key, GOOD, None, words, flags, size))
    if words >= config.headline_min_words and not sentence_end:
        if title_share < 0:
            title_share = sum(map(str.isupper, map(_FIRST, tokens))) / count
        if title_share >= config.headline_min_title_share:
            flags |= HEADLINE
    return _verdict((key, SHORT, None, words, flags, size))


_FIRST = operator.itemgetter(0)


def _flags(text: str, words: int, ending: int, config: Config) -> int:
    flags = ending
    if words <= config.stamp_max_words and STAMP_HINT.search(text) and STAMP.search(text):
        flags |= STAMPED
    return flags


# --- many lines at once ----------------------------------------------------------------------
# A batch's new lines are classified column by column: each step is one C-level call over all
# of them (map, str methods, numpy), and a regex is tried only on the lines its index entry
# admits. The verdicts are those of `_classify`, line by line (tests/stages/test_boilerplate.py).

BULK_MIN_LINES = 1000
"""Fewer new lines than this are classified one by one (`_classify`): the bulk path's fixed cost (a
pass per regex) pays off only on many lines. Dev set, learn + `process` page by page from cold, CPU:
48 / 256 / 1000 / never: 4.97 / 3.38 / 3.15 / 3.11 s (batches of 64 pages have thousands of new lines)."""

# Rough costs (ns) for choosing how to narrow a regex's candidate lines by its required literals;
# the choice changes the work, never the verdicts (a line without the literals cannot match).
MATCH_NS, BOUNDED_MATCH_NS = 1000, 5000  # one regex call on one line (the bounded engine costs more)
CONTAINS_NS_PER_CHAR = 1.3  # one substring test on one line, per character of the line
SCAN_NS_PER_CHAR = 0.7  # one literal searched through the joined lines, per character


class _Literals:
    """Which lines (lowercased) contain a literal. The lines are joined shortest first, so a regex
    that can only match short lines has its literals searched through the short lines alone; what
    was searched is kept for the next regex that needs the same literal."""

    def __init__(self, lows: list[str], sizes: np.ndarray) -> None:
        self.lows = lows
        self.order = np.argsort(sizes, kind="stable")
        self.sorted_sizes = sizes[self.order]
        ordered = [lows[line] for line in self.order.tolist()]
        self.text = "\n".join(ordered)
        self.ends = (np.cumsum(np.fromiter(map(len, ordered), dtype=np.int64, count=len(ordered)) + 1) - 1).tolist()
        self.found: dict[str, tuple[int, np.ndarray]] = {}  # literal -> (shortest lines searched, lines holding it)

    def _chars(self, first: int, limit: int) -> int:
        """Characters of the joined text from the `first` shortest lines to the `limit` shortest."""
        return (self.ends[limit - 1] if limit else -1) - (self.ends[first - 1] if first else -1)

    def lines(self, literal: str, limit: int) -> np.ndarray:
        """A mask of the lines holding `literal`, exact for the `limit` shortest lines."""
        searched, mask = self.found.get(literal, (0, None))
        if mask is None:
            mask = np.zeros(len(self.lows), dtype=bool)
        if searched < limit:
            ends, find = self.ends, self.text.find
            stop = ends[limit - 1]
            hits: list[int] = []
            position = find(literal, ends[searched - 1] + 1 if searched else 0, stop)
            while position >= 0:
                line = bisect.bisect_left(ends, position)
                hits.append(line)
                position = find(literal, ends[line] + 1, stop)
            mask[self.order[hits]] = True
            self.found[literal] = (limit, mask)
        return mask

    def narrow(self, lines: np.ndarray, lengths: np.ndarray, literals: Sequence[str], match_ns: float) -> np.ndarray:
        """The candidate `lines` (of `lengths` characters) that contain one of `literals`, found the
        cheapest way, or all of them when trying the regex on each is cheaper."""
        limit = int(np.searchsorted(self.sorted_sizes, lengths.max(), side="right"))
        direct = len(lines) * match_ns
        per_line = int(lengths.sum()) * len(literals) * CONTAINS_NS_PER_CHAR
        scan = sum(self._chars(min(self.found.get(literal, (0,))[0], limit), limit)
                   for literal in literals) * SCAN_NS_PER_CHAR
        if direct <= min(per_line, scan):
            return lines
        if scan <= per_line:
            return lines[functools.reduce(operator.or_, (self.lines(literal, limit) for literal in literals))[lines]]
        # The candidate lines alone, joined: each literal is found with a jump to the next line per hit.
        some = [self.lows[line] for line in lines.tolist()]
        text = "\n".join(some)
        ends = np.cumsum(np.fromiter(map(len, some), dtype=np.int64, count=len(some)) + 1).tolist()
        keep = np.zeros(len(some), dtype=bool)
        for literal in literals:
            position = text.find(literal)
            while position >= 0:
                line = bisect.bisect_right(ends, position)
                keep[line] = True
                position = text.find(literal, ends[line])
        return lines[keep]


_PREFIX_OF = operator.itemgetter(slice(0, 2))
_LAST_CHAR = operator.itemgetter(slice(-1, None))


def _lowered_many(subjects: list[str]) -> list[str]:
    """`_lowered` of each subject, in one call over the joined text when lowering keeps the lines apart."""
    joined = "\n".join(subjects)
    if not joined.isascii():
        joined = joined.replace("\u0130", "i").replace("\u0131", "i")
    lows = joined.lower().split("\n")
    return lows if len(lows) == len(subjects) else list(map(_lowered, subjects))


def _collapsed_many(texts: list[str]) -> list[str]:
    """`" ".join(unicodedata.normalize("NFKC", text).split())` of each text, normalising the joined
    texts in one call: NFKC leaves a newline alone and never makes one, so the lines stay apart."""
    joined = "\n".join(texts)
    if not joined.isascii():
        joined = unicodedata.normalize("NFKC", joined)
    found = joined.split("\n")
    if len(found) != len(texts):  # pragma: no cover - a newline made by normalisation
        found = [unicodedata.normalize("NFKC", text) for text in texts]
    return list(map(" ".join, map(str.split, found)))


def _first_matches(subjects: list[str], lows: list[str], index: _Index) -> list[int]:
    """`_first_match` of each subject, -1 for none. Each regex, in file order, is tried on the lines
    its index entry admits (first two characters, length range, required literals) that no earlier
    regex matched: the first match in file order, as line by line."""
    count = len(subjects)
    first = np.full(count, -1, dtype=np.int64)
    if not count:
        return []
    # Lines are grouped by their first two characters; admitted[number, group]: the regex can match them.
    group_of: dict[str, int] = {}
    firsts = np.fromiter(map(group_of.setdefault, map(_PREFIX_OF, lows), itertools.count()), dtype=np.int64,
                         count=count)
    groups = np.unique(firsts, return_inverse=True)[1]  # numbered in order of first appearance, as `group_of`
    admitted = np.stack(list(map(index.admits, group_of))).T
    sizes = np.fromiter(map(len, subjects), dtype=np.int64, count=count)
    patterns, needs = index.patterns, index.needs
    literals = _Literals(lows, sizes)
    for number in np.flatnonzero(admitted.any(axis=1)).tolist():
        lines = np.flatnonzero(admitted[number][groups] & (first < 0) & (sizes >= index.min_len[number])
                               & (sizes <= index.max_len[number]))
        if not len(lines):
            continue
        pattern = patterns[number]
        if needs[number] is not None:
            lines = literals.narrow(lines, sizes[lines], needs[number],
                                    BOUNDED_MATCH_NS if isinstance(pattern, BoundedPattern) else MATCH_NS)
        numbers = lines.tolist()
        match = pattern.match
        hits = [line for line in numbers if match(subjects[line]) is not None]
        if hits:
            first[hits] = number
    return first.tolist()


def _lines_with(pattern: re.Pattern[str], texts: list[str]) -> np.ndarray:
    """The positions of the `texts` that `pattern` matches in, with one scan over them joined by
    newlines (one C call, not one per text); `pattern` must not match across a newline."""
    ends = np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)) + 1)
    starts = [match.start() for match in pattern.finditer("\n".join(texts))]
    return np.searchsorted(ends, np.array(starts, dtype=np.int64), side="right")


_SHORT, _HEADLINE, _PROSE, _LINK_LIST, _WORDLESS, _HEADLINE_PROSE = range(6)
"""What the text signals make of a line no rule decided (`_signal_kinds`)."""


def _signal_kinds(tokens_of: list[list[str]], texts: list[str], sentence: list[bool], words: list[int],
                  context: _Context) -> list[int]:
    """The end of `_classify` for many lines, from their word tokens: wordless, a link list, prose
    (jusText's length and stopword-density test), a headline-like short line, or a short line.
    Counts and shares are computed for all lines at once; the comparisons are `_is_good`'s."""
    config = context.config
    count = len(tokens_of)
    kinds = np.full(count, _SHORT, dtype=np.int64)
    if not count:
        return []
    tokens = np.fromiter(map(len, tokens_of), dtype=np.int64, count=count)
    end = np.fromiter(sentence, dtype=bool, count=count)
    kinds[tokens == 0] = _WORDLESS
    separated = np.zeros(count, dtype=bool)
    separated[_lines_with(SEPARATOR_RE, texts)] = True
    for line in np.flatnonzero(separated & (tokens > 0)).tolist():
        if is_link_list(texts[line], len(LINK_MARKS.findall(texts[line])), config):
            kinds[line] = _LINK_LIST
    open_lines = kinds == _SHORT
    eligible = open_lines & (tokens >= np.where(end, context.good_min_count, config.good_min_words))
    headline_like = open_lines & ~end & (np.fromiter(words, dtype=np.int64, count=count) >= config.headline_min_words)
    titled = np.zeros(count, dtype=np.int64)
    measured = np.flatnonzero(eligible | headline_like)
    titled[measured] = list(map(sum, map(map, repeat(str.isupper), map(map, repeat(_FIRST),
                                                                       map(tokens_of.__getitem__, measured)))))
    title_share = titled / np.maximum(tokens, 1)
    dense = np.flatnonzero(eligible & ((title_share < config.title_case_max_share) | end))
    if len(dense):
        lowered = list(map(str.split, map(str.casefold, map(" ".join, map(tokens_of.__getitem__, dense)))))
        hits = np.zeros(len(dense), dtype=np.int64)
        for language in context.stopwords:
            hits = np.maximum(hits, list(map(sum, map(map, repeat(language.__contains__), lowered))))
        size, density, ends = tokens[dense], hits / tokens[dense], end[dense]
        good = ((size >= config.good_min_words) & (density >= config.good_min_stopword_density)) | (
            ends & (size >= config.sentence_min_words) & (density >= config.sentence_min_stopword_density))
        good &= ~((title_share[dense] >= config.title_case_max_share) & ~ends)
        kinds[dense[good]] = _PROSE
    titled_lines = headline_like & (title_share >= config.headline_min_title_share)
    kinds[(kinds == _SHORT) & titled_lines] = _HEADLINE
    kinds[(kinds == _PROSE) & titled_lines] = _HEADLINE_PROSE
    return kinds.tolist()


def _classify_many(texts: list[str], context: _Context) -> list[Verdict]:
    """`_classify` of each of `texts` (stripped, non-blank)."""
    config, rules = context.config, context.rules
    count = len(texts)
    sizes = list(map(len, texts))
    trimmed = list(map(str.rstrip, texts, repeat(CLOSERS)))
    sentence = list(map(SENTENCE_CHARS.__contains__, map(_LAST_CHAR, trimmed)))
    keys: list[str | None] = [None] * count
    words = [0] * count
    classes: list[str | None] = [None] * count  # None: the text signals decide
    reasons: list[str | None] = [None] * count
    cap = config.pattern_max_chars
    ruled = [position for position, size in enumerate(sizes) if size <= cap]
    if ruled:
        texts_ruled = [texts[position] for position in ruled] if len(ruled) < count else texts
        collapsed = list(texts_ruled)
        plain = list(map(str.isascii, texts_ruled))
        simple = list(map(operator.and_, map(operator.and_, plain, map(str.isprintable, texts_ruled)),
                          map(operator.not_, map(operator.contains, texts_ruled, repeat("  ")))))
        others = list(compress(range(len(ruled)), map(operator.not_, simple)))
        for position, text in zip(others, _collapsed_many([texts_ruled[position] for position in others])):
            collapsed[position] = text
        ruled_keys = list(map(str.casefold, collapsed))
        phrases = list(map(str.rstrip, map(str.lstrip, ruled_keys, repeat(BULLET_CHARS)), repeat(TRAILING_CHARS)))
        subjects = list(map(str.lstrip, collapsed, repeat(BULLET_CHARS)))
        ruled_words = list(map(operator.add, map(str.count, ruled_keys, repeat(" ")), repeat(1)))
        found = list(map(rules.phrases.get, phrases))
        # A strong phrase decides alone; every other line meets the regexes.
        tried = [position for position, rule in enumerate(found) if rule is None or rule.context]
        first = [-1] * len(ruled)
        if tried and rules.joint_index.patterns:
            tried_subjects = [subjects[position] for position in tried]
            for position, number in zip(tried, _first_matches(tried_subjects, _lowered_many(tried_subjects),
                                                                rules.joint_index)):
                first[position] = number
        keep_phrases = rules.keep_phrases
        boilerplate_count = len(rules.regexes)
        for position, line in enumerate(ruled):
            keys[line] = ruled_keys[position]
            words[line] = ruled_words[position]
            rule, number = found[position], first[position]
            if rule is None and number < 0:
                if keep_phrases and phrases[position] in keep_phrases:
                    classes[line] = PROTECTED
                continue
            if rule is not None and not rule.context:
                protected = False
            elif number < 0:
                protected = phrases[position] in keep_phrases
            elif number < boilerplate_count:
                regex_rule = rules.regexes[number][1]
                if rule is None or not regex_rule.context:
                    rule = regex_rule
                protected = rule.context and is_protected(
                    Forms(ruled_keys[position], phrases[position], subjects[position]), rules)
            else:
                protected = True
            if rule is not None and not rule.context:
                classes[line], reasons[line] = BAD, rule.reason
            elif protected:
                classes[line] = PROTECTED
            elif rule is not None:
                classes[line], reasons[line] = WEAK, rule.reason
    long_lines = [position for position, size in enumerate(sizes) if size > cap]
    for line in long_lines:
        text = texts[line]
        words[line] = text.count(" ") + 1
        if sizes[line] <= context.key_max_chars:
            keys[line] = normalise(text)
    flags = [(SENTENCE | ELIDED if elided else SENTENCE) if end else 0
             for end, elided in zip(sentence, map(str.endswith, trimmed, repeat(ELLIPSES)))]
    stamp_max = config.stamp_max_words
    short = [line for line, size_words in enumerate(words) if size_words <= stamp_max]
    short_texts = [texts[line] for line in short]
    for position in np.concatenate([_lines_with(part, short_texts) for part in STAMP_PARTS]).tolist():
        flags[short[position]] |= STAMPED
    # The text signals, for the lines no rule decided.
    rest = [line for line, cls in enumerate(classes) if cls is None]
    signal_max = config.signal_max_chars
    head_of = operator.itemgetter(slice(0, signal_max))
    heads = list(map(head_of, [texts[line] for line in rest]))
    tokens_of = [ASCII_WORD.findall(head) if plain else WORD.findall(head)  # the same tokens on ASCII text
                 for head, plain in zip(heads, map(str.isascii, heads))]
    kinds = _signal_kinds(tokens_of, [texts[line] for line in rest], [sentence[line] for line in rest],
                          [words[line] for line in rest], context)
    for line, kind in zip(rest, kinds):
        if kind == _WORDLESS:
            text = texts[line]
            classes[line], reasons[line] = classify_wordless(
                text, Signals(0, 0.0, sentence[line], 0.0, len(DIGIT.findall(text)), 0, False))
        elif kind == _LINK_LIST:
            classes[line], reasons[line] = BAD, "link_list"
        elif kind == _PROSE:
            classes[line] = GOOD
        elif kind == _HEADLINE_PROSE:
            classes[line] = GOOD
            flags[line] |= HEADLINE
        else:
            classes[line] = SHORT
            if kind == _HEADLINE:
                flags[line] |= HEADLINE
    return list(map(_verdict, zip(keys, classes, reasons, words, flags, sizes)))


def classify_text(text: str, config: Config) -> tuple[str, str, str | None]:
    """Site-independent verdict on a stripped non-blank line: (template key, class, reason)."""
    verdict = _context(config).verdict(text)
    return (verdict.key if verdict.key is not None else normalise(text)), verdict.cls, verdict.reason


def classify_line(
    text: str, templates: frozenset[str], pins: frozenset[str], config: Config
) -> tuple[str, str | None]:
    """Context-free class and reason of one stripped non-blank line on one site.

    Precedence: user pins, boilerplate rules and classifier verdicts, keep rules, learned
    templates, context rules, the text signals.
    """
    key, cls, reason = classify_text(text, config)
    return _on_site(key, cls, reason, templates, pins)


def _on_site(key: str | None, cls: str, reason: str | None, templates: frozenset[str],
             pins: frozenset[str]) -> tuple[str, str | None]:
    if key is not None and key in pins:
        return BAD, "pinned"
    if cls in (BAD, PROTECTED) or key is None or key not in templates:
        return cls, reason
    return BAD, "template"


# --- context pass ----------------------------------------------------------------------------


def revise(classes: Sequence[tuple[str, str | None]], lengths: Sequence[int], config: Config) -> list[str | None]:
    """Decide weak and short lines from their nearest decided neighbours; the removal reason per line.

    A weak line (a context pattern) goes when either neighbour is boilerplate; a short line
    goes only when both are and no good text follows within `heading_max_chars`.
    """
    return _revise([cls for cls, _ in classes], [reason for _, reason in classes], lengths, config)


_CODES = {GOOD: "g", BAD: "b", WEAK: "w", SHORT: "s", PROTECTED: "p"}  # one letter per line class ("o": other)
UNDECIDED_RUN = re.compile("[ws]+")  # a run of weak and short lines in the line codes
FAR = 1 << 30  # the heading distance of a line with no good line after it


def _revise(kinds: Sequence[str], verdict_reasons: Sequence[str | None], lengths: Sequence[int],
            config: Config) -> list[str | None]:
    count = len(kinds)
    reasons: list[str | None] = [reason if kind == BAD else None for kind, reason in zip(kinds, verdict_reasons)]
    if WEAK not in kinds and SHORT not in kinds:
        return reasons
    edge_bad = config.edges_are_boilerplate
    heading = config.heading_max_chars
    # One letter per line: the runs of undecided lines are found in C, not line by line.
    codes = "".join(map(_CODES.get, kinds, repeat("o")))
    offsets: list[int] | None = None
    for run in UNDECIDED_RUN.finditer(codes):
        index, end = run.span()
        before_bad = codes[index - 1] == "b" if index > 0 else edge_bad
        after_bad = codes[end] == "b" if end < count else edge_bad
        if not (before_bad or after_bad):
            continue
        far = index  # the short lines before this one go
        if before_bad and after_bad and heading < FAR:
            # jusText's heading distance: the characters between a line and the next good line. It
            # shrinks along the run, so the lines farther than `heading_max_chars` are its first ones.
            good = codes.find("g", end)
            if good < 0:
                far = end
            else:
                if offsets is None:
                    offsets = list(accumulate(lengths, initial=0))
                far = bisect.bisect_left(offsets, offsets[good] - heading, index + 1, end + 1) - 1
        if far > index:
            reasons[index:far] = repeat("short_context", far - index)
        weak = codes.find("w", index, end)
        while weak >= 0:
            reasons[weak] = verdict_reasons[weak]
            weak = codes.find("w", weak + 1, end)
    return reasons


def harmonise(reasons: list[str | None]) -> list[str | None]:
    """A lone "Subscribe" inside a comment widget belongs to the widget, not to a newsletter."""
    result = list(reasons)
    if "newsletter" not in reasons:
        return result
    for index in range(1, len(reasons) - 1):
        if reasons[index] == "newsletter" and reasons[index - 1] == reasons[index + 1] == "comment_widget":
            result[index] = "comment_widget"
    return result


# --- main-region pass ------------------------------------------------------------------------

COMMENT_CHROME = frozenset({"comment_widget", "comments_heading"})
INDICATORS = COMMENT_CHROME | {"feed_header"}
CLOSING = COMMENT_CHROME | {"share", "newsletter"}  # lines that close an article: what follows is not its text


def main_region(kinds: Sequence[str], reasons: Sequence[str | None], words: Sequence[int], flags: Sequence[int],
                config: Config, page: Sequence[str] = (), numbers: Sequence[int] = (),
                formats: CommentFormats | None = None) -> list[str | None]:
    """Remove what lies away from the page's main text; `reasons` are the context pass's, `words`
    and `flags` the verdicts', per non-blank line. `page` is every stripped line, blank ones too,
    and `numbers` the line number of each non-blank one: the comment parser reads them (`formats`).

    1. The main text is a maximum-sum segment of line scores (a prose line: +words, a share
       of them when it ends no sentence, reads as a headline or is an item of a list after a
       colon; other kept lines, removed lines, comment frames: costs), the first one scoring at least
       `region_first_share` of the best; it ends at a closing line (share bar, comment chrome)
       followed by little prose (`_trim_tail`).
    2. Before it: every kept line but the `head_lines` nearest, comment frames and keep-rule
       lines goes (with `head_frame_last_only`, the lines next to a frame stay only next to
       the last run of frames: the article's header), and then a run of more than
       `head_frame_run_max` frames goes (a date list); a feed header there heads a sidebar
       feed, not related articles.
    3. After it, up to the first feed header: blocks of kept lines (between removed lines)
       without a comment frame (a header or date line next to prose) go, and so do teaser
       lists; runs of short non-prose lines go as headline lists. With `formats`, a framed
       block goes too when the comment parser finds it in no thread, unless the main text
       runs on into it (`_drop_unthreaded`).
    4. A feed header inside it with article paragraphs right after its few items is an
       inline box: header and items go, and the split stage does not cut there. Any other
       feed header inside it means the segment runs on into related articles: what follows
       it is the feed's, and step 3 leaves it alone.
    """
    count = len(kinds)
    out = list(reasons)
    frame = [kind == PROTECTED or flag & STAMPED != 0 for kind, flag in zip(kinds, flags)]
    items = _list_items(kinds, reasons, frame, page, numbers, config)
    start, end = _best_segment(kinds, reasons, words, flags, frame, items, config)
    if start < 0:
        return out
    kept = list(compress(range(count), map(operator.is_, reasons, repeat(None))))
    near_frame = list(frame)  # frames and the short lines next to them (a name above a date)
    last = len(kept) - 1
    for position in compress(range(len(kept)), map(frame.__getitem__, kept)):
        if position > 0 and kinds[kept[position - 1]] != GOOD:
            near_frame[kept[position - 1]] = True
        if position < last and kinds[kept[position + 1]] != GOOD:
            near_frame[kept[position + 1]] = True
    headers = list(compress(range(count), map(operator.eq, reasons, repeat("feed_header"))))

    # Inline boxes inside the main text; another feed header there starts the page's feeds.
    in_feed = False
    for index in headers:
        if start <= index <= end:
            items = _inline_box(index, end, kinds, reasons, out, words, config)
            if items is None:
                in_feed = True
            else:
                for member in (index, *items):
                    out[member] = "inline_feed"
    # Before the main text (comment blocks there stay: a short post with its thread).
    in_comments = set()
    for block in _blocks(range(start), out):
        if _is_comment_block(block, kinds, reasons, words, flags, frame, config):
            in_comments.update(block)
    if config.head_frame_last_only:
        _unframe_early(start, out, frame, near_frame)
    seen = 0
    for index in range(start - 1, -1, -1):
        if out[index] is not None:
            if out[index] == "feed_header":
                out[index] = "outside_main"
            continue
        seen += 1
        if (seen > config.head_lines and not near_frame[index] and kinds[index] != PROTECTED
                and index not in in_comments):
            out[index] = "outside_main"
    if config.head_frame_run_max:
        _drop_date_runs(start, out, frame, config.head_frame_run_max)
    # After it, from the first comment or feed sign on: headline lists (runs of short non-prose
    # lines), before the blocks are judged, so a list under the last comment does not make its
    # block look like a teaser list. A line is removable when kept, not near a frame, and
    # neither prose nor a keep-rule line.
    first = next((index for index in range(end + 1, count)
                  if reasons[index] in INDICATORS or kinds[index] == PROTECTED), count)
    index = first
    while index < count:
        if not (out[index] is None and not near_frame[index] and kinds[index] != GOOD
                and kinds[index] != PROTECTED):
            index += 1
            continue
        stop = index
        members = []
        while stop < count:
            if out[stop] is None:
                if near_frame[stop] or kinds[stop] == GOOD or kinds[stop] == PROTECTED:
                    break
                members.append(stop)
            stop += 1
        if len(members) >= config.headline_run:
            for member in members:
                out[member] = "link_list"
        index = stop
    # After it: blocks of kept lines up to the first feed header.
    feed = next((index for index in headers if index > end), count)
    blocks = _blocks(range(end + 1, feed if not in_feed else end + 1), out)
    framed = [_is_comment_block(block, kinds, reasons, words, flags, frame, config) for block in blocks]
    held: list[list[int]] = []  # blocks kept as comments, apart from the main text
    for number, block in enumerate(blocks):
        if framed[number] or (number + 1 < len(blocks) and framed[number + 1]):
            if block[0] > end + 1:
                held.append(block)
            continue  # a comment, or the body above a signature
        for index in block:
            if kinds[index] != PROTECTED:
                out[index] = "outside_main"
    if held and formats is not None:
        _drop_unthreaded(held, kinds, page, numbers, out, formats)
    return out


def _drop_unthreaded(held: Sequence[Sequence[int]], kinds: Sequence[str], page: Sequence[str],
                     numbers: Sequence[int], out: list[str | None], formats: CommentFormats) -> None:
    """Remove (`outside_main`) each block of `held` of which the comment parser, reading the kept
    lines (blank ones too) and the removal markers as the split stage will, puts no line in the
    page's thread. Indexes in `held` and `out` are of non-blank lines, line `numbers[index]`."""
    gone = list(compress(range(len(out)), map(operator.is_not, out, repeat(None))))
    shown = [True] * len(page)  # per line number
    for index in gone:
        shown[numbers[index]] = False
    rows = list(accumulate(shown, initial=0))  # per line number: the kept lines before it
    texts = list(compress(page, shown))
    starts = list(accumulate([len(text) + 1 for text in texts], initial=0))
    lines = list(map(Line, range(len(texts)), starts, map(operator.add, starts, map(len, texts)), texts))
    markers = [(rows[numbers[index]], out[index], page[numbers[index]]) for index in gone]
    section = find_comment_section(lines, markers, formats)
    for block in held:
        if section is not None and any(section.start <= rows[numbers[index]] < section.end for index in block):
            continue
        for index in block:
            if kinds[index] != PROTECTED:
                out[index] = "outside_main"


def _blocks(indexes: Iterable[int], out: Sequence[str | None]) -> list[list[int]]:
    """Runs of kept lines among `indexes`, split at removed lines."""
    blocks: list[list[int]] = []
    block: list[int] = []
    for index in indexes:
        if out[index] is None:
            block.append(index)
        elif block:
            blocks.append(block)
            block = []
    if block:
        blocks.append(block)
    return blocks


def _unframe_early(start: int, out: Sequence[str | None], frame: Sequence[bool], near_frame: list[bool]) -> None:
    """Before line `start`, clear `near_frame` of the lines that are no frame themselves, except
    next to the last run of kept frame lines (the article's header: a title above byline and date)."""
    before = list(compress(range(start), map(operator.is_, out[:start], repeat(None))))
    last = len(before) - 1
    while last >= 0 and not frame[before[last]]:
        last -= 1
    if last < 0:
        return
    first = last
    while first > 0 and frame[before[first - 1]]:
        first -= 1
    header = set(before[max(0, first - 1): last + 2])
    for index in compress(before, map(near_frame.__getitem__, before)):
        if not frame[index] and index not in header:
            near_frame[index] = False


def _drop_date_runs(start: int, out: list[str | None], frame: Sequence[bool], most: int) -> None:
    """Before line `start`, remove (`outside_main`) every run of more than `most` kept frame lines
    with no other kept line between them: a list of dates, not an article's header."""
    run: list[int] = []
    for index in itertools.chain(compress(range(start), map(operator.is_, out[:start], repeat(None))), (-1,)):
        if index >= 0 and frame[index]:
            run.append(index)
            continue
        if len(run) > most:
            for member in run:
                out[member] = "outside_main"
        run = []


def _list_items(kinds: Sequence[str], reasons: Sequence[str | None], frame: Sequence[bool],
                page: Sequence[str], numbers: Sequence[int], config: Config) -> list[bool]:
    """Per non-blank line: whether it is an item of a list that a kept line ending in a colon
    introduces (the kept lines right after it up to a removed line, a frame or prose)."""
    count = len(kinds)
    items = [False] * count
    if config.region_list_share <= 0 or not page:
        return items
    # Few lines end in a colon: find them in C, then walk on from each.
    for number in compress(range(len(page)), map(str.endswith, page, repeat(":"))):
        index = bisect.bisect_left(numbers, number)
        if reasons[index] is not None or frame[index]:
            continue
        end = index + 1
        while end < count and reasons[end] is None and not frame[end] and kinds[end] != GOOD:
            end += 1
        if end - index - 1 <= config.region_list_max_items:
            items[index + 1:end] = repeat(True, end - index - 1)
    return items


def _best_segment(kinds: Sequence[str], reasons: Sequence[str | None], words: Sequence[int],
                  flags: Sequence[int], frame: Sequence[bool], items: Sequence[bool],
                  config: Config) -> tuple[int, int]:
    """[start, end] of the main text, or (-1, -1) when no segment scores `region_min_score`.

    Prose that ends no sentence counts `region_unfinished_share` of its words; a page without a
    segment so is scored again at full weight (its only paragraph may lack a full stop). Prose
    that reads as a headline counts `region_headline_share` of its words in both passes."""
    share = config.region_unfinished_share
    scores = _line_scores(kinds, reasons, words, flags, frame, items, share, config)
    first, last = _first_segment(scores, config)
    if first < 0 and share != 1:
        scores = _line_scores(kinds, reasons, words, flags, frame, items, 1.0, config)
        first, last = _first_segment(scores, config)
    if first >= 0 and config.region_tail_share > 0:
        last = _trim_tail(scores, reasons, first, last, config)
    return first, last


def _trim_tail(scores: Sequence[float], reasons: Sequence[str | None], first: int, last: int,
               config: Config) -> int:
    """The end of the segment [first, last] cut at its first `CLOSING` line followed by at most
    `region_tail_share` of its prose in at most `region_tail_max_lines` prose lines."""
    gains = [max(score, 0.0) for score in scores[first:last + 1]]
    tail = sum(gains)
    bar = config.region_tail_share * tail
    prose_left = sum(1 for gain in gains if gain > 0)  # prose lines from `index` on: one pass, not one per line
    for index in range(first + 1, last + 1):
        tail -= gains[index - first - 1]
        prose_left -= gains[index - first - 1] > 0
        if reasons[index] in CLOSING and tail <= bar and prose_left <= config.region_tail_max_lines:
            end = index - 1
            while end > first and scores[end] <= 0:
                end -= 1
            return end
    return last


def _line_scores(kinds: Sequence[str], reasons: Sequence[str | None], words: Sequence[int], flags: Sequence[int],
                 frame: Sequence[bool], items: Sequence[bool], share: float, config: Config) -> list[float]:
    """Each line's score in the maximum-sum segment; unfinished prose scores `share` of its words."""
    line_cost, word_cost = config.region_line_cost, config.region_word_cost
    frame_cost, removed_cost = config.region_frame_cost, config.region_removed_cost
    ending = SENTENCE | ELIDED
    item_share = config.region_list_share
    headline_share = min(share, config.region_headline_share)
    return [
        (-frame_cost if reason in COMMENT_CHROME else -removed_cost) if reason is not None
        else (size if (flag & ending) == SENTENCE else headline_share * size if flag & HEADLINE
              else share * size) if kind == GOOD
        else -frame_cost if framed
        else item_share * size if item
        else -(line_cost + word_cost * size)
        for kind, reason, size, framed, flag, item in zip(kinds, reasons, words, frame, flags, items)
    ]


def _first_segment(scores: Sequence[float], config: Config) -> tuple[int, int]:
    """The first maximum-sum segment of `scores` scoring `region_min_score` and `region_first_share`
    of the best, run on past dips of up to `region_extend_lines` lines; (-1, -1) if none."""
    found: list[tuple[int, int, float]] = []  # Kadane: the best segment of each run of positive sums
    total = best = 0.0
    start = 0
    best_end = -1
    for index, score in enumerate(scores):
        if total <= 0:
            if best > 0:
                found.append((start, best_end, best))
            total = best = 0.0
            start, best_end = index, -1
        total += score
        if total > best:
            best, best_end = total, index
    if best > 0:
        found.append((start, best_end, best))
    if not found:
        return -1, -1
    bar = max(config.region_min_score, config.region_first_share * max(score for _, _, score in found))
    first, last = next(((first, last) for first, last, score in found if score >= bar), (-1, -1))
    if first >= 0 and config.region_extend_lines:
        # The segment runs on past a dip of up to `region_extend_lines` lines when the text after
        # the dip outweighs it (a date line or a subheading inside the article).
        total = best = sum(scores[first:last + 1])
        for index in range(last + 1, len(scores)):
            total += scores[index]
            if total > best:
                best, last = total, index
            elif index - last > config.region_extend_lines:
                break
    return first, last


def _reads_as_text(kind: str, words: int, flags: int, config: Config) -> bool:
    """Prose, a sentence, or a few words that are not a headline: what a comment says."""
    if kind == GOOD or flags & SENTENCE:
        return True
    return kind == SHORT and not flags & (HEADLINE | STAMPED) and words >= config.comment_body_min_words


def _is_comment_block(block: Sequence[int], kinds: Sequence[str], reasons: Sequence[str | None],
                      words: Sequence[int], flags: Sequence[int], frame: Sequence[bool], config: Config) -> bool:
    """A header or date line with prose within `frame_window` lines (any text at all right under a
    comments heading or widget: "Thanks!"), and not a teaser list."""
    window = config.frame_window
    under_heading = block[0] > 0 and reasons[block[0] - 1] in COMMENT_CHROME
    framed = False
    for position in compress(range(len(block)), map(frame.__getitem__, block)):
        index = block[position]
        nearby = block[max(0, position - window): position + window + 1]
        if under_heading and len(nearby) > 1 or any(
                other != index and _reads_as_text(kinds[other], words[other], flags[other], config)
                for other in nearby):
            framed = True
            break
    if not framed:
        return False
    headlines = sum(1 for index in block if kinds[index] == SHORT and flags[index] & HEADLINE)
    return not (headlines >= 2 and headlines >= config.teaser_min_headline_share * len(block))


def _inline_box(header: int, end: int, kinds: Sequence[str], reasons: Sequence[str | None],
                out: Sequence[str | None], words: Sequence[int], config: Config) -> list[int] | None:
    """The item lines of an inline box under `header`, or None if article paragraphs do not follow."""
    count = len(kinds)
    least = config.inline_paragraph_words
    items: list[int] = []
    for index in range(header + 1, end + 1):
        if out[index] is None:
            if kinds[index] == GOOD and words[index] >= least and any(
                    out[other] is None and kinds[other] == GOOD and words[other] >= least
                    for other in range(index + 1, min(count, index + 3))):
                return items
            items.append(index)
            if len(items) > config.inline_box_max_lines:
                return None
        elif reasons[index] in INDICATORS:
            return None
    return None


# --- decisions -----------------------------------------------------------------------------


def _page_lines(text: str) -> tuple[list[str], bool]:
    """The lines of `text` as `split_lines` sees them (a final newline adds no line), and whether
    the text ends with a newline."""
    if not text:
        return [], False
    parts = text.split("\n")
    ends_with_newline = text.endswith("\n")
    if ends_with_newline:
        parts.pop()
    return parts, ends_with_newline


def _removals(stripped: list[str], every: list[Verdict], context: _Context,
              templates: frozenset[str]) -> list[tuple[int, str]]:
    """(line number, reason) of every line to remove, in order, from the page's stripped lines and
    their verdicts (a blank line's is BLANK)."""
    config = context.config
    if stripped.count(""):
        numbers: Sequence[int] = list(compress(range(len(stripped)), stripped))
        verdicts = list(compress(every, stripped))
    else:
        numbers, verdicts = range(len(every)), every
    if not verdicts:
        return []
    keys, classes, reasons_of, words, flags, sizes = zip(*verdicts)
    kinds, verdict_reasons = list(classes), list(reasons_of)
    pins = context.pins
    if templates or pins:
        on_site = templates | pins if pins else templates
        for position in compress(range(len(keys)), map(on_site.__contains__, keys)):  # `_on_site`, inlined
            if keys[position] in pins:
                kinds[position], verdict_reasons[position] = BAD, "pinned"
            elif kinds[position] != BAD and kinds[position] != PROTECTED:
                kinds[position], verdict_reasons[position] = BAD, "template"
    reasons = harmonise(_revise(kinds, verdict_reasons, sizes, config))
    if config.main_region:
        reasons = main_region(kinds, reasons, words, flags, config, stripped, numbers, context.comment_formats)
    return list(compress(zip(numbers, reasons), map(operator.is_not, reasons, repeat(None))))


def decide(text: str, config: Config, templates: frozenset[str] = frozenset()) -> list[tuple[Line, str]]:
    """The lines of `text` to remove, each with its reason, in order."""
    parts, _ = _page_lines(text)
    stripped = list(map(str.strip, parts))
    context = _context(config)
    removals = _removals(stripped, context.verdicts([stripped])[0], context, templates)
    if not removals:
        return []
    starts = list(accumulate(map(len, parts), initial=0))
    return [(Line(number, starts[number] + number, starts[number] + number + len(parts[number]), parts[number]),
             reason) for number, reason in removals]


# --- stage API ---------------------------------------------------------------------------------


def learn(records: Iterable[Record], config: Config) -> dict[str, Any]:
    """Count normalised lines per site (record["site_key"], the input sub-folder; "" at top level) and
    return the learned templates as JSON: {"templates": [{"site", "line", "pages"}, ...]} sorted by site, line.

    Prose, comment headers, bylines and datelines are never learned; vetoed lines neither.
    Pinned lines are listed with site "*" and the number of pages they were seen on.
    The same as `combine` over `summarize` of each record (the form executors parallelise).
    """
    with _collector_paused():
        return combine((summarize(record, config) for record in records), config)


def summarize(record: Record, config: Config) -> tuple[str, list[str]]:
    """(site, sorted keys of the page's short lines): what `learn` counts of one page."""
    stripped = list(map(str.strip, str(record.get("text") or "").split("\n")))
    # Only short lines go into the set: long ones would be hashed for nothing.
    short = set(compress(stripped, map(operator.lt, map(str.count, stripped, repeat(" ")),
                                       repeat(config.template_max_words))))
    short.discard("")
    return str(record.get("site_key") or ""), sorted(set(_context(config).keys_of(list(short))))


def count_pages(summaries: Iterable[tuple[str, Sequence[str]]]) -> Counter[tuple[str, str]]:
    """Pages per (site, line key); the order of the summaries does not matter."""
    counts: Counter[tuple[str, str]] = Counter()
    for site, keys in summaries:
        counts.update(zip(repeat(site), keys))
    return counts


def combine(summaries: Iterable[tuple[str, Sequence[str]]], config: Config) -> dict[str, Any]:
    """The learned templates from every page's `summarize` (see `learn`)."""
    return templates_from_counts(count_pages(summaries), config)


def templates_from_counts(counts: Mapping[tuple[str, str], int], config: Config) -> dict[str, Any]:
    """The learned templates from the pages counted per (site, line key) (see `learn`)."""
    context = _context(config)
    rules, stopwords, veto, pins = context.rules, context.stopwords, context.veto, context.pins
    templates: list[dict[str, Any]] = []
    pin_counts: Counter[str] = Counter()
    if pins:
        for (site, key), pages in counts.items():
            if key in pins:
                pin_counts[key] += pages  # a page has one site: the sum over sites counts pages
    least = config.template_min_pages
    learnable = context.learnable
    for (site, key), pages in [(pair, pages) for pair, pages in counts.items() if pages >= least]:
        if key in pins or key in veto:
            continue
        found = learnable.get(key)
        if found is None:
            if len(learnable) >= MEMO_LINES:  # a speed cache: bounded, as the memos are
                learnable.clear()
            found = learnable[key] = not (is_protected(line_forms(key), rules)
                                          or is_good(line_signals(key, stopwords), config))
        if found:
            templates.append({"site": site, "line": key, "pages": pages})
    for key in pins:
        templates.append({"site": "*", "line": key, "pages": pin_counts[key], "pinned": True})
    templates.sort(key=lambda entry: (entry["site"], entry["line"]))
    return {"templates": templates}


def site_templates(state: dict[str, Any], site: str, config: Config) -> frozenset[str]:
    """The learned template lines that apply to `site`, less the config's vetoes."""
    templates = _templates_by_site(state.get("templates", [])).get(site, frozenset())
    return templates - _context(config).veto if config.veto else templates


_LAST_STATE: list[Any] = [None, {}]
"""The last templates list seen and its index: the runner passes one state to every record."""


def _templates_by_site(entries: list[dict[str, Any]]) -> dict[str, frozenset[str]]:
    """Index learned (not pinned) templates by site; memoised on the list's identity (state is read-only)."""
    if _LAST_STATE[0] is entries:
        return _LAST_STATE[1]
    by_site: dict[str, set[str]] = {}
    for entry in entries:
        if not entry.get("pinned"):
            by_site.setdefault(str(entry["site"]), set()).add(str(entry["line"]))
    index = {site: frozenset(lines) for site, lines in by_site.items()}
    _LAST_STATE[0], _LAST_STATE[1] = entries, index
    return index


# Spans are built without the frozen dataclass's slower __init__: `object.__new__`, then each
# slot set through its descriptor, one map per field over all of a page's spans (`_outcome`).
_new = object.__new__
_SET_START, _SET_END = Span.start.__set__, Span.end.__set__  # type: ignore[attr-defined]
_SET_REASON, _SET_ORIGINAL = Span.reason.__set__, Span.original.__set__  # type: ignore[attr-defined]
_SET_REPLACEMENT = Span.replacement.__set__  # type: ignore[attr-defined]


def process(record: Record, config: Config, state: dict[str, Any]) -> Outcome:
    """record["text"] in; returns Outcome(records=[new record with text minus removed lines, plus "markers"],
    spans=[one span per removed line (the line and its newline) with its reason])."""
    return process_batch([record], config, state)[0]


def process_batch(records: Sequence[Record], config: Config, state: dict[str, Any]) -> list[Outcome]:
    """`process` of each record, in order: the batch's new lines are classified together."""
    if not config.enabled:
        return [Outcome(records=[{**record, "markers": []}]) for record in records]
    with _collector_paused():
        return _process_batch(records, config, state)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a batch. A batch allocates one span, one marker
    and several lists per removed line, all of which outlive it and none of which form cycles: the
    collector would otherwise re-scan them (and everything the caller holds) many times over,
    which measured as half the CPU time of building the outcomes."""
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def _process_batch(records: Sequence[Record], config: Config, state: dict[str, Any]) -> list[Outcome]:
    """`process_batch` of an enabled stage: one lookup of the verdicts and one template index per batch."""
    context = _context(config)
    pages = [_page_lines(str(record.get("text") or ""))[0] for record in records]
    stripped = [list(map(str.strip, parts)) for parts in pages]
    verdicts = context.verdicts(stripped)
    by_site = _templates_by_site(state.get("templates", []))
    on_site: dict[str, frozenset[str]] = {}
    outcomes: list[Outcome] = []
    for record, parts, lines, every in zip(records, pages, stripped, verdicts):
        site = str(record.get("site_key") or "")
        templates = on_site.get(site)
        if templates is None:
            templates = by_site.get(site, frozenset())
            templates = on_site[site] = templates - context.veto if config.veto else templates
        outcomes.append(_outcome(record, parts, lines, _removals(lines, every, context, templates)))
    return outcomes


def _outcome(record: Record, parts: list[str], stripped: list[str], removals: list[tuple[int, str]]) -> Outcome:
    """The record without its removed lines, one span and one marker per removed line.

    Built column by column (one C-level map per field): a page can have hundreds of removals."""
    text = str(record.get("text") or "")
    output = dict(record)
    if not removals:
        output["markers"] = []
        return Outcome(records=[output])
    numbers, reasons = map(list, zip(*removals))
    # Where each line begins (and where the text would go on after the last one): a newline per line before.
    begins = list(map(operator.add, accumulate(map(len, parts), initial=0), itertools.count()))
    starts = list(map(begins.__getitem__, numbers))
    ends = list(map(begins.__getitem__, map(operator.add, numbers, repeat(1))))  # the line and its newline
    if ends[-1] > len(text):  # the last line has none
        ends[-1] = len(text)
    spans = list(map(_new, repeat(Span, len(numbers))))
    for setter, values in ((_SET_START, starts), (_SET_END, ends), (_SET_REASON, reasons),
                           (_SET_ORIGINAL, map(text.__getitem__, map(slice, starts, ends))),
                           (_SET_REPLACEMENT, repeat("", len(numbers)))):
        collections.deque(map(setter, spans, values), maxlen=0)
    # The output index of the next kept line: the kept lines before the removed one.
    output["markers"] = list(map(list, zip(map(operator.sub, numbers, itertools.count()), reasons,
                                           map(stripped.__getitem__, numbers))))
    output["text"] = "".join(map(text.__getitem__, map(slice, [0, *ends], [*starts, len(text)])))
    notes = dict(sorted(Counter(reasons).items()))
    return Outcome(records=[output], spans=spans, notes={"removed": notes})


def build_markers(text: str, removed: list[tuple[Line, str]]) -> list[list[int | str]]:
    """[output index of the first kept line after each removed line, its reason, its text].

    Later stages read them: the split stage cuts feeds at them, the metadata stage
    finds the site's name in widget phrases ("support The Duran on Patreon")."""
    return [[line.index - position, reason, line.text.strip()] for position, (line, reason) in enumerate(removed)]
