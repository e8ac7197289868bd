"""Reading a run's JSONL files one problem at a time.

Record files hold thousands of lines per hundred problems, and every report aggregate is
computed per problem (problems are the bootstrap unit). Loading a whole file would make
memory grow with the run; instead `ProblemIndex` scans a file once, keeping for each
problem only where its lines sit (byte spans), and reads one problem's lines back on
demand. A problem's lines are usually one contiguous span (stages write problem by
problem); a resumed problem can have a second.

The scan validates that every complete line is a JSON object with a string key, with the
same one-line errors as `faithcheck.store.jsonio.read_jsonl_numbered`; a torn last line (a kill
mid-write) is not indexed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faithcheck.errors import RunDirError
from faithcheck.store.jsonio import parse_line


@dataclass
class _Span:
    """Consecutive lines of one problem: byte offset, first line number, bytes, lines."""

    offset: int
    lineno: int
    size: int
    lines: int


class ProblemIndex:
    """Where each problem's records sit in a JSONL file.

    Memory is a few small numbers per problem, whatever the number of records. Subclasses
    may override `_key_of` (how a line's problem is read, and its errors).
    """

    def __init__(self, path: Path, key: str = "problem_id") -> None:
        self.path = path
        self.key = key
        self._spans: dict[str, list[_Span]] = {}
        self.size = 0
        """Bytes indexed: the file's size up to its last complete line."""
        self.line_count = 0
        """Lines indexed (blank lines included, for line numbers)."""
        self.last_key: str | None = None
        """Key of the last record in the file."""
        self._scan()

    def _scan(self) -> None:
        if not self.path.exists():
            return
        with self.path.open("rb") as fh:
            for line in fh:
                if not line.endswith(b"\n"):
                    break  # torn tail: the process died mid-write
                self.line_count += 1
                if line.strip():
                    self._add(
                        self._key_of(line, self.line_count), self.size, self.line_count, len(line)
                    )
                self.size += len(line)

    def _key_of(self, line: bytes, lineno: int) -> str:
        row = parse_line(line, self.path, lineno)
        value = row.get(self.key)
        if not isinstance(value, str):
            raise RunDirError(f"{self.path}:{lineno}: corrupt record ({self.key}: missing)")
        return value

    def _add(self, key: str, offset: int, lineno: int, size: int) -> None:
        spans = self._spans.setdefault(key, [])
        last = spans[-1] if spans else None
        if last is not None and last.offset + last.size == offset and self.last_key == key:
            last.size += size
            last.lines += 1
        else:
            spans.append(_Span(offset, lineno, size, 1))
        self.last_key = key

    def note_appended(self, keyed_lines: list[tuple[str, bytes]]) -> None:
        """Account for lines just appended to the file (each ends in a newline)."""
        for key, line in keyed_lines:
            self.line_count += 1
            self._add(key, self.size, self.line_count, len(line))
            self.size += len(line)

    def __iter__(self) -> Iterator[str]:
        """Problems in order of first appearance in the file."""
        return iter(list(self._spans))

    def __len__(self) -> int:
        return len(self._spans)

    def __contains__(self, key: object) -> bool:
        return key in self._spans

    def count(self, key: str) -> int:
        """Records of one problem (0 when it has none)."""
        return sum(s.lines for s in self._spans.get(key, ()))

    def rows(self, key: str) -> Iterator[tuple[int, dict[str, Any]]]:
        """(line number, object) of every record of one problem, in file order."""
        for lineno, line in self.lines(key):
            yield lineno, parse_line(line, self.path, lineno)

    def lines(self, key: str) -> Iterator[tuple[int, bytes]]:
        """(line number, raw line with its newline) of every record of one problem.

        Raises:
            RunDirError: the file is unreadable, or changed since it was scanned.
        """
        spans = self._spans.get(key)
        if not spans:
            return
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError as exc:
            raise RunDirError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        try:
            for span in spans:
                data = os.pread(fd, span.size, span.offset)
                if len(data) != span.size or not data.endswith(b"\n"):
                    raise RunDirError(f"{self.path} changed while it was being read")
                lineno = span.lineno
                for line in data.splitlines(keepends=True):
                    if line.strip():
                        yield lineno, line
                    lineno += 1
        finally:
            os.close(fd)
