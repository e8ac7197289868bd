"""JSON and JSONL I/O through orjson: atomic whole-file writes, appends for records.

orjson refuses NaN/inf by serializing them as null, so callers must store `None`
plus a reason rather than relying on float specials.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from pydantic import BaseModel

from faithcheck.errors import RunDirError

_OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def dumps(obj: Any, *, indent: bool = False) -> bytes:
    """Serialize a JSON value or pydantic model to bytes."""
    if isinstance(obj, BaseModel):
        obj = obj.model_dump(mode="json")
    opts = _OPTS | (orjson.OPT_INDENT_2 if indent else 0)
    return orjson.dumps(obj, option=opts)


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """Write a whole file so that readers see the old content or the new, never half.

    Yields a binary file in the same directory; when the block ends without an error it
    is fsynced and renamed over `path` (rename is atomic within one file system), else
    removed. What is written streams to disk, so memory stays flat however large the file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    # os.open with mode 0o666 lets the kernel apply the umask (mkstemp would force 0600).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a whole file atomically (see `atomic_file`)."""
    with atomic_file(path) as fh:
        fh.write(data)


@contextlib.contextmanager
def atomic_jsonl(path: Path) -> Iterator[Callable[[Iterable[Any]], None]]:
    """Write a whole JSONL file piece by piece, atomically (see `atomic_file`): yields a
    function that writes records."""
    with atomic_file(path) as fh:

        def write(records: Iterable[Any]) -> None:
            fh.write(b"".join(dumps(r) + b"\n" for r in records))

        yield write


def write_json(path: Path, obj: Any) -> None:
    """Atomically write an indented JSON file with a trailing newline."""
    atomic_write_bytes(path, dumps(obj, indent=True) + b"\n")


def append_jsonl(path: Path, records: list[Any]) -> None:
    """Append records as JSON lines in one write, then flush to disk.

    One `write` call per batch keeps a killed process from leaving an interleaved
    line; a torn last line is tolerated by `read_jsonl`.
    """
    append_lines(path, [dumps(r) + b"\n" for r in records])


def append_lines(path: Path, lines: list[bytes]) -> None:
    """Append already serialized JSON lines (each ending in a newline) in one write."""
    if not lines:
        return
    with path.open("ab") as fh:
        fh.write(b"".join(lines))
        fh.flush()
        os.fsync(fh.fileno())


_TAIL_BLOCK = 1 << 16


def repair_jsonl(path: Path) -> int:
    """Cut a torn final line (left by a killed writer) so that appends start clean.

    Reads backwards from the end in blocks, so a long file is not read whole.

    Returns:
        The number of bytes removed.
    """
    if not path.exists():
        return 0
    with path.open("rb+") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return 0
        keep = 0
        end = size
        while end > 0:
            start = max(0, end - _TAIL_BLOCK)
            fh.seek(start)
            newline = fh.read(end - start).rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            end = start
        fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())
    return size - keep


def filter_jsonl(path: Path, keep: Callable[[dict[str, Any]], bool]) -> None:
    """Atomically rewrite a JSONL file with only the objects `keep` accepts.

    Streams line by line into a temporary file that is renamed over the original; a
    torn final line is dropped.
    """
    if not path.exists():
        return
    with atomic_file(path) as out, path.open("rb") as src:
        for lineno, line in enumerate(src, start=1):
            if not line.endswith(b"\n"):
                break
            if line.strip() and keep(parse_line(line, path, lineno)):
                out.write(line)


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the objects of a JSONL file, skipping a torn final line left by a kill.

    Raises:
        RunDirError: a complete line (one that ends in a newline) is not a JSON object,
            so the file was damaged or edited, not torn by a kill.
    """
    for _, row in read_jsonl_numbered(path):
        yield row


def read_jsonl_numbered(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Like `read_jsonl`, with the 1-based line number of each object."""
    for lineno, row, _ in read_jsonl_lines(path):
        yield lineno, row


def read_jsonl_lines(path: Path) -> Iterator[tuple[int, dict[str, Any], bytes]]:
    """Like `read_jsonl`, with the line number and the raw line (newline included) of each
    object, for a caller that copies lines as they are."""
    if not path.exists():
        return
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.endswith(b"\n"):
                return  # torn tail: the process died mid-write
            if line.strip():
                yield lineno, parse_line(line, path, lineno), line


def parse_line(line: bytes, path: Path, lineno: int) -> dict[str, Any]:
    """One complete JSONL line as an object.

    Raises:
        RunDirError: it is not valid JSON, or not an object (naming file and line).
    """
    try:
        row = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise RunDirError(f"{path}:{lineno}: corrupt record (not valid JSON)") from None
    if not isinstance(row, dict):
        raise RunDirError(f"{path}:{lineno}: corrupt record (not a JSON object)")
    return row
