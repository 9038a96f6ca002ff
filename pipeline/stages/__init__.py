"""The stages, in the order they run. Each module: NAME, REASONS, Config, and
`process` (plus `learn` for a corpus stage). Export is last and writes the corpus.

`STAGES` (name -> module) is imported on first use: the stage modules and their libraries
take about 0.5 s to import, and the CLI's parser needs only their `NAMES` (`--help`: 0.06 s
of CPU instead of 1.0 s).
"""

from __future__ import annotations

import importlib
from types import ModuleType

NAMES: tuple[str, ...] = ("ingest", "clean", "boilerplate", "split", "metadata", "dedup", "langid", "export")


def __getattr__(name: str) -> dict[str, ModuleType]:
    """`STAGES`, imported when first asked for (a module `__getattr__`, PEP 562); a stage
    imported by name (`from pipeline.stages import dedup`) imports just that one."""
    if name != "STAGES":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    stages = {stage: importlib.import_module(f"{__name__}.{stage}") for stage in NAMES}
    globals()["STAGES"] = stages  # found directly from now on
    return stages


def is_corpus_stage(module: ModuleType) -> bool:
    """A corpus stage learns from every record before it processes any."""
    return hasattr(module, "learn")
