"""The stages, in the order they run. Each module: NAME, REASONS, Config, and
`process` (plus `learn` for a corpus stage). Export is last and writes the corpus."""

from __future__ import annotations

from types import ModuleType

from pipeline.stages import boilerplate, clean, dedup, export, ingest, langid, metadata, split

STAGES: dict[str, ModuleType] = {
    "ingest": ingest,
    "clean": clean,
    "boilerplate": boilerplate,
    "split": split,
    "metadata": metadata,
    "dedup": dedup,
    "langid": langid,
    "export": export,
}


def is_corpus_stage(module: ModuleType) -> bool:
    """A corpus stage learns from every record before it processes any."""
    return hasattr(module, "learn")
