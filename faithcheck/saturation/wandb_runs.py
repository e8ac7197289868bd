"""The history of a local wandb run (`wandb/run-*/run-<id>.wandb`), without wandb installed.

wandb writes every run, online or offline, to a local transaction log before it syncs
anything. The file is a 7-byte header (":W&B", magic 0xBEE1 little-endian, version 0)
followed by LevelDB log framing: 32 KiB blocks of chunks

    uint32 crc (little endian) | uint16 length | uint8 type | data

where crc is CRC-32 (IEEE, as zlib computes it) of the type byte then the data, and type is
FULL 1, or FIRST 2 / MIDDLE 3 / LAST 4 for a record split across blocks; a block's last
bytes, too few for a chunk header, are zero padding. The file header counts toward the first
block. Each record is a serialized `wandb_internal.Record` protobuf, of which only the run
and history fields are decoded (by hand, field numbers from wandb's `wandb_internal.proto`):

    Record:        history = 2 (HistoryRecord), run = 17 (RunRecord)
    HistoryRecord: item = 1 (repeated HistoryItem), step = 2 (HistoryStep: num = 1)
    HistoryItem:   key = 1, nested_key = 2 (repeated; joined with "/"), value_json = 16
    RunRecord:     run_id = 1, project = 3, display_name = 8

Each history record is one row of `wandb.log`: its keys, `_step`, `_runtime`, `_timestamp`.
Values are JSON; media and tables are dicts, which the column chooser skips as non-numbers.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from faithcheck.errors import DataError
from faithcheck.saturation.tfevents import TornRecord, fields

HEADER = b":W&B" + struct.pack("<H", 0xBEE1) + b"\x00"
BLOCK = 32 * 1024
_CHUNK = 7
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


@dataclass
class WandbRun:
    """A run's history rows and its identity."""

    path: Path
    rows: list[dict[str, Any]]
    run_id: str = ""
    name: str = ""
    project: str = ""
    notes: list[str] = field(default_factory=list)


def is_wandb_file(path: Path) -> bool:
    return path.suffix == ".wandb"


def run_file(path: Path) -> Path:
    """The `.wandb` file behind a path: the file itself, a run folder, or a `wandb/` folder
    holding exactly one run (or a `latest-run` link).

    Raises:
        DataError: no run there, or several and none chosen.
    """
    if path.is_file():
        return path
    found = sorted(path.glob("*.wandb"))
    if len(found) == 1:
        return found[0]
    latest = path / "latest-run"
    if latest.is_dir():
        return run_file(latest)
    runs = sorted({p.parent for p in path.glob("*/*.wandb")})
    if len(runs) == 1:
        return run_file(runs[0])
    if runs:
        listed = ", ".join(p.name for p in runs[:3]) + (", ..." if len(runs) > 3 else "")
        raise DataError(f"{path}: {len(runs)} wandb runs ({listed}); pass one run folder")
    raise DataError(f"{path}: no wandb run file (run-<id>.wandb) here")


def iter_records(stream: IO[bytes], name: str = "") -> Iterator[bytes]:
    """The records of a wandb log, reassembled from their chunks, read block by block.

    Raises:
        DataError: not a wandb log, or a chunk's CRC or type is wrong.
        TornRecord: the log ends inside a chunk or a split record.
    """
    if stream.read(len(HEADER)) != HEADER:
        raise DataError(f"{name}: not a wandb run file (bad header)")
    pos = len(HEADER)
    pending: list[bytes] | None = None
    while True:
        left = BLOCK - pos % BLOCK
        if left < _CHUNK:
            stream.read(left)
            pos += left
            continue
        head = stream.read(_CHUNK)
        if not head:
            break
        if len(head) < _CHUNK:
            raise TornRecord
        crc, length, kind = struct.unpack("<IHB", head)
        if kind == 0 and length == 0:  # zero padding up to the end of the block
            stream.read(left - _CHUNK)
            pos += left
            continue
        data = stream.read(length)
        if len(data) < length:
            raise TornRecord
        if zlib.crc32(data, zlib.crc32(bytes([kind]))) != crc:
            raise DataError(f"{name}: corrupt wandb record at byte {pos} (CRC mismatch)")
        pos += _CHUNK + length
        if kind == _FULL:
            yield data
        elif kind == _FIRST:
            pending = [data]
        elif kind in (_MIDDLE, _LAST) and pending is not None:
            pending.append(data)
            if kind == _LAST:
                yield b"".join(pending)
                pending = None
        else:
            raise DataError(f"{name}: unexpected wandb chunk type {kind} at byte {pos}")
    if pending is not None:
        raise TornRecord


def _text(value: bytes) -> str:
    return bytes(value).decode("utf-8", "replace")


def _history_row(record: bytes) -> dict[str, Any]:
    row: dict[str, Any] = {}
    step: int | None = None
    for number, wire, value in fields(record):
        if number == 1 and wire == 2:
            key, nested, raw = "", [], None
            for n, w, v in fields(value):
                if n == 1 and w == 2:
                    key = _text(v)
                elif n == 2 and w == 2:
                    nested.append(_text(v))
                elif n == 16 and w == 2:
                    raw = bytes(v)
            name = key or "/".join(nested)
            if name and raw is not None:
                try:
                    row[name] = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    continue
        elif number == 2 and wire == 2:
            for n, w, v in fields(value):
                if n == 1 and w == 0:
                    step = v
    if "_step" not in row and step is not None:
        row["_step"] = step
    return row


def read_run(path: Path) -> WandbRun:
    """The history of the wandb run at `path` (see `run_file` for what a path may be).

    Raises:
        DataError: unreadable, not a wandb log, or corrupt.
    """
    file = run_file(path)
    run = WandbRun(path=file, rows=[])
    try:
        with file.open("rb", buffering=1 << 20) as stream:
            for record in iter_records(stream, str(file)):
                for number, wire, value in fields(record):
                    if number == 2 and wire == 2:
                        run.rows.append(_history_row(value))
                    elif number == 17 and wire == 2:
                        _identity(run, value)
    except TornRecord:
        run.notes.append(f"{file.name}: ignored a partial last record (run still being written?)")
    except OSError as exc:
        raise DataError(f"{file}: cannot read ({exc.strerror})") from None
    except (ValueError, struct.error) as exc:
        raise DataError(f"{file}: malformed wandb record ({exc})") from None
    return run


def _identity(run: WandbRun, record: bytes) -> None:
    for number, wire, value in fields(record):
        if wire != 2:
            continue
        if number == 1:
            run.run_id = _text(value)
        elif number == 3:
            run.project = _text(value)
        elif number == 8:
            run.name = _text(value)
