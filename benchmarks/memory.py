"""Peak memory of `faithcheck score` as the number of problems grows (goal: flat).

Run: .venv/bin/python benchmarks/memory.py [--sizes 10,100,1000] [--responses 4] [--no-heap]

For each size N, writes a rollouts JSONL of N generated arithmetic problems with
`--responses` saved responses each (about 150 tokens, half of them wrong), then runs
`faithcheck score --from-samples FILE --backend hf --probes none --no-judge
--no-diversity` in fresh processes and fresh run directories: the model is loaded but
only tokenizes, so the run's own data structures are what can grow. Two runs per N:

- peak RSS: the plain run's ru_maxrss (from wait4: the process itself, not the
  math-verify worker it spawns). Loading the model is a transient that can hide
  later growth (and RSS later in the run varies by +-100 MiB between identical runs), so
- Python heap: a second run under tracemalloc (Python allocations, not torch tensors)
  reports the heap when the report phase starts (after sampling: what the run holds
  across stages) and the heap's peak during the report phase, which reads every record
  of the run back and aggregates it (a hook on `build_report` where
  `faithcheck.pipeline.core` calls it).

Prints both with their ratios to the smallest N, and the wall times (tracemalloc slows
its run several times over).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from faithcheck.backends.precision import describe_machine

# `faithcheck score` with tracemalloc on, reporting the Python heap (current and peak so
# far) on stderr when the report summarizes the samples.
HOOKED_SCORE = """
import sys, tracemalloc
tracemalloc.start()
from faithcheck.pipeline import core as pipeline
report = pipeline.build_report
def measured(*args, **kwargs):
    start = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    out = report(*args, **kwargs)
    print("HEAP_AT_REPORT", start, tracemalloc.get_traced_memory()[1], file=sys.stderr, flush=True)
    return out
pipeline.build_report = measured
from faithcheck.cli.commands import entry
sys.argv = ["faithcheck", *sys.argv[1:]]
entry()
"""


def write_rollouts(path: Path, problems: int, responses: int) -> None:
    """N problems x `responses` responses in the `--from-samples` schema."""
    with path.open("wb") as fh:
        for i in range(problems):
            a, b, c = 17 + i, 3 + i % 11, 2 + i % 5
            answer = (a + b) * c
            for j in range(responses):
                final = answer if j % 2 == 0 else answer + 1 + j
                steps = [
                    f"We need ({a} + {b}) * {c}. First the sum inside the brackets.",
                    f"{a} + {b} = {a + b}, since adding {b} to {a} gives {a + b}.",
                    f"Now multiply the sum by {c}: {a + b} * {c} = {answer}.",
                    f"Check: {answer} / {c} = {a + b}, and {a + b} - {b} = {a}, as given.",
                    f"So the value of the expression is {final}.",
                    f"The answer is \\boxed{{{final}}}.",
                ]
                row = {
                    "id": f"gen-{i:05d}",
                    "question": f"What is ({a} + {b}) * {c}? Show your steps.",
                    "answer": str(answer),
                    "response": "\n\n".join(steps),
                }
                fh.write(orjson.dumps(row) + b"\n")


def run(cmd: list[str]) -> tuple[float, bytes, float]:
    """(peak RSS MiB, stderr, wall seconds) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()  # drained before waiting: a full pipe would block the child
    _, status, usage = os.wait4(proc.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1, 4):
        sys.exit(f"score failed ({code}): {err.decode()[-2000:]}")
    return usage.ru_maxrss / 1024, err, time.perf_counter() - start


def heap(err: bytes) -> tuple[float, float]:
    """(heap when the report starts, heap peak during the report) in MiB from the hooked
    run's stderr."""
    line = next(x for x in err.splitlines() if x.startswith(b"HEAP_AT_REPORT"))
    current, peak = (int(v) / 2**20 for v in line.split()[1:3])
    return current, peak


def main() -> None:
    """Measure every size and print RSS, heap and the ratios."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10,100,1000")
    ap.add_argument("--responses", type=int, default=4)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--no-heap", action="store_true", help="skip the tracemalloc runs")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    root = Path(tempfile.mkdtemp(prefix="faithcheck-memory-"))
    rows = []
    for n in sizes:
        data = root / f"rollouts-{n}.jsonl"
        write_rollouts(data, n, args.responses)
        score = [
            "score", "--model", args.model, "--from-samples", str(data), "--backend", "hf",
            "--dtype", args.dtype, "--probes", "none", "--no-judge", "--no-diversity",
        ]  # fmt: skip
        rss, _, wall = run([sys.executable, "-m", "faithcheck", *score, "--out", f"{root}/{n}"])
        traced = (float("nan"), float("nan"))
        if not args.no_heap:
            hooked = [sys.executable, "-c", HOOKED_SCORE, *score, "--out", f"{root}/{n}-heap"]
            traced = heap(run(hooked)[1])
        rows.append((n, data.stat().st_size / 2**20, rss, *traced, wall))
        print(f"N={n}: peak RSS {rss:.0f} MiB, heap {traced[0]:.1f} MiB", file=sys.stderr)

    _, _, rss0, heap0, peak0, _ = rows[0]
    print(
        f"faithcheck score --from-samples (N problems x {args.responses} responses) "
        f"--backend hf --probes none --no-judge --no-diversity, {args.model} {args.dtype}"
    )
    ref = f"x N={rows[0][0]}"
    print(
        f"{'problems':>9}{'rollouts':>10}{'peak RSS':>10}{ref:>9}{'heap at report':>16}{ref:>9}"
        f"{'report peak':>13}{ref:>9}{'wall s':>8}   (MiB; wall of the plain run)"
    )
    for n, size, rss, now, peak, wall in rows:
        print(
            f"{n:>9}{size:>10.1f}{rss:>10.0f}{rss / rss0:>9.2f}{now:>16.1f}{now / heap0:>9.2f}"
            f"{peak:>13.1f}{peak / peak0:>9.2f}{wall:>8.1f}"
        )
    print(f"machine: {describe_machine()}")


if __name__ == "__main__":
    main()
