"""`python -m pipeline diff A B`: what changed between two corpus versions.

Rows are matched by id. A row is changed when its text or any metadata field
differs; the report names the fields. Config differences come from each
manifest's resolved "config", section by section (one section per stage).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import InputError

FILES = (("articles", "articles.jsonl"), ("comments", "comments.jsonl"))


@dataclass
class RowDiff:
    """Rows of one file of two versions: added, removed and changed ids (with fields)."""

    name: str
    count_a: int = 0
    count_b: int = 0
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: dict[str, list[str]] = field(default_factory=dict)  # id -> differing fields


@dataclass
class VersionDiff:
    a: Path
    b: Path
    rows: list[RowDiff]
    config: dict[str, list[tuple[str, Any, Any]]]  # section -> (key, value in A, value in B)
    inputs: dict[str, list[str]]  # added / removed / changed input sources
    details: dict[str, dict[str, tuple[Any, Any]]] = field(default_factory=dict)  # id -> field -> (a, b)


def _rows(folder: Path, name: str) -> dict[str, dict[str, Any]]:
    path = folder / name
    if not path.is_file():
        return {}
    rows: dict[str, dict[str, Any]] = {}
    with path.open("r", encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise InputError(f"{path}:{number}: not valid JSON ({err.msg})") from err
                rows[str(row.get("id"))] = row
    return rows


def _manifest(folder: Path) -> dict[str, Any]:
    path = folder / "manifest.json"
    if not path.is_file():
        raise InputError(f"{folder}: no manifest.json; not a corpus version folder")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON ({err.msg})") from err
    return data if isinstance(data, dict) else {}


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested config as dotted keys (lists stay values)."""
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, inner in value.items():
            flat.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}


_MISSING = object()


def config_changes(config_a: dict[str, Any], config_b: dict[str, Any]) -> dict[str, list[tuple[str, Any, Any]]]:
    """Per section (stage), the keys whose values differ; a missing key is shown as <absent>."""
    changes: dict[str, list[tuple[str, Any, Any]]] = {}
    for section in list(config_a) + [s for s in config_b if s not in config_a]:
        flat_a = _flatten(config_a.get(section, {}))
        flat_b = _flatten(config_b.get(section, {}))
        found = []
        for key in list(flat_a) + [k for k in flat_b if k not in flat_a]:
            value_a, value_b = flat_a.get(key, _MISSING), flat_b.get(key, _MISSING)
            if value_a != value_b:
                found.append((key, value_a, value_b))
        if found:
            changes[section] = found
    return changes


def compare(a: Path, b: Path) -> VersionDiff:
    """The differences between two version folders."""
    manifest_a, manifest_b = _manifest(a), _manifest(b)
    rows: list[RowDiff] = []
    details: dict[str, dict[str, tuple[Any, Any]]] = {}
    for name, filename in FILES:
        rows_a, rows_b = _rows(a, filename), _rows(b, filename)
        diff = RowDiff(name, len(rows_a), len(rows_b))
        diff.added = sorted(set(rows_b) - set(rows_a))
        diff.removed = sorted(set(rows_a) - set(rows_b))
        for row_id in sorted(set(rows_a) & set(rows_b)):
            row_a, row_b = rows_a[row_id], rows_b[row_id]
            keys = list(row_a) + [k for k in row_b if k not in row_a]
            fields = [k for k in keys if row_a.get(k, _MISSING) != row_b.get(k, _MISSING)]
            if fields:
                diff.changed[row_id] = fields
                details[row_id] = {k: (row_a.get(k), row_b.get(k)) for k in fields}
        rows.append(diff)
    inputs_a = {i.get("source"): i for i in manifest_a.get("inputs", [])}
    inputs_b = {i.get("source"): i for i in manifest_b.get("inputs", [])}
    inputs = {
        "added": sorted(str(s) for s in set(inputs_b) - set(inputs_a)),
        "removed": sorted(str(s) for s in set(inputs_a) - set(inputs_b)),
        "changed": sorted(str(s) for s in set(inputs_a) & set(inputs_b)
                          if (inputs_a[s].get("sha256"), inputs_a[s].get("status"))
                          != (inputs_b[s].get("sha256"), inputs_b[s].get("status"))),
    }
    return VersionDiff(a, b, rows, config_changes(manifest_a.get("config", {}), manifest_b.get("config", {})),
                       inputs, details)


def _value(value: Any, width: int = 60) -> str:
    if value is _MISSING:
        return "<absent>"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


def _field_change(key: str, old: Any, new: Any) -> str:
    if key == "text" and isinstance(old, str) and isinstance(new, str):
        prefix = 0
        while prefix < min(len(old), len(new)) and old[prefix] == new[prefix]:
            prefix += 1
        return f"text ({len(old)} → {len(new)} chars, first difference at {prefix})"
    return f"{key}: {_value(old, 40)} → {_value(new, 40)}"


def render(diff: VersionDiff, limit: int = 20) -> str:
    out = [f"diff {diff.a} → {diff.b}"]
    for rows in diff.rows:
        out.append(f"\n{rows.name}: {rows.count_a} → {rows.count_b}; {len(rows.added)} added, "
                   f"{len(rows.removed)} removed, {len(rows.changed)} changed")
        for label, ids in (("+", rows.added), ("-", rows.removed)):
            for row_id in ids[:limit]:
                out.append(f"  {label} {row_id}")
            if len(ids) > limit:
                out.append(f"  {label} … {len(ids) - limit} more")
        fields_count: dict[str, int] = {}
        for row_fields in rows.changed.values():
            for key in row_fields:
                fields_count[key] = fields_count.get(key, 0) + 1
        if fields_count:
            out.append("  changed fields: " + ", ".join(f"{k} {n}" for k, n in
                                                      sorted(fields_count.items(), key=lambda kv: (-kv[1], kv[0]))))
        for row_id in list(rows.changed)[:limit]:
            changes = "; ".join(_field_change(k, *diff.details[row_id][k]) for k in rows.changed[row_id])
            out.append(f"  ~ {row_id}: {changes}")
        if len(rows.changed) > limit:
            out.append(f"  ~ … {len(rows.changed) - limit} more")
    if any(diff.inputs.values()):
        out.append("\ninputs: " + ", ".join(f"{len(v)} {k}" for k, v in diff.inputs.items()))
        for kind, sources in diff.inputs.items():
            for source in sources[:limit]:
                out.append(f"  {kind}: {source}")
    if diff.config:
        out.append("\nconfig differences:")
        for section, changes in diff.config.items():
            out.append(f"  [{section}]")
            for key, old, new in changes:
                out.append(f"    {key}: {_value(old)} → {_value(new)}")
    else:
        out.append("\nconfig: identical")
    return "\n".join(out)


def diff_versions(a: Path, b: Path, limit: int = 20) -> str:
    """The rendered differences between two corpus version folders."""
    for folder in (a, b):
        if not Path(folder).is_dir():
            raise InputError(f"{folder}: not a folder")
    return render(compare(Path(a), Path(b)), limit)
