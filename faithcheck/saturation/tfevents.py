"""Scalars from TensorBoard event files, without TensorFlow or tensorboard installed.

An event file is TFRecord framing around serialized `tensorflow.Event` protobufs. Each record:

    uint64 length (little endian) | uint32 masked crc32c(length) | data | uint32 masked crc32c(data)

and masked(crc) = ((crc >> 15 | crc << 17) + 0xA282EAD8) mod 2**32. Only the few protobuf fields
a scalar needs are decoded, by hand (wire format: key = field << 3 | wire type):

    Event:         wall_time = 1 (double), step = 2 (int64), summary = 5 (Summary)
    Summary:       value = 1 (repeated Value)
    Summary.Value: tag = 1, simple_value = 2 (float; PyTorch's SummaryWriter, TF1),
                   metadata = 9 (SummaryMetadata: plugin_data = 1 -> plugin_name = 1),
                   tensor = 8 (TensorProto; TF2 `tf.summary.scalar`)
    TensorProto:   dtype = 1, tensor_shape = 2, tensor_content = 4, float_val = 5,
                   double_val = 6, int_val = 7, int64_val = 10, half_val = 13

Histograms, images, text and tensors with more than one element are skipped.

Files are read record by record, never whole, and the CRC comes from a native CRC-32C when
one is importable (`google-crc32c`, or `crc32c`); the pure-Python fallback is ~100x slower
(`benchmarks/tfevents.py` measures both).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from faithcheck.errors import DataError
from faithcheck.store.jsonio import atomic_write_bytes

_MASK_DELTA = 0xA282EAD8
_U32 = 0xFFFFFFFF


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1  # Castagnoli, reflected
        table.append(crc)
    return table


_TABLE = _crc_table()


def crc32c_python(data: bytes) -> int:
    """CRC-32C (Castagnoli) of data, in pure Python (the fallback)."""
    crc = _U32
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ _U32


def _native_crc32c() -> tuple[Callable[[bytes], int] | None, str]:
    """A compiled CRC-32C and its name, or (None, "python") when none is importable."""
    try:
        import google_crc32c

        if google_crc32c.implementation == "c":
            return google_crc32c.value, "google-crc32c"
    except ImportError:
        pass
    try:
        import crc32c as crc32c_pkg

        return crc32c_pkg.crc32c, "crc32c"
    except ImportError:
        pass
    return None, "python"


_NATIVE, CRC_IMPLEMENTATION = _native_crc32c()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of data: native when available (see `CRC_IMPLEMENTATION`)."""
    return _NATIVE(data) if _NATIVE is not None else crc32c_python(data)


def masked_crc(data: bytes) -> int:
    """The masked CRC TFRecord stores next to the length and the payload."""
    crc = crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & _U32) + _MASK_DELTA) & _U32


# --- protobuf wire format ---------------------------------------------------------------------


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def fields(buf: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of a serialized message; value is int or bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + size], pos + size
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if pos > len(buf):
            raise ValueError("truncated field")
        yield number, wire, value


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


# dtype -> (struct code, byte width) for TensorProto.tensor_content
_DTYPES = {1: ("<f", 4), 2: ("<d", 8), 3: ("<i", 4), 9: ("<q", 8), 19: ("<e", 2)}


def _tensor_scalar(buf: bytes) -> float | None:
    """The value of a one-element numeric TensorProto, else None."""
    dtype, elements = 0, 1
    content = b""
    packed: dict[int, list[float]] = {}
    for number, wire, value in fields(buf):
        if number == 1 and wire == 0:
            dtype = value
        elif number == 2 and wire == 2:
            for dim_no, dim_wire, dim in fields(value):
                if dim_no == 2 and dim_wire == 2:
                    elements *= next((v for n, w, v in fields(dim) if n == 1 and w == 0), 0)
        elif number == 4 and wire == 2:
            content = value
        elif number in (5, 6, 7, 10, 13):
            packed.setdefault(number, []).extend(_repeated(number, wire, value))
    if elements != 1 or dtype not in _DTYPES:
        return None
    code, width = _DTYPES[dtype]
    if len(content) == width:
        return float(struct.unpack(code, content)[0])
    for number in (5, 6, 7, 10):
        if packed.get(number):
            return packed[number][0]
    if packed.get(13):  # half_val: float16 bits in an int32
        return float(struct.unpack("<e", struct.pack("<H", int(packed[13][0]) & 0xFFFF))[0])
    return None


