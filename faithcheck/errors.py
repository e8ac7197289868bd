"""One exception type per failure family, each carrying its exit code.

Exceptions are raised anywhere; only the CLI edge turns them into one line on stderr
and a process exit code (see `faithcheck.cli.commands`).
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes, documented in docs/formats.md and stable for CI gates."""

    GO = 0
    NO_GO = 1
    USAGE = 2
    RUN_FAILURE = 3
    INCONCLUSIVE = 4


class FaithcheckError(Exception):
    """Base class for every error faithcheck reports to the user."""

    exit_code: ExitCode = ExitCode.RUN_FAILURE


class UsageError(FaithcheckError):
    """The command line asks for something impossible or contradictory."""

    exit_code = ExitCode.USAGE


class DataError(FaithcheckError):
    """The dataset cannot be read or does not have the expected shape."""

    exit_code = ExitCode.USAGE


class ModelLoadError(FaithcheckError):
    """The model cannot be found, verified, converted or loaded."""

    exit_code = ExitCode.RUN_FAILURE


class BackendError(FaithcheckError):
    """An inference backend failed while running."""

    exit_code = ExitCode.RUN_FAILURE


class RunDirError(FaithcheckError):
    """The run directory cannot be created, written, or is not a faithcheck run."""

    exit_code = ExitCode.USAGE
