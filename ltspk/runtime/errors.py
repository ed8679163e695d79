"""Errors raised for bad input: each names the file and what is wrong."""


class LtspkError(Exception):
    """Base class of the errors ltspk raises for bad input or configuration."""


class DataError(LtspkError):
    """A corpus, manifest, trial list or audio file is missing or malformed."""

    def __init__(self, path, problem):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class CheckpointError(DataError):
    """A checkpoint file that cannot be written (disk full, read-only folder) or read (empty,
    truncated, pickled objects, weights of another model)."""


class HparamsError(LtspkError, ValueError):
    """An hparams file or override that ltspk cannot use, or hyperparameters that cannot work
    together; refused before any work."""
