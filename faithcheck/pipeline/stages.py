"""The record-producing stages of `faithcheck score`.

The sampling and probe stages run on the sampled model and append their records problem by
problem; the check and diversity stages run on the samples (and the judge's records) with
no model of the run loaded, and write their files whole, atomically. Each stage skips what
the run directory already holds, so a resumed run never redoes finished work (request
seeds make a redone partial problem exact); the report only folds these files.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from faithcheck.backends.base import Backend
from faithcheck.checks.derivation import DerivationFinding, analyze
from faithcheck.checks.support import SupportFinding, check_response
from faithcheck.diversity.core import ProblemDiversity, summarize_diversity_groups
from faithcheck.diversity.embed import Embedder
from faithcheck.errors import RunDirError
from faithcheck.judge.stage import aligned_lookup, strategy_lookup
from faithcheck.probes import ProbeConfig, run_probes
from faithcheck.probes.run import MistakeWriter
from faithcheck.records import Problem
from faithcheck.sampling import SampleRecord, SamplingConfig, build_request, replay, sample
from faithcheck.store.jsonindex import ProblemIndex
from faithcheck.store.rundir import (
    DERIVATION_FILE,
    DIVERSITY_FILE,
    JUDGE_FILE,
    PROBES_FILE,
    SAMPLES_FILE,
    SUPPORT_FILE,
    RunDir,
)


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


def check_into(
    run: RunDir,
    keys: Sequence[str],
    questions: Callable[[], Mapping[str, str]],
    samples: ProblemIndex | None = None,
) -> None:
    """The judge-free checks: derivation.jsonl and support.jsonl, one line per response of
    the problems `keys`, in that order, each written whole and atomically.

    A file that already holds every problem of `keys` as valid records is kept (a resumed
    or rebuilt run does not redo it); a missing one (a run scored before the checks were a
    stage, or one that lost it) or an incomplete or unreadable one is computed again.

    Args:
        run: The run directory, locked by the caller.
        keys: The problems to check, in report order.
        questions: Problem id -> question text, called only when a file is computed
            (it grounds the support check's numbers, and both checks credit an operand
            the question writes to it rather than to an earlier equation).
        samples: An index of samples.jsonl already scanned.
    """
    derive = not _complete(run, DERIVATION_FILE, keys, DerivationFinding.model_validate)
    back = not _complete(run, SUPPORT_FILE, keys, SupportFinding.model_validate)
    if not (derive or back):
        return
    asked = questions()
    with contextlib.ExitStack() as stack:
        write = stack.enter_context(run.derivation_writer()) if derive else None
        write_support = stack.enter_context(run.derived_writer(SUPPORT_FILE)) if back else None
        for group in run.sample_groups(keys, samples):
            question = asked.get(group[0].problem_id, "") if group else ""
            if write_support is not None:
                write_support(check_response(r, question) for r in group)
            if write is not None:
                write(
                    analyze(
                        r.problem_id,
                        r.sample_index,
                        r.completion,
                        r.steps,
                        r.answer,
                        r.needs_arithmetic,
                        question,
                    )
                    for r in group
                )


@dataclass(frozen=True)
class DiversityStage:
    """What the diversity stage computes (`DiversityOptions.embed`, the judge's)."""

    embed: bool
    """Include the embedding metrics (loads the offline sentence embedder)."""
    strategy: bool
    """The strategy judge ran: strategy.jsonl holds its clusters."""
    judged: bool
    """The judge ran: judge.jsonl holds its labels (faithful strategy diversity)."""
    seed: int
    """The run seed."""


def diversity_into(
    run: RunDir,
    keys: Sequence[str],
    cfg: DiversityStage | None,
    samples: ProblemIndex | None = None,
) -> None:
    """diversity.jsonl: each problem's diversity metrics (`ProblemDiversity`), one line per
    problem of `keys`, in that order, written whole and atomically; None (`--no-diversity`)
    removes the file instead, so that no stale one outlives its report.

    A file that already holds every problem of `keys` as valid rows, all computed with one
    embedder when `cfg.embed` asks for one and with none otherwise, is kept (a run rebuilt
    on another machine keeps its values and their embedder's name); otherwise it is
    computed again (the embedder loads only then). A file written before rows named their
    embedder has none, so with `cfg.embed` it is computed again once.
    """
    if cfg is None:
        run.drop_derived(DIVERSITY_FILE)
        return
    embedders: set[str | None] = set()

    def validate(row: dict[str, Any]) -> ProblemDiversity:
        found = ProblemDiversity.model_validate(row)
        embedders.add(found.embedder)
        return found

    complete = _complete(run, DIVERSITY_FILE, keys, validate)  # fills `embedders`
    one_embedder = len(embedders) <= 1 and None not in embedders
    if complete and (one_embedder if cfg.embed else embedders <= {None}):
        return
    embedder = Embedder() if cfg.embed else None
    name = embedder.name if embedder is not None else None
    with run.diversity_writer() as write:

        def on_problem(pid: str, values: dict[str, float | None]) -> None:
            write([ProblemDiversity(problem_id=pid, embedder=name, **values)])

        summarize_diversity_groups(
            run.sample_groups(keys, samples),
            embedder=embedder,
            strategy=strategy_lookup(run) if cfg.strategy else None,
            aligned=aligned_lookup(run, run.index(JUDGE_FILE)) if cfg.judged else None,
            seed=cfg.seed,
            on_problem=on_problem,
        )


def _complete(
    run: RunDir, name: str, keys: Iterable[str], validate: Callable[[dict[str, Any]], Any]
) -> bool:
    """Whether the derived file `name` holds valid records of every problem in `keys`
    (it is written atomically, so a problem present is a problem whole)."""
    if not (run.path / name).is_file():
        return False
    try:
        index = run.index(name)
        wanted = list(keys)
        if any(key not in index for key in wanted):
            return False
        for _ in run.groups(name, validate, wanted, index):
            pass
    except RunDirError:
        return False
    return True
