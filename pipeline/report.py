"""The audit as static HTML: `<output>/audit/index.html` and one page per input.

`write_report(output_dir)` reads the stage folders of a run, rebuilds every page
from the ledger (pipeline/ledger.py) and writes:

- `audit/index.html`: the ledger check, a table per stage, a chart (inline SVG)
  of what each stage removed by reason, the page list (with a filter box),
  learned templates and duplicate clusters;
- `audit/pages/<page>.html`: every line of the input page, coloured by its final
  label (article, metadata roles, boilerplate by reason, comments indented by
  thread depth, related articles, duplicates), the reason on hover.

Every page is read, rebuilt and checked, and counts in the index; but a file of its own is
written for a bounded sample only (`report.max_pages`, `ReportConfig`): the files weigh ~6x
the input (116 MB for the 20 MB bench), which at a few hundred thousand pages nobody can
browse, while the stage folders keep the complete audit. The sample (`sample_pages`) takes
each site's pages in the order of a hash of their id, round-robin over the sites, so it
depends on the run's pages alone (not their order, the workers or the run); every page with
a problem (`needs_a_look`) is rendered over the bound. `write_pages` (`audit --page ID`)
writes any other page on demand. With no more pages than the bound, all are rendered.

No server and no external assets: CSS and JS are inline, so the folder can be
copied or zipped and opened anywhere. Lines carry `data-label`, `data-group`,
`data-stage`, `data-reason` and, for comment lines, `data-depth` and
`data-comment`, so tools (and the browser test) can count what rendered.
The folder is built under a temp name and renamed into place.

The pages are read, rebuilt and written a group of consecutive pages at a time
(`ledger.cut_run` finds each group's byte ranges in the stage files without parsing
them, `ledger.read_group` parses them). With several workers one pool of processes takes
the groups one by one and sends back only each page's row of the index and the group's
share of the totals, so this process parses nothing; the groups depend on the run alone,
so any number of workers writes the same files. In each process a thread (`io.StagedWriter`)
creates and writes a page's file while the next page is rendered: right after a run's stages,
with the disk writing back what they wrote, creating a file blocks for ~1 ms (2,318 pages of
the 20 MB bench: ~2.3 s), which that thread waits out instead of the rendering.
"""

from __future__ import annotations

import difflib
import hashlib
import html
import json
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pipeline.errors import InputError
from pipeline.executors.pool import fork_map
from pipeline.io import StagedWriter, staging_dir, write_text, write_text_staged
from pipeline.ledger import (
    LineInfo,
    PageGroup,
    PageResult,
    Problem,
    RunCut,
    RunOutOfOrder,
    StageData,
    collector_paused,
    cut_run,
    load_run,
    page_lines,
    page_of_id,
    read_group,
    rebuild_page,
    stage_folders,
)
from pipeline.stages.ingest import site_key

REPORT_DIR = "audit"
SOURCE_FILE = ".source"  # the fingerprint of what the report was made from
PAGES_PER_BATCH = 256  # at most this many pages in a group: bounds a worker's memory (~60 MB on news pages)
GROUP_BYTES = 256 * 1024
"""Bytes of the first stage's records per group of pages (a page's work follows its size): 20
groups on the 5 MB bench, so a worker's last group is a small part of its share, while finding a
group's byte ranges (under 1 ms) and sending it to a worker cost little beside the group's own
work (~0.15 s of CPU there)."""

MAX_PAGES = 1000
"""Page files written by default: a sample a reviewer can browse, ~50 MB of HTML on news pages
(51 MB on the 20 MB bench) and ~1.5 s of CPU to render; runs of up to this many pages (the
seeds, the dev sets, the 5 MB bench) are rendered whole."""


