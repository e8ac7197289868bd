"""The schema version written into report.json and run.json, and the check every reader
of those files (and of a comparison's runs) makes before reading one.

A version is `MAJOR.MINOR`. A reader accepts files of its own MAJOR version or an older
one, and refuses a newer MAJOR with one line that says so, not with a validation error
deep inside (inspect_ai's `validate_log_file_version` does the same for its logs).
"""

from __future__ import annotations

from faithcheck.errors import FaithcheckError, UsageError

SCHEMA_VERSION = "0.1"
"""The version of report.json and run.json that this faithcheck writes."""


def check_schema_version(
    version: object,
    where: object,
    *,
    reads: str = SCHEMA_VERSION,
    error: type[FaithcheckError] = UsageError,
) -> None:
    """Refuse a file written under a newer MAJOR schema version than `reads`.

    A missing or unparsable version is left to the file's validation.

    Args:
        version: the file's `schema_version` (any JSON value).
        where: the file, for the message.
        reads: the version this reader writes and reads.
        error: the error family to raise (the caller's, e.g. `RunDirError`).

    Raises:
        error: the file's MAJOR version is newer than `reads`'s.
    """
    major = _major(version)
    if major is not None and major > (_major(reads) or 0):
        raise error(
            f"{where} was written by a newer faithcheck (schema_version {version!r}; this "
            f"one reads {reads!r} and older): upgrade faithcheck to read it"
        )


def _major(version: object) -> int | None:
    if not isinstance(version, str | int) or isinstance(version, bool):
        return None
    head = str(version).split(".", 1)[0]
    return int(head) if head.isdigit() else None
