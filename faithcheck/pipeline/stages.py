"""The record-producing stages of `faithcheck score` that run on the sampled model.

Each stage skips what the run directory already holds, so a resumed run never
redoes finished work (request seeds make a redone partial problem exact).
"""

from __future__ import annotations

from typing import Any

from faithcheck.backends.base import Backend
from faithcheck.probes import ProbeConfig, run_probes
from faithcheck.probes.run import MistakeWriter
from faithcheck.records import Problem
from faithcheck.sampling import SampleRecord, SamplingConfig, build_request, replay, sample
from faithcheck.store.rundir import PROBES_FILE, SAMPLES_FILE, RunDir


def sample_into(
    run: RunDir,
    backend: Backend,
    problems: list[Problem],
    cfg: SamplingConfig,
    chunk_size: int,
    progress: Any,
    rollouts: dict[str, list[str]] | None = None,
) -> int:
    """Sample the problems not yet on disk into the run (or replay saved rollouts);
    returns the tokens generated."""
    on_disk = run.index(SAMPLES_FILE)
    # Partially sampled problems are redone whole (request seeds make that exact).
    todo = [
        p
        for p in problems
        if on_disk.count(p.id) < (len(rollouts.get(p.id, [])) if rollouts else cfg.samples)
    ]
    del on_disk
    tokens = 0

    def on_records(records: list[SampleRecord]) -> None:
        nonlocal tokens
        tokens += sum(len(r.completion_token_ids) for r in records)
        run.append_samples(records)

    advance = None
    if progress is not None:
        progress.start()  # only now: an early error must not leave a bar behind
        task = progress.add_task("sampling", total=len(problems))
        progress.update(task, completed=len(problems) - len(todo))
        advance = lambda n: progress.advance(task, n)  # noqa: E731
    if rollouts is not None:
        replay(backend, todo, rollouts, cfg, run.append_samples, on_progress=advance)
        return 0
    sample(backend, todo, cfg, on_records, chunk_size=chunk_size, on_progress=advance)
    return tokens


def probe_into(
    run: RunDir,
    backend: Backend,
    problems: list[Problem],
    cfg: SamplingConfig,
    probe_cfg: ProbeConfig,
    progress: Any,
    chunk_size: int,
    mistake_writer: MistakeWriter | None = None,
) -> None:
    """Probe the problems whose probe records are not on disk yet, reading their samples
    from the run one chunk of problems at a time.

    Records reach the file grouped by problem, so only the last problem in the file can be
    incomplete after a kill (whole lines of its first probe kinds, none of the rest): its
    records are dropped and the problem is probed again.
    """
    on_disk = run.index(PROBES_FILE)
    if on_disk.last_key is not None:
        run.drop_problem(PROBES_FILE, on_disk.last_key)
    done = set(on_disk) - {on_disk.last_key}
    del on_disk
    todo = [p for p in problems if p.id not in done]
    advance = None
    if progress is not None:
        task = progress.add_task("probes", total=len(problems))
        progress.update(task, completed=len(problems) - len(todo))
        advance = lambda n: progress.advance(task, n)  # noqa: E731
    samples = run.index(SAMPLES_FILE)

    def samples_of(ids: list[str]) -> list[SampleRecord]:
        return [s for group in run.sample_groups(ids, samples) for s in group]

    run_probes(
        backend,
        todo,
        samples_of,
        lambda p: build_request(backend, p, cfg).prompt_ids,
        probe_cfg,
        max_tokens=cfg.max_tokens,
        seed=cfg.seed,
        on_records=run.append_probes,
        on_progress=advance,
        chunk_size=chunk_size,
        mistake_writer=mistake_writer,
    )
