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