def _repeated(number: int, wire: int, value: Any) -> list[float]:
    """Values of a repeated numeric field, packed (wire 2) or not."""
    if number == 5:
        data = value if wire in (2, 5) else b""
        return [float(v) for (v,) in struct.iter_unpack("<f", data)]
    if number == 6:
        data = value if wire in (1, 2) else b""
        return [float(v) for (v,) in struct.iter_unpack("<d", data)]
    if wire == 0:
        return [float(_signed64(value))]
    out, pos = [], 0
    while wire == 2 and pos < len(value):
        v, pos = _varint(value, pos)
        out.append(float(_signed64(v)))
    return out


def _plugin(metadata: bytes) -> str | None:
    for number, wire, value in fields(metadata):
        if number == 1 and wire == 2:
            for n, w, v in fields(value):
                if n == 1 and w == 2:
                    return bytes(v).decode("utf-8", "replace")
    return None


def _summary_scalars(summary: bytes) -> Iterator[tuple[str, float]]:
    for number, wire, value in fields(summary):
        if number != 1 or wire != 2:
            continue
        tag, scalar, plugin = None, None, None
        for n, w, v in fields(value):
            if n == 1 and w == 2:
                tag = bytes(v).decode("utf-8", "replace")
            elif n == 2 and w == 5:
                scalar = struct.unpack("<f", v)[0]
            elif n == 8 and w == 2:
                scalar = _tensor_scalar(v)
            elif n == 9 and w == 2:
                plugin = _plugin(v)
        if tag is not None and scalar is not None and plugin in (None, "scalars"):
            yield tag, float(scalar)


def event_scalars(event: bytes) -> Iterator[tuple[int, str, float]]:
    """(step, tag, value) for every scalar in one serialized Event."""
    step = 0
    summaries = []
    for number, wire, value in fields(event):
        if number == 2 and wire == 0:
            step = _signed64(value)
        elif number == 5 and wire == 2:
            summaries.append(value)
    for summary in summaries:
        for tag, value in _summary_scalars(summary):
            yield step, tag, value


# --- framing ----------------------------------------------------------------------------------


class TornRecord(Exception):
    """The stream ended inside a record (at byte `args[0]`)."""