class ReportConfig(BaseModel):
    """The `report:` section: how much of the audit becomes HTML."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Pages that get a file of their own (plus every page with a problem); 0: every page.
    max_pages: int = Field(MAX_PAGES, ge=0)


GROUPS: dict[str, tuple[str, str]] = {
    # group: (legend name, what it means)
    "article": ("article", "text of the main article"),
    "meta": ("metadata", "title, subtitle, byline, dateline, site name, bio: moved to fields"),
    "related": ("related article", "a full article from the page's feed, its own record"),
    "comment": ("comment", "a reader comment, indented by thread depth"),
    "thread": ("comment frame", "comment headers, bullets and section chrome: moved to fields or removed"),
    "boilerplate": ("boilerplate", "navigation, widgets, prompts… removed (reason on the chip)"),
    "feed": ("feed / no article", "headline stubs of a feed, dropped related articles, pages with no article"),
    "duplicate": ("duplicate", "a copy of a record kept elsewhere"),
    "clean": ("clean", "a line emptied by the clean stage"),
    "other": ("other", "a stage this report does not know, or a line the ledger could not rebuild"),
    "blank": ("blank", "an empty line"),
}

CSS = """
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#ffffff;--panel:#f6f8fa;
--article:#ffffff;--article-b:#8c959f;--meta:#ddf4ff;--meta-b:#0969da;--related:#fbefff;--related-b:#8250df;
--comment:#dafbe1;--comment-b:#1a7f37;--thread:#f1f8f3;--thread-b:#6fdd8b;--boilerplate:#f6f8fa;
--boilerplate-b:#afb8c1;--feed:#fff8c5;--feed-b:#bf8700;--duplicate:#fff1e5;--duplicate-b:#bc4c00;
--clean:#ffebe9;--clean-b:#cf222e;--other:#ffebe9;--other-b:#82071e}
*{box-sizing:border-box}
body{margin:0;color:var(--fg);background:var(--bg);font:15px/1.55 system-ui,-apple-system,"Segoe UI",
Roboto,"Noto Sans",Helvetica,Arial,sans-serif}
main{max-width:1180px;margin:0 auto;padding:24px 28px 64px}
h1{font-size:1.6rem;margin:.2em 0 .1em;line-height:1.25;word-break:break-word}
h2{font-size:1.15rem;margin:2.2em 0 .6em;padding-bottom:.3em;border-bottom:1px solid var(--line)}
a{color:#0969da;text-decoration:none}a:hover{text-decoration:underline}
code,.mono{font-family:ui-monospace,SFMono-Regular,"SF Mono",Menlo,Consolas,monospace;font-size:.88em}
.sub{color:var(--muted);margin:.2em 0 1em}
.lead{font-size:1.05em;margin:.2em 0 .6em}
nav.top{display:flex;gap:1.2em;align-items:center;font-size:.92em;color:var(--muted);margin-bottom:.8em}
.status{border-radius:8px;padding:.7em 1em;margin:1em 0;border:1px solid}
.status.ok{background:#dafbe1;border-color:#4ac26b}.status.bad{background:#ffebe9;border-color:#ff8182}
.status ul{margin:.4em 0 0;padding-left:1.2em}
table{border-collapse:collapse;width:100%;font-size:.9em}
.wide{overflow-x:auto}
#pages{font-size:.86em}#pages th{white-space:nowrap}#pages td .src{display:block;color:var(--muted);font-size:.9em}
th,td{text-align:left;padding:.38em .6em;border-bottom:1px solid var(--line);vertical-align:top}
th{background:var(--panel);font-weight:600;position:sticky;top:0}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
th.sortable{cursor:pointer;user-select:none}th.sortable:after{content:" \\2195";color:#8c959f;font-size:.8em}
tr:hover td{background:#f6f8fa}
.reasons{color:var(--muted);font-size:.92em}
.chart{overflow-x:auto;background:var(--panel);border:1px solid var(--line);border-radius:8px;padding:8px}
.filter{display:flex;gap:.8em;align-items:center;margin:.4em 0 .8em}
.filter input{flex:1;max-width:420px;font:inherit;padding:.45em .7em;border:1px solid var(--line);border-radius:6px}
.count{color:var(--muted);font-size:.9em}
.pill{display:inline-block;min-width:2.2em;padding:0 .45em;border-radius:10px;font-size:.82em;text-align:center;
border:1px solid var(--line)}
.legend{display:flex;flex-wrap:wrap;gap:.5em;margin:.6em 0 1.2em;position:sticky;top:0;background:var(--bg);
padding:.5em 0;z-index:2;border-bottom:1px solid var(--line)}
.legend button{font:inherit;font-size:.85em;display:flex;align-items:center;gap:.4em;padding:.25em .65em;
border:1px solid var(--line);border-radius:14px;background:#fff;cursor:pointer}
.legend button.off{opacity:.45;text-decoration:line-through}
.sw{width:1.1em;height:1.1em;border-radius:3px;display:inline-block;border:1px solid #0000001f;
border-left:5px solid}
.sw.g-article{background:#fff}
.lines{list-style:none;margin:0;padding:0}
.ln:target{outline:2px solid #0969da;outline-offset:1px}
.ln{display:grid;grid-template-columns:3.4em 11.5em 1fr;align-items:start;border-left:4px solid transparent;
margin:1px 0;border-radius:3px}
.ln .no{color:#8c959f;text-align:right;padding:.25em .7em .25em 0;font:12px/1.9 ui-monospace,Menlo,Consolas,monospace}
.ln .chip{justify-self:start;max-width:100%;font-size:11px;line-height:1.55;margin:.4em .6em 0 0;padding:0 .55em;
border-radius:9px;background:#ffffffc0;border:1px solid #0000001f;color:var(--muted);white-space:nowrap;
overflow:hidden;text-overflow:ellipsis}
.ln .tx{padding:.25em .8em .25em 0;white-space:pre-wrap;overflow-wrap:anywhere;
margin-left:calc(var(--depth,0) * 1.6em)}
.ln.blank{height:.55em;margin:0}.ln.blank>*{display:none}
.g-article{background:var(--article);border-left-color:var(--article-b)}
.g-meta{background:var(--meta);border-left-color:var(--meta-b)}
.g-meta[data-label=title] .tx{font-weight:650;font-size:1.08em}
.g-related{background:var(--related);border-left-color:var(--related-b)}
.g-comment{background:var(--comment);border-left-color:var(--comment-b)}
.g-comment[data-depth="1"]{background:#e6fbe9}.g-comment[data-depth="2"]{background:#eefcf0}
.g-comment[data-depth="3"],.g-comment[data-depth="4"],.g-comment[data-depth="5"]{background:#f4fdf5}
.g-comment .tx{border-left:2px solid #4ac26b55;padding-left:.7em}
.g-thread{background:var(--thread);border-left-color:var(--thread-b)}.g-thread .tx{color:#1a7f37;font-style:italic}
.g-boilerplate{background:var(--boilerplate);border-left-color:var(--boilerplate-b)}
.g-boilerplate .tx{color:#8c959f}
.g-feed{background:var(--feed);border-left-color:var(--feed-b)}
.g-duplicate{background:var(--duplicate);border-left-color:var(--duplicate-b)}
.g-clean{background:var(--clean);border-left-color:var(--clean-b)}
.g-other{background:var(--other);border-left-color:var(--other-b)}
.g-blank{border-left-color:#eaeef2}
.sep{margin:1.1em 0 .3em 3.4em;font-size:.85em;color:var(--muted);font-weight:600}
.ln.start{margin-top:.6em}
.changed .no:after{content:"*";color:#cf222e}
footer{margin-top:3em;color:var(--muted);font-size:.88em}
@media (max-width:720px){.ln{grid-template-columns:2.6em 1fr}.ln .chip{display:none}}
"""

INDEX_JS = """
(function(){
  var box=document.getElementById('filter'), rows=[].slice.call(document.querySelectorAll('#pages tbody tr')),
      count=document.getElementById('shown');
  function apply(){var q=box.value.trim().toLowerCase(), n=0;
    rows.forEach(function(r){var hit=!q||r.getAttribute('data-search').indexOf(q)>=0;r.hidden=!hit;if(hit)n++;});
    count.textContent=n+' of '+rows.length+' pages';}
  box.addEventListener('input',apply);apply();
  document.querySelectorAll('th.sortable').forEach(function(th){th.addEventListener('click',function(){
    var table=th.closest('table'), body=table.tBodies[0], i=[].indexOf.call(th.parentNode.children,th),
        asc=th.getAttribute('data-dir')!=='asc', num=th.classList.contains('num');
    th.setAttribute('data-dir',asc?'asc':'desc');
    [].slice.call(body.rows).sort(function(a,b){var x=a.cells[i].getAttribute('data-sort')||a.cells[i].textContent,
      y=b.cells[i].getAttribute('data-sort')||b.cells[i].textContent;
      if(num){x=parseFloat(x)||0;y=parseFloat(y)||0;return asc?x-y:y-x;}
      return asc?x.localeCompare(y):y.localeCompare(x);}).forEach(function(r){body.appendChild(r);});});});
})();
"""

PAGE_JS = """
(function(){
  document.querySelectorAll('.legend button').forEach(function(b){b.addEventListener('click',function(){
    var g=b.getAttribute('data-group'), off=!b.classList.contains('off');b.classList.toggle('off',off);
    document.querySelectorAll('.ln.g-'+g).forEach(function(l){l.hidden=off;});});});
})();
"""

SHORT = {"article": "article", "meta": "meta", "boilerplate": "boilerplate", "thread": "frame",
         "comment": "comment", "related": "related", "feed": "feed", "duplicate": "dup."}

STAGE_COLOURS = {"ingest": "#6e7781", "clean": "#cf222e", "boilerplate": "#8c959f", "split": "#1a7f37",
                 "metadata": "#0969da", "dedup": "#bc4c00", "langid": "#8250df"}


def _normalise(text: str) -> str:
    """The boilerplate stage's comparison form of a line (NFKC, spaces collapsed, case-folded)."""
    return " ".join(unicodedata.normalize("NFKC", text).split()).casefold()


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def page_file(page: str) -> str:
    """A safe, stable file name for a page id (ids may hold '/', '#', spaces)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", page).strip("._") or "page"
    if slug != page or len(slug) > 100:
        slug = f"{slug[:80]}-{hashlib.sha1(page.encode('utf-8')).hexdigest()[:8]}"
    return f"{slug}.html"


def _document(title: str, body: str, script: str = "") -> str:
    js = f"<script>{script}</script>" if script else ""
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head>\n"
            f"<body><main>\n{body}\n</main>{js}</body></html>\n")


def _fmt(n: Any) -> str:
    return f"{n:,}" if isinstance(n, int) else esc(n)


# --- the page view -------------------------------------------------------------------------------


def _line_title(line: LineInfo) -> str:
    """The hover text after "line N: "."""
    who = f"decided by {line.stage}" if line.stage else ""
    parts = [line.label + (f" (depth {line.depth})" if line.depth is not None else "")]
    if who:
        parts.append(f"{who} — {line.detail}")
    elif line.detail:
        parts.append(line.detail)
    if line.changes:
        parts.append("also: " + ", ".join(line.changes))
    return "\n".join(parts)


def _chip(line: LineInfo) -> str:
    if line.label.startswith("boilerplate:"):
        return line.label.split(":", 1)[1]
    if line.label == "comment":
        return f"comment · {line.depth}"
    if line.label == "related" and line.record:
        return f"related · {line.record.rsplit('#', 1)[-1]}"
    return line.label.replace("_", " ")


def _owners(lines: list[LineInfo], records: dict[str, dict[str, Any]]) -> dict[int, str]:
    """The record each line belongs to, for grouping on screen: comment and related lines by their
    record; a comment frame line (header, signature, "Reply") by the comment before or after it
    whose author or date it names (the one after when neither or both do)."""
    owners: dict[int, str] = {}
    content = [line for line in lines if line.group != "blank"]
    following: list[str | None] = [None] * len(content)
    upcoming: str | None = None
    for i in range(len(content) - 1, -1, -1):
        following[i] = upcoming
        if content[i].group == "comment" and content[i].record:
            upcoming = content[i].record
    before: str | None = None
    for i, line in enumerate(content):
        if line.record and (line.group in ("comment", "related") or records.get(line.record, {}).get("role")
                            == "related"):
            owners[line.number] = line.record
            if line.group == "comment":
                before = line.record
        elif line.group == "thread":
            text = line.text.casefold()

            def score(record_id: str | None) -> int:
                record = records.get(record_id or "", {})
                author = str(record.get("author") or "").casefold()
                posted = str(record.get("posted_raw") or "").casefold()
                return (2 if posted and posted in text else 0) + (1 if author and author in text else 0)

            after = following[i]
            owner = before if before and score(before) > score(after) else after or before
            if owner:
                owners[line.number] = owner
        else:
            before = None  # an article or boilerplate line ends the comment before it
    return owners


def render_page(result: PageResult, lines: list[LineInfo], prev_file: str | None, next_file: str | None,
                position: tuple[int, int]) -> str:
    source = result.source or {}
    counts = Counter(line.group for line in lines)
    sha = str(source.get("source_sha256", ""))[:16]
    body = [_nav(prev_file, next_file, position), f"<h1>{esc(result.page)}</h1>",
            f'<p class="sub"><code>{esc(source.get("source", "?"))}</code> · {_fmt(source.get("bytes", "?"))} '
            f'bytes · {esc(source.get("encoding", "?"))} · sha256 <code>{esc(sha)}…</code></p>']
    main_record = result.records.get(result.page) or {}
    if main_record.get("title"):
        byline = ", ".join(main_record.get("authors") or [])
        body.append(f'<p class="lead">“{esc(main_record["title"])}”{" — " + esc(byline) if byline else ""}</p>')
    body.append(_status_block(result))
    kept = [r for r in result.records.values() if r["id"] not in result.borrowed]
    comments = sum(1 for r in kept if r.get("kind") == "comment")
    related = sum(1 for r in kept if r.get("role") == "related")
    body.append(f'<p class="sub">{len(lines)} lines · {comments} comments · {related} related articles · '
                'hover a line for the stage and the reason; click a legend entry to hide those lines.</p>')
    legend = ['<div class="legend" role="group" aria-label="legend">']
    for group, (name, meaning) in GROUPS.items():
        if counts.get(group):
            legend.append(f'<button type="button" data-group="{group}" title="{esc(meaning)}">'
                          f'<span class="sw g-{group}"></span>{esc(name)} '
                          f'<span class="pill">{counts[group]}</span></button>')
    legend.append("</div>")
    body.append("".join(legend))
    owners = _owners(lines, result.records)
    out = ['<ol class="lines">']
    last_related: str | None = None
    previous_owner: str | None = None
    # Lines with the same verdict share their escaped data attributes, chip and hover text.
    shared: dict[tuple[Any, ...], tuple[str, str, str]] = {}
    for line in lines:
        owner = owners.get(line.number)
        starts = line.group != "blank" and owner is not None and owner != previous_owner
        if line.group != "blank":
            previous_owner = owner
        record = result.records.get(line.record or "") if line.record else None
        if record is not None and record.get("role") == "related" and line.record != last_related:
            last_related = line.record
            title = record.get("title") or ""
            out.append(f'<li class="sep" aria-hidden="true">related article '
                       f'{esc((line.record or "").rsplit("#", 1)[-1])}{": " + esc(title) if title else ""}</li>')
        classes = f"ln g-{line.group}" + (" changed" if line.changes else "") + (" start" if starts else "")
        key = (line.label, line.group, line.stage, line.reason, line.detail, line.depth, line.record,
               tuple(line.changes))
        made = shared.get(key)
        if made is None:
            made = shared[key] = _line_parts(line)
        data, chip, title = made
        style = ""
        if line.label == "comment" and line.depth is not None:
            style = f' style="--depth:{line.depth}"'
        elif line.group == "thread" and owner is not None:
            style = f' style="--depth:{int(result.records.get(owner, {}).get("depth") or 0)}"'
        if line.group == "blank":
            out.append(f'<li id="L{line.number}" class="{classes}" {data}{style}></li>')
            continue
        out.append(f'<li id="L{line.number}" class="{classes}" {data}{style} title="line {line.number}: {title}">'
                   f'<span class="no">{line.number}</span><span class="chip">{chip}</span>'
                   f'<span class="tx">{html.escape(line.text.strip())}</span></li>')
    out.append("</ol>")
    body.append("\n".join(out))
    body.append('<footer><a href="../index.html#pages">← all pages</a> · lines marked * were also changed '
                'by another stage (see the hover text).</footer>')
    return _document(f"{result.page} — audit", "\n".join(body), PAGE_JS)


def _nav(prev_file: str | None, next_file: str | None, position: tuple[int, int]) -> str:
    """A page's navigation bar: the first element of its body."""
    nav = ['<nav class="top"><a href="../index.html#pages">← all pages</a>']
    nav.append(f'<a href="{esc(prev_file)}">‹ previous</a>' if prev_file else '<span>‹ previous</span>')
    nav.append(f'<a href="{esc(next_file)}">next ›</a>' if next_file else '<span>next ›</span>')
    nav.append(f'<span>page {position[0]} of {position[1]}</span></nav>')
    return "".join(nav)


def _line_parts(line: LineInfo) -> tuple[str, str, str]:
    """A line's data attributes, chip and hover text (after "line N: "), escaped."""
    data = f'data-label="{esc(line.label)}" data-group="{line.group}"'
    if line.stage:
        data += f' data-stage="{esc(line.stage)}" data-reason="{esc(line.reason)}"'
    if line.label == "comment" and line.depth is not None:
        data += f' data-depth="{line.depth}" data-comment="{esc(line.record)}"'
    if line.group == "blank":
        return data, "", ""
    return data, esc(_chip(line)), esc(_line_title(line))


def _status_block(result: PageResult) -> str:
    if result.problem is None:
        text = (f"✓ Rebuilt character for character from the final records and the spans "
                f"({len(result.truth or ''):,} characters; {result.implicit:,} of them whitespace that split "
                f"does not record, rule W")
        if result.borrowed:
            text += f"; {len(result.borrowed)} dropped record(s) taken from dedup's input, rule D"
        return f'<div class="status ok">{esc(text)}).</div>'
    return (f'<div class="status bad"><strong>The ledger does not rebuild this page.</strong> '
            f'{esc(result.problem)}<br>Labels below may be misplaced.</div>')


# --- the index ---------------------------------------------------------------------------------------


def _stage_rows(run: list[StageData]) -> str:
    rows = []
    for stage in run:
        stats = stage.stats
        reasons = ", ".join(f"{esc(r)} {v['spans']}" for r, v in stats.get("spans_by_reason", {}).items())
        drops = ", ".join(f"dropped {esc(r)} {n}" for r, n in stats.get("dropped_by_reason", {}).items())
        timing = stats.get("timing", {}).get("seconds")
        chars_in, chars_out = stats.get("characters_in", 0), stats.get("characters_out", 0)
        rows.append(
            f"<tr><td><strong>{esc(stage.name)}</strong></td>"
            f'<td class="num">{_fmt(stats.get("documents_in", 0))}</td>'
            f'<td class="num">{_fmt(stats.get("documents_out", 0))}</td>'
            f'<td class="num">{_fmt(chars_in)}</td><td class="num">{_fmt(chars_out)}</td>'
            f'<td class="num">{_fmt(chars_in - chars_out)}</td>'
            f'<td class="reasons">{"; ".join(x for x in (reasons, drops) if x) or "–"}</td>'
            f'<td class="num">{esc(timing) if timing is not None else "–"}</td></tr>')
    return ("<table><thead><tr><th>stage</th><th class=num>docs in</th><th class=num>docs out</th>"
            "<th class=num>chars in</th><th class=num>chars out</th><th class=num>chars removed</th>"
            "<th>spans and drops by reason</th><th class=num>seconds</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def _dropped_chars(run: list[StageData], found: dict[tuple[str, str], tuple[int, int]]) -> None:
    """Adds to `found`: (stage, drop reason) -> (records, characters) of records dropped
    without spans, in this part of the run."""
    for position in range(1, len(run)):
        stage, before = run[position], run[position - 1]
        texts = {str(r["id"]): len(str(r.get("text", ""))) for records in before.records.values() for r in records}
        for entries in stage.entries.values():
            for entry in entries:
                if entry.get("dropped") and not entry.get("spans"):
                    key = (stage.name, str(entry["dropped"]))
                    n, chars = found.get(key, (0, 0))
                    found[key] = (n + 1, chars + texts.get(str(entry.get("id")), 0))


def chart_svg(run: list[StageData], dropped: dict[tuple[str, str], tuple[int, int]]) -> str:
    """Horizontal bars: characters each stage removed or changed, by reason."""
    rows: list[tuple[str, str, int, str]] = []  # stage, reason, characters, caption
    for stage in run:
        for reason, value in sorted(stage.stats.get("spans_by_reason", {}).items(),
                                    key=lambda kv: (-kv[1]["characters"], kv[0])):
            rows.append((stage.name, reason, int(value["characters"]),
                         f"{value['characters']:,} chars · {value['spans']:,} spans"))
    for (name, reason), (n, chars) in sorted(dropped.items()):
        rows.append((name, f"dropped: {reason}", chars, f"{chars:,} chars · {n:,} records"))
    if not rows:
        return '<p class="sub">No stage removed or changed anything.</p>'
    label_w, bar_w, caption_w, row_h, top = 250, 560, 190, 24, 8
    biggest = max(chars for _, _, chars, _ in rows) or 1
    height = top * 2 + row_h * len(rows)
    width = label_w + bar_w + caption_w
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="characters removed by stage and reason" '
             'font-family="system-ui,-apple-system,Segoe UI,Roboto,sans-serif" font-size="12">']
    previous = None
    for i, (name, reason, chars, caption) in enumerate(rows):
        y = top + i * row_h
        colour = STAGE_COLOURS.get(name, "#57606a")
        if name != previous and i:
            parts.append(f'<line x1="0" x2="{width}" y1="{y}" y2="{y}" stroke="#d1d9e0"/>')
        stage_text = f'<tspan font-weight="600" fill="{colour}">{esc(name)}</tspan> ' if name != previous else ""
        parts.append(f'<text x="{label_w - 10}" y="{y + 16}" text-anchor="end" fill="#1f2328">'
                     f'{stage_text}{esc(reason)}</text>')
        length = max(2, round(bar_w * chars / biggest))
        parts.append(f'<rect x="{label_w}" y="{y + 5}" width="{length}" height="{row_h - 10}" rx="3" fill="{colour}" '
                     f'fill-opacity="0.8"><title>{esc(name)} · {esc(reason)}: {esc(caption)}</title></rect>')
        parts.append(f'<text x="{label_w + length + 8}" y="{y + 16}" fill="#59636e">{esc(caption)}</text>')
        previous = name
    parts.append("</svg>")
    return "".join(parts)


Place = tuple[str | None, str | None, tuple[int, int]]
"""Where a page file sits among the rendered pages: previous file, next file, (position, count)."""


@dataclass(frozen=True)
class PageSummary:
    """What the index needs of one page, made where the page was read and checked."""

    page: str
    problem: Problem | None
    characters: int  # of ingest's decoded text
    implicit: int  # whitespace split does not record (rule W)
    borrowed: int  # dropped records taken from dedup's input (rule D)
    row: str = ""  # the page's row of the index's page table, if it was rendered
    place: Place | None = None  # the navigation its file was written with; None: not rendered

    @property
    def ok(self) -> bool:
        return self.problem is None


def sample_pages(pages: Sequence[str], max_pages: int) -> set[str]:
    """The pages that get a file of their own: all of them if there are at most `max_pages`
    (0: no bound); else `max_pages` of them, taken round-robin over the sites (in sorted
    order) from each site's pages ordered by the sha1 of their id, so each site is shown
    and the choice does not depend on the order the pages come in."""
    if not max_pages or len(pages) <= max_pages:
        return set(pages)
    by_site: dict[str, list[str]] = {}
    for page in pages:
        by_site.setdefault(site_key(page), []).append(page)
    queues = [sorted(found, key=lambda page: (hashlib.sha1(page.encode("utf-8")).hexdigest(), page))
              for _, found in sorted(by_site.items())]
    chosen: set[str] = set()
    for rank in range(max(len(queue) for queue in queues)):
        for queue in queues:
            if rank < len(queue):
                chosen.add(queue[rank])
                if len(chosen) == max_pages:
                    return chosen
    return chosen


def needs_a_look(result: PageResult, run: Sequence[StageData]) -> bool:
    """Whether a page is rendered over the bound: the ledger does not rebuild it, a stage
    failed on it or on one of its records (quarantined), or text of it lies past what the
    ledger rebuilt (lines shown as "not rebuilt")."""
    if result.problem is not None:
        return True
    if any(entry.get("error") for stage in run for entry in stage.entries.get(result.page, ())):
        return True
    rebuilt = len(result.tape) if result.tape is not None else 0
    return bool((result.truth or "")[rebuilt:].strip())


def _page_row(result: PageResult, lines: list[LineInfo], filename: str) -> str:
    groups = Counter(line.group for line in lines)
    labels = sorted({line.label for line in lines})
    final = [r for r in result.records.values() if r["id"] not in result.borrowed]
    comments = sum(1 for r in final if r.get("kind") == "comment")
    kept = sum(len(str(r.get("text", ""))) for r in final)
    total = len(result.truth or "")
    share = 100.0 * kept / total if total else 0.0
    source = (result.source or {}).get("source", "")
    status = "ok" if result.ok else "problem"
    search = " ".join([result.page, str(source), status, *labels]).lower()
    cells = [
        f'<td data-sort="{esc(result.page)}"><a href="pages/{esc(filename)}">{esc(result.page)}</a>'
        f'<span class="src mono">{esc(source)}</span></td>',
        *(f'<td class="num">{groups.get(g, 0) or ""}</td>' for g in ("article", "meta", "boilerplate", "thread",
                                                                      "comment", "related", "feed", "duplicate")),
        f'<td class="num">{comments or ""}</td>',
        f'<td class="num" data-sort="{share:.2f}">{share:.0f}%</td>',
        f'<td>{"✓" if result.ok else "✗ " + esc(result.problem.stage if result.problem else "")}</td>',
    ]
    return f'<tr data-search="{esc(search)}">{"".join(cells)}</tr>'


def _learned(run: list[StageData]) -> dict[str, dict[str, Any]]:
    stage = next((s for s in run if s.name == "boilerplate"), None)
    if stage is None or stage.folder is None or not (stage.folder / "state.json").is_file():
        return {}
    state = json.loads((stage.folder / "state.json").read_text(encoding="utf-8"))
    return {str(t.get("line")): t for t in state.get("templates", [])}


def _template_order(entry: dict[str, Any]) -> tuple[int, str, str]:
    return -int(entry.get("pages") or 0), str(entry.get("site")), str(entry.get("line"))


def _template_hits(run: list[StageData], hits: Counter[str]) -> None:
    """Adds to `hits` the lines this part of the run removed as learned or pinned templates."""
    stage = next((s for s in run if s.name == "boilerplate"), None)
    if stage is None:
        return
    for entries in stage.entries.values():
        for entry in entries:
            for span in entry.get("spans", []):
                if span.get("reason") in ("template", "pinned"):
                    hits[_normalise(str(span.get("original", "")))] += 1


def _templates(run: list[StageData], hits: Counter[str]) -> str:
    stage = next((s for s in run if s.name == "boilerplate"), None)
    if stage is None or stage.folder is None or not (stage.folder / "state.json").is_file():
        return ""
    templates = json.loads((stage.folder / "state.json").read_text(encoding="utf-8")).get("templates", [])
    head = f"<h2 id=templates>Learned site templates ({len(templates)})</h2>"
    if not templates:
        return head + ('<p class="sub">None: no line was repeated on enough pages of one site '
                       '(boilerplate.template_min_pages).</p>')
    rows = "".join(
        f'<tr><td>{esc(t.get("site") or "–")}</td><td>{esc(t.get("line", ""))}</td>'
        f'<td class="num">{_fmt(t.get("pages", 0))}</td><td class="num">{hits.get(str(t.get("line", "")), 0)}</td>'
        f'<td>{"pinned" if t.get("pinned") else "learned"}</td></tr>'
        for t in sorted(templates, key=_template_order))
    return (head + "<table><thead><tr><th>site</th><th>line (normalised)</th><th class=num>pages</th>"
            "<th class=num>lines removed</th><th>kind</th></tr></thead><tbody>" + rows + "</tbody></table>")


def _clusters(run: list[StageData], files: dict[str, str]) -> str:
    stage = next((s for s in run if s.name == "dedup"), None)
    if stage is None or stage.folder is None or not (stage.folder / "state.json").is_file():
        return ""
    clusters = json.loads((stage.folder / "state.json").read_text(encoding="utf-8")).get("clusters", [])
    head = f"<h2 id=dedup>Duplicate clusters ({len(clusters)})</h2>"
    if not clusters:
        return head + '<p class="sub">No duplicates found.</p>'

    def link(record_id: str) -> str:
        page = record_id.split("#", 1)[0]
        target = files.get(page)
        return f'<a href="pages/{esc(target)}">{esc(record_id)}</a>' if target else esc(record_id)

    rows = "".join(
        f'<tr><td>{link(str(c.get("keep")))}</td><td>'
        + ", ".join(f'{link(str(copy["id"]))} <span class="reasons">{esc(copy.get("reason"))} '
                    f'{esc(copy.get("similarity"))}</span>' for copy in c.get("copies", []))
        + "</td></tr>" for c in clusters)
    return head + "<table><thead><tr><th>kept</th><th>copies</th></tr></thead><tbody>" + rows + "</tbody></table>"


def _run_info(output_dir: Path) -> tuple[str, dict[str, Any]]:
    latest = output_dir / "corpus" / "LATEST"
    if not latest.is_file():
        return "", {}
    version = latest.read_text(encoding="utf-8").strip()
    manifest_path = output_dir / "corpus" / version / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return version, {}
    return version, manifest


def _not_ingested(run: list[StageData]) -> str:
    if not run or run[0].folder is None:
        return ""
    path = run[0].folder / "fates.jsonl"
    if not path.is_file():
        return ""
    fates = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    skipped = [f for f in fates if f.get("status") != "included"]
    if not skipped:
        return ""
    rows = "".join(f'<tr><td class="mono">{esc(f.get("source"))}</td><td>{esc(f.get("status"))}</td>'
                   f'<td>{esc(f.get("reason"))}</td><td class="reasons">{esc(f.get("message") or "")}</td></tr>'
                   for f in skipped)
    return (f"<h2 id=skipped>Files not ingested ({len(skipped)})</h2><table><thead><tr><th>file</th><th>fate</th>"
            "<th>reason</th><th>message</th></tr></thead><tbody>" + rows + "</tbody></table>")


@dataclass
class RunTotals:
    """What the index needs from every page, added up batch by batch."""

    dropped: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    template_hits: Counter[str] = field(default_factory=Counter)

    def add(self, run: list[StageData]) -> None:
        _dropped_chars(run, self.dropped)
        _template_hits(run, self.template_hits)

    def merge(self, other: RunTotals) -> None:
        """Add the totals of another part of the run (a group added up in a worker)."""
        for key, (records, chars) in other.dropped.items():
            n, total = self.dropped.get(key, (0, 0))
            self.dropped[key] = (n + records, total + chars)
        self.template_hits.update(other.template_hits)


def render_index(output_dir: Path, run: list[StageData], results: list[PageSummary], files: dict[str, str],
                 totals: RunTotals, max_pages: int = 0) -> str:
    """The index; `files` holds the pages that were rendered, and only those are linked."""
    version, manifest = _run_info(output_dir)
    name = manifest.get("corpus", {}).get("name", "")
    pipeline = manifest.get("pipeline", {})
    sub = []
    if name or version:
        sub.append(f"corpus <strong>{esc(name)}</strong> {esc(version)}")
    if pipeline:
        commit = str(pipeline.get("git_commit") or "")
        sub.append(f"pipeline {esc(pipeline.get('version', '?'))}"
                   + (f" (<code>{esc(commit[:12])}</code>)" if commit else ""))
    if manifest.get("created_at"):
        sub.append(f"created {esc(manifest['created_at'])}")
    sub.append(f"{len(results)} pages")
    body = [f"<h1>Audit of <code>{esc(output_dir.name or output_dir)}</code></h1>",
            f'<p class="sub">{" · ".join(sub)}</p>']
    failed = [r for r in results if not r.ok]
    total = sum(r.characters for r in results)
    implicit = sum(r.implicit for r in results)
    borrowed = sum(r.borrowed for r in results)
    stages = " → ".join(s.name for s in reversed(run))
    if not failed:
        text = (f"✓ Every page was rebuilt character for character from the final records and the spans "
                f"({stages}): {total:,} characters, {implicit:,} of them whitespace that split does not "
                f"record (rule W)")
        if borrowed:
            text += f"; {borrowed} record(s) dropped by dedup were taken from its input (rule D)"
        body.append(f'<div class="status ok">{esc(text)}.</div>')
    else:
        items = "".join(f'<li><a href="pages/{esc(files[r.page])}">{esc(r.page)}</a>: {esc(r.problem)}</li>'
                        for r in failed)
        body.append(f'<div class="status bad"><strong>{len(failed)} of {len(results)} pages cannot be rebuilt '
                    f'from the ledger.</strong><ul>{items}</ul></div>')
    body.append('<h2 id=stages>Stages</h2>' + _stage_rows(run))
    body.append('<h2 id=chart>What each stage removed or changed, by reason</h2><div class="chart">'
                + chart_svg(run, totals.dropped) + "</div>")
    head = ("<tr><th class=sortable>page / source</th>"
            + "".join(f"<th class='sortable num' title='lines: {esc(GROUPS[g][1])}'>{esc(SHORT[g])}</th>"
                      for g in ("article", "meta", "boilerplate", "thread", "comment", "related", "feed", "duplicate"))
            + "<th class='sortable num'>comments</th>"
            + "<th class='sortable num' title='share of the characters that ended in records'>kept</th>"
            + "<th class=sortable>ledger</th></tr>")
    rows = "".join(r.row for r in results)
    body.append('<h2 id=page-list>Pages</h2><p class="sub">Line counts by final label; click a page to read it '
                'line by line, a column header to sort.</p>' + _sample_note(results, files, max_pages)
                + '<div class="filter"><input id="filter" type="search" placeholder="Filter by id, source or label '
                '(e.g. comment, boilerplate:donation, problem)" aria-label="filter pages"><span class="count" '
                f'id="shown"></span></div><div class="wide"><table id="pages"><thead>{head}</thead>'
                f'<tbody>{rows}</tbody>'
                '</table></div>')
    body.append(_templates(run, totals.template_hits))
    body.append(_clusters(run, files))
    body.append(_not_ingested(run))
    body.append("<footer>Written by <code>pipeline/report.py</code>. Rule W: split keeps no record of the "
                "whitespace between and around lines; the check requires it to be whitespace. Rule D: a record "
                "dropped by dedup is listed without its text, which comes from dedup's input. "
                "<code>python -m pipeline verify --reconstruct OUTPUT</code> runs the same check; "
                "<code>python -m pipeline audit --doc ID</code> prints one page in the terminal.</footer>")
    return _document(f"Audit — {name} {version}".strip(), "\n".join(body), INDEX_JS)


def _sample_note(results: list[PageSummary], files: dict[str, str], max_pages: int) -> str:
    """What the page table leaves out, and how to render it; nothing when every page was rendered."""
    missing = len(results) - len(files)
    if not missing:
        return ""
    return (f'<p class="lead" id="not-rendered"><strong>{missing:,} of {len(results):,} pages were not '
            f"rendered.</strong> The table lists the {len(files):,} that were: {max_pages:,} chosen across the "
            f"sites by a hash of the page id (<code>report.max_pages: {max_pages}</code>) and "
            f"{len(files) - max_pages:,} more with a problem (the ledger does not rebuild them, or a stage "
            "failed on them). Every page is counted and checked above and below. To render any page: "
            "<code>python -m pipeline audit --output OUTPUT --page ID</code> (or <code>make audit-page "
            "PAGE=ID</code>), which writes it into <code>pages/</code> here; to render them all: "
            "<code>report.max_pages: 0</code> in the config, or <code>python -m pipeline audit --output OUTPUT "
            "--html --max-pages 0</code>.</p>")


def _report_source(output_dir: Path, max_pages: int) -> str:
    """What the report is made from: the name, size and time of every file of the stage
    folders and of the latest corpus version, this module's code and the bound on its pages."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(f"max_pages {max_pages}\n".encode())
    folders = sorted((output_dir / "stages").glob("*/"))
    latest = output_dir / "corpus" / "LATEST"
    if latest.is_file():
        digest.update(latest.read_bytes())
        folders.append(output_dir / "corpus" / latest.read_text(encoding="utf-8").strip())
    for folder in folders:
        for path in sorted(folder.glob("*")):
            stat = path.stat()
            digest.update(f"{path.relative_to(output_dir)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def write_report(output_dir: Path, workers: int = 1, config: ReportConfig | None = None) -> Path:
    """Write `<output_dir>/audit/` (index.html and pages/*.html); returns the index path.
    A report made from the same stage outputs and bound is left as it is. The run's pages are
    cut into groups of consecutive pages (GROUP_BYTES, PAGES_PER_BATCH) and each group is read,
    rebuilt and written on its own, so memory does not grow with the run; with `workers` > 1
    one pool of that many processes takes the groups one at a time (the same files)."""
    output_dir = Path(output_dir)
    config = config or ReportConfig()
    source = _report_source(output_dir, config.max_pages)
    stamp = output_dir / REPORT_DIR / SOURCE_FILE
    if stamp.is_file() and stamp.read_text(encoding="utf-8") == source:
        return output_dir / REPORT_DIR / "index.html"
    try:
        return _write_report(output_dir, source, workers, config.max_pages,
                             cut_run(output_dir, PAGES_PER_BATCH, GROUP_BYTES))
    except RunOutOfOrder:  # stage files not written by the runner: read whole
        return _write_report(output_dir, source, workers, config.max_pages, None)


def _write_report(output_dir: Path, source: str, workers: int, max_pages: int, cut: RunCut | None) -> Path:
    """The report from the groups of `cut`, each read where it is written; or, without a cut,
    from the run read whole in this process. A page file is written with its place among the
    pages planned (the sample); a page rendered for a problem alone joins them once every page
    is checked, and the pages whose neighbours or count changed then get their navigation bar
    replaced (none, unless a page outside the sample has a problem)."""
    whole = load_run(output_dir) if cut is None else []
    order = cut.order if cut is not None else list(whole[0].records) if whole else []
    files = {page: page_file(page) for page in order}
    chosen = sample_pages(order, max_pages)
    planned = [page for page in order if page in chosen]
    position = {page: i for i, page in enumerate(planned)}
    skeleton = [StageData(name, folder, stats=_read_stats(folder)) for name, folder in stage_folders(output_dir)]
    templates = _learned(skeleton)
    final = output_dir / REPORT_DIR
    # Python's cycle collector stays off: parsed JSON and the pages made from it hold no cycles,
    # and its passes over a group's objects cost more than the work. Refcounting frees each group.
    with staging_dir(final) as tmp, collector_paused():
        _readable(tmp)

        def planned_place(page: str) -> Place:
            i = position.get(page)
            if i is None:  # rendered for its problem alone: placed below, once all are known
                return None, None, (0, len(planned))
            return (files[planned[i - 1]] if i > 0 else None,
                    files[planned[i + 1]] if i + 1 < len(planned) else None, (i + 1, len(planned)))

        def write_page(run: list[StageData], page: str, writer: StagedWriter) -> PageSummary:
            result = rebuild_page(page, run)
            summary = PageSummary(result.page, result.problem, len(result.truth or ""), result.implicit,
                                  len(result.borrowed))
            if page not in chosen and not needs_a_look(result, run):
                return summary
            lines = _annotated_lines(result, templates)
            place = planned_place(page)
            writer.write(tmp / "pages" / files[result.page], render_page(result, lines, *place))
            return replace(summary, row=_page_row(result, lines, files[result.page]), place=place)

        def write_batch(run: list[StageData], pages: Sequence[str]) -> list[PageSummary]:
            # Each page's file is created and written by a thread while the next page renders.
            with StagedWriter() as writer:
                return [write_page(run, page, writer) for page in pages]

        totals = RunTotals()
        summaries: list[PageSummary] = []
        if cut is None:
            totals.add(whole)
            batches = [order[start:start + PAGES_PER_BATCH] for start in range(0, len(order), PAGES_PER_BATCH)]
            for found in fork_map(lambda pages: write_batch(whole, pages), batches, workers, chunk=1):
                summaries += found
        else:
            def write_group(group: PageGroup) -> tuple[list[PageSummary], RunTotals]:
                run = read_group(cut, group)
                part = RunTotals()
                part.add(run)
                return write_batch(run, group.pages), part

            for found, part in fork_map(write_group, cut.groups, workers, chunk=1):
                summaries += found
                totals.merge(part)
        rendered = [(summary.page, summary.place) for summary in summaries if summary.place is not None]
        for i, (page, written) in enumerate(rendered):
            place = (files[rendered[i - 1][0]] if i > 0 else None,
                     files[rendered[i + 1][0]] if i + 1 < len(rendered) else None, (i + 1, len(rendered)))
            if place != written:
                path = tmp / "pages" / files[page]
                text = path.read_text(encoding="utf-8")
                write_text_staged(path, text.replace(_nav(*written), _nav(*place), 1))
        shown = {page: files[page] for page, _ in rendered}
        write_text_staged(tmp / "index.html",
                          render_index(output_dir, skeleton, summaries, shown, totals, max_pages))
        write_text_staged(tmp / SOURCE_FILE, source)
        for path in tmp.rglob("*"):
            _readable(path)
    return final / "index.html"


def _annotated_lines(result: PageResult, templates: dict[str, dict[str, Any]]) -> list[LineInfo]:
    """The page's lines, a template line's hover text saying on how many pages of its site it is."""
    lines = page_lines(result)
    for line in lines:
        entry = templates.get(_normalise(line.text)) if line.reason in ("template", "pinned") else None
        if entry is not None:
            line.detail += (f" (the line is on {entry.get('pages', '?')} pages of site "
                            f"{entry.get('site') or '-'})")
    return lines


def write_pages(output_dir: Path, names: Sequence[str], workers: int = 1,
                config: ReportConfig | None = None) -> list[Path]:
    """Write `audit/pages/<page>.html` for the pages `names` names (page or record ids) that have
    no file yet: the bytes the report writes for a page when it renders every page, but without
    links to the previous and next pages (its place is among all the run's pages). A page the
    report rendered keeps its file and links. Only the groups holding the pages are read.
    Makes the report first if there is none. Returns the files of all the pages named."""
    output_dir = Path(output_dir)
    if not (output_dir / REPORT_DIR / "index.html").is_file():
        write_report(output_dir, workers, config)
    try:
        return _write_pages(output_dir, names, cut_run(output_dir, PAGES_PER_BATCH, GROUP_BYTES))
    except RunOutOfOrder:  # stage files not written by the runner: read whole
        return _write_pages(output_dir, names, None)


def _write_pages(output_dir: Path, names: Sequence[str], cut: RunCut | None) -> list[Path]:
    """`write_pages` from the groups of `cut` that hold the pages, or from the run read whole."""
    whole = load_run(output_dir) if cut is None else []
    order = cut.order if cut is not None else list(whole[0].records) if whole else []
    position = {page: i for i, page in enumerate(order)}
    named = [_page_named(name, position, output_dir) for name in names]
    pages_dir = output_dir / REPORT_DIR / "pages"
    wanted = {page for page in named if not (pages_dir / page_file(page)).is_file()}
    templates = _learned([StageData(name, folder) for name, folder in stage_folders(output_dir)])
    parts: Iterable[tuple[list[StageData], list[str]]] = (
        [(whole, [page for page in order if page in wanted])] if cut is None
        else ((read_group(cut, group), [page for page in group.pages if page in wanted])
              for group in cut.groups if not wanted.isdisjoint(group.pages)))
    for run, pages in parts:
        for page in pages:
            result = rebuild_page(page, run)
            path = pages_dir / page_file(page)
            write_text(path, render_page(result, _annotated_lines(result, templates), None, None,
                                         (position[page] + 1, len(order))))
            _readable(path)
    return [pages_dir / page_file(page) for page in dict.fromkeys(named)]


def _page_named(name: str, position: dict[str, int], output_dir: Path) -> str:
    """The page a --page argument names: a page id, or the id of one of its records."""
    for page in (name, page_of_id(name)):
        if page in position:
            return page
    near = difflib.get_close_matches(name, list(position), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(near)}?" if near else f"; {len(position)} pages in this run"
    raise InputError(f"--page {name}: no such input page in {output_dir}{hint}")


def _read_stats(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / "stats.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _readable(path: Path) -> None:
    """Temp files and folders are private (0600/0700); a report is for reading: 0644/0755 less the umask."""
    mask = os.umask(0)
    os.umask(mask)
    path.chmod((0o755 if path.is_dir() else 0o644) & ~mask)
