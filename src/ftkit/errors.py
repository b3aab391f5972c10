"""Errors ftkit raises on purpose.

Every error a user can cause derives from ``FtkitError``; the CLI prints its message on one
line and exits with status 2 (``--debug`` shows the traceback). Anything else is a bug.

    FtkitError
     ├── ConfigError      a setting, flag or config file is invalid (names the flag and value)
     ├── DataError        a data file is missing, unreadable or invalid (names file, row, column)
     ├── ModelLoadError   a model name or path cannot be resolved or loaded offline
     ├── StrategyError    a strategy cannot be applied to this model
     └── RunDirError      the run folder conflicts (finished run, nothing to resume)
"""


class FtkitError(Exception):
    """Base class of the errors ftkit raises for bad input or settings."""


class ConfigError(FtkitError):
    """A setting, flag or config file is invalid."""


class DataError(FtkitError):
    """A data file is missing, unreadable or holds invalid rows."""


class ModelLoadError(FtkitError):
    """A model cannot be resolved or loaded."""


class StrategyError(FtkitError):
    """A strategy cannot be applied to the model."""


class RunDirError(FtkitError):
    """The run folder holds something that conflicts with the request."""