def iter_records(stream: IO[bytes], name: str = "") -> Iterator[bytes]:
    """Payloads of a TFRecord stream, read one record at a time.

    A torn record at the end (a file still being written) ends the iteration and raises
    `TornRecord` with the payloads already yielded kept by the caller.

    Raises:
        DataError: a CRC does not match (the file is corrupt or not an event file).
        TornRecord: the stream ends inside a record.
    """
    pos = 0
    while True:
        head = stream.read(12)
        if not head:
            return
        if len(head) < 12:
            raise TornRecord(pos)
        header = head[:8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", head[8:12])
        if masked_crc(header) != length_crc:
            raise DataError(f"{name}: not a TensorBoard event file (bad record at byte {pos})")
        body = stream.read(length + 4)
        if len(body) < length + 4:
            raise TornRecord(pos)
        payload = body[:length]
        (data_crc,) = struct.unpack("<I", body[length:])
        if masked_crc(payload) != data_crc:
            raise DataError(f"{name}: corrupt event record at byte {pos} (CRC mismatch)")
        yield payload
        pos += 12 + length + 4


def records(data: bytes, name: str = "") -> tuple[list[bytes], bool]:
    """Payloads of a TFRecord byte string, and whether it ended in a torn (partial) record.

    Raises:
        DataError: a CRC does not match (the file is corrupt or not an event file).
    """
    out: list[bytes] = []
    try:
        out.extend(iter_records(io.BytesIO(data), name))
    except TornRecord:
        return out, True
    return out, False


def frame(payload: bytes) -> bytes:
    """One TFRecord: length, its masked CRC, payload, the payload's masked CRC."""
    header = struct.pack("<Q", len(payload))
    return (
        header
        + struct.pack("<I", masked_crc(header))
        + payload
        + struct.pack("<I", masked_crc(payload))
    )


def read_scalar_rows(paths: Iterable[Path]) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows {"step": s, tag: value}, one per scalar event, in file then record order.

    Event files in different folders are different TensorBoard runs; when there are several,
    tags are prefixed with the folder (relative to their common parent) to keep them apart.

    Returns:
        The rows, and notes (torn records at the end of a file being written).
    """
    files = list(paths)
    folders = {p.parent for p in files}
    common = Path(*_common_parts([p.parent.parts for p in files])) if len(folders) > 1 else None
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    for path in files:
        prefix = "" if common is None else f"{path.parent.relative_to(common).as_posix()}/"
        try:
            with path.open("rb", buffering=1 << 20) as stream:
                for payload in iter_records(stream, str(path)):
                    rows.extend(
                        {"step": s, f"{prefix}{tag}": v} for s, tag, v in _scalars(payload, path)
                    )
        except TornRecord:
            notes.append(f"{path.name}: ignored a partial last record (file still being written?)")
        except OSError as exc:
            raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    return rows, notes


def _scalars(payload: bytes, path: Path) -> list[tuple[int, str, float]]:
    try:
        return list(event_scalars(payload))
    except (ValueError, struct.error) as exc:
        raise DataError(f"{path}: malformed event ({exc})") from None


def _common_parts(parts: list[tuple[str, ...]]) -> tuple[str, ...]:
    first = parts[0]
    n = 0
    while n < len(first) and all(len(p) > n and p[n] == first[n] for p in parts):
        n += 1
    return first[:n]


# --- writing (sample logs and tests) ----------------------------------------------------------


def _key(number: int, wire: int) -> bytes:
    return _encode_varint(number << 3 | wire)


def _encode_varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _bytes_field(number: int, data: bytes) -> bytes:
    return _key(number, 2) + _encode_varint(len(data)) + data


def encode_scalar_event(step: int, tag: str, value: float, *, wall_time: float, tf2: bool) -> bytes:
    """A serialized Event holding one scalar: simple_value, or a TF2-style float tensor."""
    if tf2:
        tensor = _key(1, 0) + _encode_varint(1) + _bytes_field(2, b"")
        tensor += _bytes_field(5, struct.pack("<f", value))  # packed float_val
        plugin = _bytes_field(1, _bytes_field(1, b"scalars"))
        body = _bytes_field(1, tag.encode()) + _bytes_field(9, plugin) + _bytes_field(8, tensor)
    else:
        body = _bytes_field(1, tag.encode()) + _key(2, 5) + struct.pack("<f", value)
    summary = _bytes_field(1, body)
    return (
        _key(1, 1)
        + struct.pack("<d", wall_time)
        + _key(2, 0)
        + _encode_varint(step)
        + _bytes_field(5, summary)
    )


def encode_file_version(wall_time: float) -> bytes:
    """The first Event of every file: file_version "brain.Event:2"."""
    return _key(1, 1) + struct.pack("<d", wall_time) + _bytes_field(3, b"brain.Event:2")


def write_scalars(
    path: Path,
    scalars: Iterable[tuple[int, str, float]],
    *,
    start_time: float = 1_700_000_000.0,
    tf2: bool = False,
) -> None:
    """Write (step, tag, value) scalars as an event file (wall time = start_time + step)."""
    parts = [frame(encode_file_version(start_time))]
    for step, tag, value in scalars:
        event = encode_scalar_event(step, tag, value, wall_time=start_time + step, tf2=tf2)
        parts.append(frame(event))
    atomic_write_bytes(path, b"".join(parts))
