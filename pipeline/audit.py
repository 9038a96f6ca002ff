"""`python -m pipeline audit`: what each stage kept, removed and why, in the terminal.

`summarize` prints, per stage, documents and characters in and out, what the
spans account for, removals by reason with their characters, the most frequent
removed lines, the learned site templates and duplicate clusters.
`describe_page` is `git blame` for one input page: every line with its final
label, the stage that decided and the reason (from pipeline/ledger.py).
"""

from __future__ import annotations

import difflib
import json
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any

from pipeline.errors import InputError
from pipeline.ledger import (
    LineInfo,
    PageResult,
    page_lines,
    rebuild_run,
    stage_folders,
)

TEXT_WIDTH = 72


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    with path.open("r", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _stages(output_dir: Path) -> dict[str, Path]:
    dirs = dict(stage_folders(Path(output_dir)))
    if not dirs:
        raise InputError(f"{output_dir}: no stage outputs; run `python -m pipeline run --output {output_dir}` first")
    return dirs


def _normalise(text: str) -> str:
    """The boilerplate stage's comparison form of a line (NFKC, spaces collapsed, case-folded)."""
    return " ".join(unicodedata.normalize("NFKC", text).split()).casefold()


def summarize(output_dir: Path, top: int = 10) -> str:
    """A per-stage table, removals by reason, frequent removed lines, templates and clusters."""
    dirs = _stages(output_dir)
    out = [f"{'stage':<12}{'docs in':>9}{'docs out':>9}{'chars in':>11}{'chars out':>11}"
           f"{'removed':>10}{'unrecorded':>11}  removed or changed"]
    removed: dict[str, Counter[str]] = {}
    by_reason: list[str] = []
    template_hits: Counter[str] = Counter()
    footnotes: set[str] = set()
    for name, folder in dirs.items():
        stats = _read_json(folder / "stats.json")
        reasons = ", ".join(f"{reason} {value['spans']}" for reason, value in stats["spans_by_reason"].items())
        drops = ", ".join(f"dropped:{reason} {n}" for reason, n in stats["dropped_by_reason"].items())
        lines: Counter[str] = Counter()
        accounted = 0  # characters the spans say left the text (original minus replacement)
        for entry in _jsonl(folder / "spans.jsonl"):
            for span in entry.get("spans", []):
                accounted += len(span["original"]) - len(span.get("replacement") or "")
                if not span.get("replacement") and span["original"].strip():
                    lines[f"[{span['reason']}] {span['original'].strip()[:70]}"] += 1
                if name == "boilerplate" and span.get("reason") in ("template", "pinned"):
                    template_hits[_normalise(span["original"])] += 1
        removed[name] = lines
        delta = stats["characters_in"] - stats["characters_out"]
        # Characters that left the text without a span: split's whitespace (rule W), less the
        # newlines that join a record's lines; dedup's dropped records (rule D).
        unrecorded = delta - accounted
        if unrecorded and name == "split":
            footnotes.add("split: whitespace between and around lines is not recorded (rule W); "
                          "the newlines joining a record's lines count against it")
        if unrecorded and stats["dropped_by_reason"]:
            footnotes.add(f"{name}: dropped records' text is not in the ledger (rule D)")
        out.append(f"{name:<12}{stats['documents_in']:>9}{stats['documents_out']:>9}"
                   f"{stats['characters_in']:>11}{stats['characters_out']:>11}{delta:>10}{unrecorded:>11}  "
                   f"{'; '.join(x for x in (reasons, drops) if x) or '-'}")
        if stats["spans_by_reason"]:
            total_in = max(1, stats["characters_in"])
            by_reason.append(f"  {name}:")
            for reason, value in sorted(stats["spans_by_reason"].items(), key=lambda kv: -kv[1]["characters"]):
                by_reason.append(f"    {reason:<22}{value['spans']:>7} spans{value['characters']:>9} chars"
                                 f"{100 * value['characters'] / total_in:>8.2f}%")
    if footnotes:
        out.append("unrecorded = chars in - chars out - what the spans account for:")
        out.extend(f"  {note}" for note in sorted(footnotes))
    if by_reason:
        out.append("\ncharacters removed or changed, by reason (share of the stage's input):")
        out.extend(by_reason)
    for name, lines in removed.items():
        if lines:
            out.append(f"\nmost frequent removals, {name}:")
            out.extend(f"  {count:>5}  {text}" for text, count in lines.most_common(top))
    state = dirs.get("boilerplate")
    if state is not None and (state / "state.json").is_file():
        templates = _read_json(state / "state.json").get("templates", [])
        sites = Counter(str(t.get("site") or "-") for t in templates)
        per_site = ", ".join(f"{site} {n}" for site, n in sorted(sites.items()))
        out.append(f"\nlearned site templates: {len(templates)}" + (f" (by site: {per_site})" if templates else ""))
        if templates:
            out.append(f"  {'pages':>5}  {'removed':>7}  [site] line")
        ranked = sorted(templates, key=lambda t: (-int(t.get("pages") or 0), str(t.get("site")), str(t.get("line"))))
        for t in ranked[:top]:
            pinned = "  (pinned)" if t.get("pinned") else ""
            hits = template_hits.get(_normalise(str(t.get("line", ""))), 0)
            out.append(f"  {t.get('pages', '?'):>5}  {hits:>7}  [{t.get('site') or '-'}] "
                       f"{str(t.get('line', ''))[:70]}{pinned}")
        if len(templates) > top:
            out.append(f"  … {len(templates) - top} more (stages/{state.name}/state.json)")
    dedup = dirs.get("dedup")
    if dedup is not None and (dedup / "state.json").is_file():
        clusters = _read_json(dedup / "state.json").get("clusters", [])
        copies = Counter(c.get("reason", "?") for cluster in clusters for c in cluster.get("copies", []))
        out.append(f"\nduplicate clusters: {len(clusters)}"
                   + (f" ({', '.join(f'{r} {n}' for r, n in sorted(copies.items()))} copies)" if copies else ""))
        for cluster in clusters[:top]:
            ids = ", ".join(f"{c['id']} ({c.get('similarity')})" for c in cluster.get("copies", [])[:4])
            out.append(f"  keep {cluster.get('keep')}: {ids}")
    return "\n".join(out)


# --- one page ------------------------------------------------------------------------------------


def find_page(output_dir: Path, doc_id: str) -> str:
    """The input page a --doc argument names: a page id, a record id (#rN, #cN) or a source path."""
    dirs = _stages(output_dir)
    ingest = next(iter(dirs.values()))
    pages: list[str] = []
    sources: dict[str, str] = {}
    for record in _jsonl(ingest / "records.jsonl"):
        pages.append(str(record["id"]))
        sources[str(record.get("source"))] = str(record["id"])
    if doc_id in pages:
        return doc_id
    if doc_id in sources:
        return sources[doc_id]
    base = doc_id.split("#", 1)[0]
    if base in pages:
        return base
    prefixed = [page for page in pages if page.startswith(doc_id)]
    if len(prefixed) == 1:
        return prefixed[0]
    near = difflib.get_close_matches(doc_id, pages, n=3, cutoff=0.5) or prefixed[:3]
    hint = f"; did you mean {', '.join(near)}?" if near else f"; {len(pages)} pages in this run"
    raise InputError(f"--doc {doc_id}: no such input page in {output_dir}{hint}")


def _template_pages(output_dir: Path) -> dict[str, dict[str, Any]]:
    """Learned and pinned templates by normalised line."""
    folder = dict(stage_folders(output_dir)).get("boilerplate")
    if folder is None or not (folder / "state.json").is_file():
        return {}
    return {str(t.get("line")): t for t in _read_json(folder / "state.json").get("templates", [])}


def line_label(line: LineInfo) -> str:
    """The label as the audit prints it: 'comment depth 2', 'boilerplate:navigation', 'title'."""
    if line.label == "comment" and line.depth is not None:
        return f"comment depth {line.depth}"
    return line.label


def describe_page(output_dir: Path, doc_id: str, blanks: bool = False) -> str:
    """One input page, line by line: final label, the stage that decided, and why."""
    page = find_page(Path(output_dir), doc_id)
    results = rebuild_run(Path(output_dir), pages={page})
    if not results:
        raise InputError(f"--doc {doc_id}: page {page} is not in the run's ingest records")
    result = results[0]
    lines = page_lines(result)
    templates = _template_pages(Path(output_dir))
    for line in lines:
        if line.label in ("boilerplate:template", "boilerplate:pinned"):
            entry = templates.get(_normalise(line.text))
            if entry is not None:
                line.note = (f"{line.reason} (seen on {entry.get('pages', '?')} pages of site "
                             f"{entry.get('site') or '-'})")
    out = _page_header(result, lines)
    out.append(f"{'line':>5}  {'label':<24}{'decided by':<12}{'reason':<50}text")
    for line in lines:
        if line.label == "blank" and not blanks and not line.changes:
            continue
        reason = line.note
        if line.changes:
            reason = f"{reason} (+{', '.join(line.changes)})"
        indent = "  " * (line.depth or 0)
        text = indent + line.text.strip()
        if len(text) > TEXT_WIDTH:
            text = text[:TEXT_WIDTH - 1] + "…"
        if len(reason) > 48:
            reason = reason[:47] + "…"
        out.append(f"{line.number:>5}  {line_label(line):<24}{line.stage or '-':<12}{reason:<50}{text}")
    return "\n".join(out)


def _page_header(result: PageResult, lines: list[LineInfo]) -> list[str]:
    source = result.source or {}
    out = [f"page {result.page}: {source.get('source', '?')} ({source.get('bytes', '?')} bytes, "
           f"{source.get('encoding', '?')}, sha256 {str(source.get('source_sha256', '?'))[:12]}…)"]
    if result.problem is None:
        status = f"ledger: rebuilt from the final records and the spans; {result.implicit} characters " \
                 "of implicit whitespace (rule W)"
        if result.borrowed:
            status += f"; {len(result.borrowed)} dropped record(s) from dedup's input (rule D)"
    else:
        status = f"ledger: NOT rebuilt — {result.problem}"
    out.append(status)
    counts = Counter(line_label(line) if line.label != "comment" else "comment" for line in lines)
    blank = counts.pop("blank", 0)
    comments = sum(1 for r in result.records.values() if r.get("kind") == "comment")
    out.append("lines: " + ", ".join(f"{label} {n}" for label, n in counts.most_common())
               + f"; blank {blank} (not shown); comments {comments}")
    out.append("")
    return out
