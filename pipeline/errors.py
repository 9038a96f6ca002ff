"""One small hierarchy of errors. Dropping a document is an outcome, not an error."""

from __future__ import annotations


class PipelineError(Exception):
    """Base class: the CLI prints these as one line and exits non-zero."""


class ConfigError(PipelineError):
    """A config file, key or value is wrong; the message names the file and key."""


class InputError(PipelineError):
    """An input or output path cannot be used as asked."""


class StageError(PipelineError):
    """A stage failed for a reason that is not one document's fault."""


class VersionExistsError(PipelineError):
    """A corpus version already exists with different content."""


class PatternError(ConfigError, ValueError):
    """A pattern in a config file is not a valid regex; names the file, entry and pattern.

    Also a ValueError, which the pattern loaders have always raised for a bad entry."""


class PatternTimeout(StageError):
    """A config pattern ran past its time bound on one input: that record is quarantined."""

    reason = "pattern_timeout"

    def __init__(self, pattern: str, seconds: float) -> None:
        shown = pattern if len(pattern) <= 120 else pattern[:117] + "..."
        super().__init__(f"pattern {shown!r} ran past its {seconds:g} s bound")
        self.pattern = pattern
        self.seconds = seconds

    def __reduce__(self) -> tuple[type, tuple[str, float]]:
        # Raised in a worker process, it is pickled to the parent: rebuilt from its arguments.
        return (type(self), (self.pattern, self.seconds))


class DiskFullError(PipelineError):
    """The disk (or the user's quota) filled up while writing an output; nothing was replaced."""
