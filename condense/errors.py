"""The one family of errors the library raises; only the CLI turns them into messages."""

from __future__ import annotations


class CondenseError(Exception):
    """Base class: every message names what went wrong and how to fix it."""


class ConfigError(CondenseError):
    """A configuration key or value is invalid."""


class UnknownComponentError(CondenseError):
    """A method, sampler, evaluator or dataset name is not installed."""


class DuplicateComponentError(CondenseError):
    """Two plugins registered a component under the same name."""


class PluginError(CondenseError):
    """A plugin could not be loaded or is malformed."""


class ArtifactError(CondenseError):
    """A distilled-set file is missing, truncated, foreign or from a newer format."""


class DatasetError(CondenseError):
    """A dataset is missing, corrupt, or cannot serve the request."""


class CheckpointError(CondenseError):
    """A checkpoint cannot be resumed."""


class OutputError(CondenseError):
    """An output location cannot be written, exists already, or another run holds it."""


class RunInterrupted(CondenseError):
    """A run was asked to stop (Ctrl-C, SIGTERM) and stopped at an iteration boundary.

    ``iteration`` is the iteration reached; ``checkpoint`` the checkpoint written there (``None``
    when the run had no checkpoint path)."""

    def __init__(self, message: str, *, iteration: int, checkpoint: str | None) -> None:
        super().__init__(message)
        self.iteration = iteration
        self.checkpoint = checkpoint


class HubError(CondenseError):
    """A Hugging Face Hub operation failed."""


class DistributedError(CondenseError):
    """Joining the process group failed, or another rank failed or timed out."""
