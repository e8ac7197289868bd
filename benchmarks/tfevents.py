"""Reading a TensorBoard event file for `saturation`: native CRC-32C against the pure-Python one.

Writes one event file of scalar events (a long RL run's reward, eval and loss curves), then
reads it with `read_scalar_rows` twice in one process: with the CRC the module selected
(`google-crc32c` or `crc32c` when importable) and with the pure-Python fallback. Prints
MiB/s of each, their ratio, and the peak Python memory of a read (the file is streamed
record by record, so the peak is the rows, not the file).

    python benchmarks/tfevents.py [--mib 32]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

from faithcheck.backends.precision import probe_device
from faithcheck.saturation import tfevents as tfe


def _cpu() -> str:
    return str(probe_device(cpu=True).cpu_capability)


def _write(path: Path, mib: float) -> int:
    """Scalar events until the file holds about `mib` MiB; the number of events."""
    n = 0
    with path.open("wb") as fh:
        fh.write(tfe.frame(tfe.encode_file_version(0.0)))
        while fh.tell() < mib * (1 << 20):
            for tag in ("train/reward", "train/loss", "train/kl", "eval/accuracy"):
                event = tfe.encode_scalar_event(n, tag, (n % 97) / 97, wall_time=n, tf2=False)
                fh.write(tfe.frame(event))
            n += 1
    return n


def _read(path: Path) -> tuple[float, int]:
    t0 = time.perf_counter()
    rows, _ = tfe.read_scalar_rows([path])
    return time.perf_counter() - t0, len(rows)


def _peak(path: Path) -> int:
    tracemalloc.start()
    tfe.read_scalar_rows([path])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mib", type=float, default=32.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.out.tfevents.0.bench"
        steps = _write(path, args.mib)
        size = path.stat().st_size / (1 << 20)
        print(f"CPU capability: {_cpu()}; file {size:.1f} MiB, {steps} steps x 4 scalars")
        native = tfe._NATIVE
        results = {}
        for label, fn in ((tfe.CRC_IMPLEMENTATION, native), ("python", None)):
            tfe._NATIVE = fn
            seconds, rows = _read(path)
            results[label] = seconds
            print(f"  crc {label:14s} {seconds:7.2f} s  {size / seconds:7.1f} MiB/s  {rows} rows")
        tfe._NATIVE = native
        print(f"  peak Python memory of a read: {_peak(path) / (1 << 20):.1f} MiB (the rows)")
        if tfe.CRC_IMPLEMENTATION != "python":
            ratio = results["python"] / results[tfe.CRC_IMPLEMENTATION]
            print(f"  native is {ratio:.1f}x faster than the pure-Python CRC on this file")


if __name__ == "__main__":
    main()
