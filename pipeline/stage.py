"""What a stage is: a typed config, a declared set of reasons, and a pure core.

Two kinds, told apart by their functions rather than by a class hierarchy:

- a document stage has `process(record, config) -> Outcome`;
- a corpus stage first `learn(records, config) -> state` over the whole input,
  then `process(record, config, state) -> Outcome` per record. Its state is
  JSON, written to the stage folder for review (learned templates, clusters).

A corpus stage may also give its `learn` in map/combine form, which executors
run in parallel and cache per record:

- `summarize(record, config) -> summary`: pure, one record at a time; the
  summary is picklable and depends on nothing but the record and the config;
- `combine(summaries, config) -> state`: the same state whatever the order of
  the summaries, so that `learn(records) == combine(map(summarize, records))`.

A stage may also give `process_batch(records, config[, state]) -> list[Outcome]`,
one Outcome per record in order, equal to calling `process` on each: executors use it
to share work across the records of a batch (and fall back to `process` per record
when it raises, to quarantine just the failing record).

A stage may also give `warm(config)`: it loads what `process` needs (compiled rules,
models), so that the local executor can load it once before forking its workers, which
then share it instead of each loading it again.

`process` must be pure as well (same record, config and state: same Outcome),
and module-level functions only: the runner calls it in worker processes, in
any order, and reuses a cached Outcome for a record it has seen before.

A stage module also declares `NAME` and `REASONS`, the codes its spans may carry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo

from pipeline.document import Span

Record = dict[str, Any]


CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


def _resolve_config_path(value: Path, info: ValidationInfo) -> Path:
    """Relative paths are relative to the folder of the config file being loaded
    (then the repository's `configs/`, where the shipped pattern lists live)."""
    if value.is_absolute():
        candidates = [value]
    else:
        base = Path((info.context or {}).get("base_dir", CONFIG_DIR))
        candidates = [base / value, CONFIG_DIR / value]
    for path in candidates:
        if path.is_file():
            return path.resolve()
    raise ValueError(f"file not found: {candidates[0]}")


ConfigPath = Annotated[Path, AfterValidator(_resolve_config_path)]
"""A file named in the config (pattern lists and the like); part of the stage fingerprint."""


class StageConfig(BaseModel):
    """Base of every stage's config: frozen, typed, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    enabled: bool = True


@dataclass(frozen=True)
class Outcome:
    """What a stage made of one input record.

    `records` are the output records (none when the record is dropped, several
    when a page is split). `spans` are changes to the input record's `text`;
    a span's `pass_no` orders passes when a stage rewrites the text more than once.
    `drop_reason` says why a record produced no output.
    """

    records: list[Record]
    spans: list[Span] = field(default_factory=list)
    passes: list[list[Span]] = field(default_factory=list)
    drop_reason: str | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def all_passes(self) -> list[list[Span]]:
        """Spans grouped by pass, each pass relative to the previous pass's output."""
        if self.passes:
            return self.passes
        return [self.spans] if self.spans else []
