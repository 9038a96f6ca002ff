"""`python -m pipeline audit`: what each stage kept, removed and why, in the terminal."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from pipeline.errors import InputError
from pipeline.io import read_jsonl
from pipeline.runner import stage_dirs


def summarize(output_dir: Path, top: int = 10) -> str:
    """A per-stage table, the most frequent removed lines, and learned templates."""
    dirs = {name: path for name, path in stage_dirs(output_dir).items() if (path / "stats.json").is_file()}
    if not dirs:
        raise InputError(f"{output_dir}: no stage outputs; run `python -m pipeline run --output {output_dir}` first")
    out = [f"{'stage':<12}{'docs in':>9}{'docs out':>9}{'chars in':>11}{'chars out':>11}  removed or changed"]
    removed: dict[str, Counter[str]] = {}
    for name, folder in dirs.items():
        stats = json.loads((folder / "stats.json").read_text(encoding="utf-8"))
        reasons = ", ".join(f"{reason} {value['spans']}" for reason, value in stats["spans_by_reason"].items())
        drops = ", ".join(f"dropped:{reason} {n}" for reason, n in stats["dropped_by_reason"].items())
        out.append(f"{name:<12}{stats['documents_in']:>9}{stats['documents_out']:>9}"
                   f"{stats['characters_in']:>11}{stats['characters_out']:>11}  "
                   f"{'; '.join(x for x in (reasons, drops) if x) or '-'}")
        lines: Counter[str] = Counter()
        for entry in read_jsonl(folder / "spans.jsonl"):
            for span in entry.get("spans", []):
                if not span.get("replacement") and span["original"].strip():
                    lines[f"[{span['reason']}] {span['original'].strip()[:70]}"] += 1
        removed[name] = lines
    for name, lines in removed.items():
        if lines:
            out.append(f"\nmost frequent removals, {name}:")
            out.extend(f"  {count:>5}  {text}" for text, count in lines.most_common(top))
    state = dirs.get("boilerplate")
    if state is not None and (state / "state.json").is_file():
        templates = json.loads((state / "state.json").read_text(encoding="utf-8")).get("templates", [])
        out.append(f"\nlearned site templates: {len(templates)}")
        out.extend(f"  {t.get('pages', '?'):>5} pages  [{t.get('site') or '-'}] {t.get('line', '')[:70]}"
                   for t in templates[:top])
    return "\n".join(out)
