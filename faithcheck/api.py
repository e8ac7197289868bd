"""faithcheck's Python API: what the CLI does, callable from a notebook or a training loop.
The `faithcheck` command is a client of these functions: it parses arguments, prints
and picks exit codes; the work is done here.

    import faithcheck
    report = faithcheck.score(model="smollm2-135m", dataset="math", limit=2, samples=2,
                              out="runs/x")
    report.verdict.decision                      # "GO", "NO_GO" or "INCONCLUSIVE"

    # a model the training loop already holds: scored in place, never reloaded
    report = faithcheck.score(model=hf_model, tokenizer=tokenizer, out="runs/step-500",
                              judge=False)

    faithcheck.compare(["runs/base", "runs/sft"])          # -> Comparison
    faithcheck.load_report("runs/x")                       # -> Report
    faithcheck.decide("runs/x", require=["probes.mistakes.flip_rate>=0.3"])  # -> Verdict
    faithcheck.calibrate(judge_model="openai/o3", per_domain=4)  # -> Calibration

Every keyword is a `faithcheck score` option with dashes as underscores (`max_tokens`,
`probe_samples`, `judge_model`, ...), with the CLI's defaults, and goes through the same
validation: both reject the same bad input with the same `UsageError`. Messages go to
`on_message` (default: nowhere), never to stdout. Errors are `faithcheck.errors`
exceptions, each with the exit code the CLI would use (`exc.exit_code`).

The records these functions return are importable from here and from `faithcheck`:
`Report`, `Verdict`, `Comparison`, `ScoredCheckpoints`, `Calibration` (a
`JudgeReliability`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from faithcheck.errors import UsageError

if TYPE_CHECKING:
    from faithcheck.backends.base import DType
    from faithcheck.comparison.core import Comparison
    from faithcheck.comparison.multi import ScoredCheckpoints
    from faithcheck.judge import JudgeResult
    from faithcheck.judge.options import JudgeOptions
    from faithcheck.judge.reliability import Calibration, JudgeReliability
    from faithcheck.pipeline.options import ScoreOptions
    from faithcheck.records import Param
    from faithcheck.report import Report, Verdict
    from faithcheck.verdict.gates import GateSpec

__all__ = [
    "Calibration",
    "Comparison",
    "JudgeReliability",
    "Report",
    "ScoredCheckpoints",
    "Verdict",
    "calibrate",
    "compare",
    "decide",
    "gate_params",
    "json_schema",
    "load_report",
    "merge",
    "render_report",
    "score",
    "score_many",
    "score_params",
]

OnMessage = Callable[[str], None]
ScoreOne = Callable[[Any], "Report"]
"""Scores one checkpoint given the progress display to show it on (None: none)."""
EachCheckpoint = Callable[[int, str, ScoreOne], "Report"]
"""`score_many`'s hook around each checkpoint: (its number from 1, its model spec, the
function that scores it) -> its report."""

# The record types, resolved on first use like the functions (see `faithcheck.__init__`).
_RECORDS = {
    "Calibration": "faithcheck.judge.reliability",
    "Comparison": "faithcheck.comparison.core",
    "JudgeReliability": "faithcheck.judge.reliability",
    "Report": "faithcheck.report",
    "ScoredCheckpoints": "faithcheck.comparison.multi",
    "Verdict": "faithcheck.report",
}


def __getattr__(name: str) -> Any:
    if name in _RECORDS:
        import importlib

        return getattr(importlib.import_module(_RECORDS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _silent(_: str) -> None:
    """The default `on_message`: status lines go nowhere."""


def score(
    model: Any = None,
    *,
    tokenizer: Any = None,
    gate: str | Path | None = None,
    require: Sequence[str] = (),
    on_message: OnMessage | None = None,
    progress: Any = None,
    **options: Any,
) -> Report:
    """Score one checkpoint and return its `Report` (also written to the run directory).

    Args:
        model: an embedded alias, checkpoint folder or hub id (as `--model`); or a
            transformers model object (with `tokenizer`), scored where it is, in its dtype,
            without reloading (put in eval mode while scored, then back); or any object
            implementing `faithcheck.backends.base.Backend`. None: the default model.
        tokenizer: the tokenizer of a transformers model object.
        gate: a gate.toml (as `--gate`).
        require: extra checks, e.g. `["support.correct_but_unsupported<=0.5"]`.
        on_message: receives each status line (`precision: ...`, `resuming run in ...`).
        progress: a `rich.progress.Progress` to show stage progress on (or any object with
            its `start`, `add_task`, `update`, `advance` and `stop`), or None; started
            when the first stage starts, never stopped here.
        **options: any other `faithcheck score` option (see module docs).

    Raises:
        UsageError: a bad option (the CLI's message), DataError, ModelLoadError,
            BackendError, RunDirError: as the CLI reports them.
    """
    from faithcheck.pipeline.core import run_score
    from faithcheck.pipeline.preloaded import preload

    preloaded = None
    spec = model
    if model is not None and not isinstance(model, str | Path):
        preloaded = preload(model, tokenizer)
        spec = preloaded.identity.spec
    elif tokenizer is not None:
        raise UsageError("tokenizer= goes with a model object, not a model name")
    made_here = preloaded is not None and preloaded.backend is not model
    try:
        spec_gate, opts = _checked(spec, gate, require, options)
        return run_score(
            opts,
            say=on_message or _silent,
            progress=progress,
            gate=spec_gate,
            preloaded=preloaded,
        )
    finally:
        if made_here:  # our wrapper around the caller's model: hands it back as it came
            preloaded.backend.close()  # type: ignore[union-attr]


def score_params() -> list[Param]:
    """The options `score` and `score_many` take as keywords (`faithcheck score`'s, dashes
    as underscores), each with its type, default and help, as the packages declare them
    (`faithcheck.records.option`); the command line's options are made from these."""
    from faithcheck.pipeline.options import score_params as declared

    return declared()


def gate_params() -> list[Param]:
    """The gate options `score`, `score_many`, `merge` and `decide` take (`gate`,
    `require`; `--gate`, `--require`), as the verdict declares them."""
    from faithcheck.verdict.options import gate_params as declared

    return declared()


def score_many(
    models: Sequence[str],
    *,
    gate: str | Path | None = None,
    require: Sequence[str] = (),
    on_message: OnMessage | None = None,
    each: EachCheckpoint | None = None,
    **options: Any,
) -> ScoredCheckpoints:
    """Score several checkpoints on the same problems with the same seeds, each into
    `<out>/<name>`, and compare them (as `faithcheck score --model A --model B`); the
    comparison is also written to `<out>/comparison.json`.

    Args:
        models: the model specs (names, folders or hub ids), each at most once.
        gate, require, on_message, **options: as `score`'s, for every checkpoint.
        each: called around each checkpoint as `each(n, spec, score_one)`, where
            `score_one(progress)` scores it; returns its report. The caller's place to
            print a header and a summary, and to show progress. None: scored quietly.

    Raises:
        UsageError: a bad option, or a model given twice (before anything is scored);
            and what `score` raises.
    """
    from faithcheck.comparison.multi import (
        COMPARISON_FILE,
        ScoredCheckpoints,
        combined_decision,
        score_models,
    )
    from faithcheck.pipeline.core import run_score

    spec_gate, opts = _checked(models[0] if models else None, gate, require, options)
    say = on_message or _silent
    done = 0

    def score_one(one: ScoreOptions) -> Report:
        nonlocal done
        done += 1

        def run(progress: Any) -> Report:
            return run_score(one, say=say, progress=progress, gate=spec_gate)

        return each(done, one.model, run) if each is not None else run(None)

    root, reports, comparison = score_models(opts, models, score_one)
    return ScoredCheckpoints(
        out=str(root),
        comparison_file=str(root / COMPARISON_FILE),
        reports=reports,
        comparison=comparison,
        decision=combined_decision(reports),
    )


def _checked(
    model: str | Path | None,
    gate: str | Path | None,
    require: Sequence[str],
    options: dict[str, Any],
) -> tuple[GateSpec, ScoreOptions]:
    """The gate and the run's options, checked as the CLI checks them (the gate first;
    an unknown option before both)."""
    from faithcheck.pipeline.options import check_names, score_options
    from faithcheck.verdict.core import load_gate

    check_names(options)
    spec_gate = load_gate(str(gate) if gate else None, list(require))
    return spec_gate, score_options(model=str(model) if model is not None else None, **options)


def compare(
    runs: Sequence[str | Path],
    *,
    metrics: Sequence[str] | None = None,
    baseline: str | Path | None = None,
    max_drop: float | None = None,
    seed: int = 0,
    n_boot: int = 1000,
    out: str | Path | None = None,
) -> Comparison:
    """Compare finished runs (paired deltas with CIs, ranking; as `faithcheck compare`).

    Args:
        runs: run directories written by `score` (each with its report.json).
        metrics: metric names or report.json paths; None: the faithfulness and accuracy
            metrics some run has.
        baseline: the run the others are compared with: one of `runs`, or an extra run
            compared first. None: the first of `runs`.
        max_drop: gate every candidate on a 95% worsening larger than this.
        seed: the bootstrap seed.
        n_boot: bootstrap resamples.
        out: also write the comparison JSON here (atomically).

    Returns:
        The `Comparison` (what `compare --json` prints).

    Raises:
        UsageError: fewer than two runs, a run given twice, a missing report.json, an
            unknown metric, or `out` cannot be written.
    """
    from faithcheck.comparison.core import compare_runs
    from faithcheck.comparison.metrics import load_run
    from faithcheck.store.jsonio import write_json

    paths, base = _with_baseline([Path(r) for r in runs], Path(baseline) if baseline else None)
    if len(paths) < 2:
        raise UsageError("compare needs at least two run directories (or one and --baseline)")
    comparison = compare_runs(
        [load_run(p) for p in paths],
        list(metrics) if metrics is not None else None,
        baseline=base,
        max_drop=max_drop,
        seed=seed,
        n_boot=n_boot,
    )
    if out:
        try:
            write_json(Path(out), comparison)
        except OSError as exc:
            raise UsageError(f"cannot write --out {out}: {exc.strerror or exc}") from None
    return comparison


def _with_baseline(paths: list[Path], baseline: Path | None) -> tuple[list[Path], int]:
    """The runs and the baseline's index: an extra baseline goes first."""
    resolved = [p.resolve() for p in paths]
    if len(set(resolved)) < len(resolved):
        raise UsageError("a run directory is given twice")
    if baseline is None:
        return paths, 0
    if baseline.resolve() in resolved:
        return paths, resolved.index(baseline.resolve())
    return [baseline, *paths], 0


def load_report(path: str | Path) -> Report:
    """The `Report` of a run directory (its report.json) or of a report.json file.

    Raises:
        UsageError: no such file, or not a valid report (one line saying why: not JSON,
            written by a newer faithcheck (a newer MAJOR `schema_version`), written under
            another `schema_version`, or the first field that does not fit).
    """
    import orjson

    p = Path(path)
    file = p / "report.json" if p.is_dir() else p
    try:
        data = orjson.loads(file.read_bytes())
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror or exc}") from None
    except orjson.JSONDecodeError:
        raise UsageError(f"{file} is not a valid faithcheck report (not JSON)") from None
    return _as_report(data, str(file))


def _as_report(data: object, where: str) -> Report:
    from pydantic import ValidationError

    from faithcheck.report import Report
    from faithcheck.versions import SCHEMA_VERSION, check_schema_version

    if isinstance(data, Mapping):
        check_schema_version(data.get("schema_version"), where)
    try:
        return Report.model_validate(data)
    except ValidationError as exc:
        version = data.get("schema_version") if isinstance(data, Mapping) else None
        if version is not None and version != SCHEMA_VERSION:
            why = f"schema_version {version!r}; this faithcheck reads {SCHEMA_VERSION!r}"
        else:
            first = exc.errors()[0]
            field = ".".join(map(str, first["loc"])) or "the report"
            why = " ".join(f"{field}: {first['msg']}".split())
        raise UsageError(f"{where} is not a valid faithcheck report ({why})") from None


def decide(
    report: Report | Mapping[str, Any] | str | Path,
    *,
    gate: str | Path | None = None,
    require: Sequence[str] | str = (),
) -> Verdict:
    """Decide GO / NO_GO / INCONCLUSIVE for an already-scored run with other gates (as
    `faithcheck gate`): the decision `score` makes, from the report alone; no model loads
    and nothing is written.

    Args:
        report: a `Report`, a report.json dict, or a run directory / report.json path
            (read with `load_report`).
        gate: a gate.toml (as `--gate`).
        require: extra checks (as `--require`), e.g. `["probes.mistakes.flip_rate>=0.3"]`;
            one string is one check.

    Returns:
        The `Verdict`; `verdict.exit_code` is the exit code `score` would give it (0 GO,
        1 NO_GO, 4 INCONCLUSIVE).

    Raises:
        UsageError: a bad gate file or check (unknown metric, vacuous threshold), or a
            report that cannot be read or is not a valid report.
    """
    from faithcheck.report import Report
    from faithcheck.verdict.core import decide as decide_verdict
    from faithcheck.verdict.core import load_gate

    checks = [require] if isinstance(require, str) else list(require)
    spec = load_gate(str(gate) if gate else None, checks)
    if isinstance(report, str | Path):
        report = load_report(report)
    elif not isinstance(report, Report):
        report = _as_report(report, "the report dict")
    return decide_verdict(report, spec)


@overload
def calibrate(
    judge_model: str = ...,
    *,
    per_domain: int | None = ...,
    seed: int = ...,
    dtype: DType = ...,
    max_model_len: int = ...,
    out: str | Path | None = ...,
    on_message: OnMessage | None = ...,
    **judge_options: Any,
) -> Calibration: ...


@overload
def calibrate(
    judge_model: Sequence[str],
    *,
    per_domain: int | None = ...,
    seed: int = ...,
    dtype: DType = ...,
    max_model_len: int = ...,
    out: str | Path | None = ...,
    on_message: OnMessage | None = ...,
    **judge_options: Any,
) -> dict[str, Calibration]: ...


def calibrate(
    judge_model: str | Sequence[str] = "smollm2-135m",
    *,
    per_domain: int | None = None,
    seed: int = 0,
    dtype: DType = "auto",
    max_model_len: int = 2048,
    out: str | Path | None = None,
    on_message: OnMessage | None = None,
    **judge_options: Any,
) -> Calibration | dict[str, Calibration]:
    """Measure a judge on the bundled faithful / unfaithful pairs (as `faithcheck
    calibrate`); `judge_options` are the judge options without the `judge_` prefix
    (`backend`, `base_url`, `api_key_env`, `max_tokens`, `reasoning_effort`, `readout`,
    `rationale_tokens`, ...). A list of judges (a jury, each `MODEL[,key=value...]` as
    `--judge-model` takes it) calibrates each on its own, one loaded at a time.

    Args:
        judge_model: one judge, or a list of them (an empty list: the default judge).
        out: also write every judged item (rationale included) to this JSONL file; of
            several judges, each item says which judge gave it (`judge`).
        on_message: receives the status lines: each judge's precision, progress
            (`calibration: 6/18 items judged`) and, at the end, its usage; of several
            judges, both name the judge (`calibration openai/o3: 6/18 items judged`,
            `openai/o3: judge usage: ...`).

    Returns:
        The `Calibration`: the judge's `JudgeReliability`, its read-out and its usage;
        for a list of judges, a dict of each one's by name (`faithcheck.judge.jury
        .juror_names`: its model, `#2` after a model given twice).
    """
    from faithcheck.judge.choose import jury_options
    from faithcheck.judge.jury import juror_names
    from faithcheck.judge.stage import calibration_items
    from faithcheck.store.jsonio import atomic_write_bytes, dumps

    say = on_message or _silent
    if per_domain is not None and per_domain < 1:
        raise UsageError("--per-domain must be at least 1")
    chosen = jury_options(judge_model, **({"max_tokens": None} | judge_options))
    judges = [chosen["judge"], *chosen["jury"]]
    names = juror_names([j.model for j in judges])
    items = calibration_items(per_domain or 10_000, seed)
    measured: dict[str, Calibration] = {}
    results: list[JudgeResult] = []
    for opts, name in zip(judges, names, strict=True):
        tag = name if len(judges) > 1 else None  # one judge: its lines as before juries
        measured[name] = _calibrate_one(
            opts, items, tag, dtype, seed, max_model_len, say, results.extend
        )
    if out is not None:
        atomic_write_bytes(Path(out), b"".join(dumps(r) + b"\n" for r in results))
    return measured[names[0]] if isinstance(judge_model, str) else measured


def _calibrate_one(
    opts: JudgeOptions,
    items: list[Any],
    tag: str | None,
    dtype: DType,
    seed: int,
    max_model_len: int,
    say: OnMessage,
    keep: Callable[[list[JudgeResult]], None],
) -> Calibration:
    """One judge of `calibrate`, loaded, judged on `items` and closed; its judged items go
    to `keep`, its progress and usage lines (named by `tag`, a judge of several) to `say`."""
    from faithcheck.judge.plan import calibrate_judge
    from faithcheck.judge.reliability import Calibration
    from faithcheck.judge.usage import summarize_usage, usage_line

    who = f" {tag}" if tag else ""
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        say(f"calibration{who}: {done}/{len(items)} items judged")

    plan, rel, judged, calls = calibrate_judge(
        opts, items, dtype, seed, max_model_len, say, advance, name=tag
    )
    keep(judged)
    usage = summarize_usage(calls, price_in=opts.price_in, price_out=opts.price_out)
    say(f"{tag}: {usage_line(usage)}" if tag else usage_line(usage))
    return Calibration(**dict(rel), readout=plan.cfg.readout, usage=usage)


def merge(
    shards: Sequence[str | Path],
    out: str | Path,
    *,
    force: bool = False,
    allow_partial: bool = False,
    gate: str | Path | None = None,
    require: Sequence[str] = (),
    on_message: OnMessage | None = None,
) -> Report:
    """Combine the shard runs of one `score --shard i/N` job into the run directory `out`
    and return its `Report` (as `faithcheck merge`; no model loads).

    Args:
        shards: the shards' run directories, in any order.
        out: the merged run directory.
        force: replace a run already in `out`.
        allow_partial: merge even when shards are missing (with a warning).
        gate, require: as `score`'s.
        on_message: receives warnings and the one-line outcome.

    Raises:
        UsageError: a bad gate, or shards that do not make one run; DataError,
            RunDirError: as `faithcheck merge` reports them.
    """
    from faithcheck.pipeline.merge import merge_runs
    from faithcheck.verdict.core import load_gate

    spec_gate = load_gate(str(gate) if gate else None, list(require))
    return merge_runs(
        [Path(s) for s in shards],
        Path(out),
        force=force,
        allow_partial=allow_partial,
        gate=spec_gate,
        say=on_message or _silent,
    )


def render_report(
    runs: Sequence[str | Path], out: str | Path | None = None, *, explore_max: int = 50
) -> tuple[Path, Path]:
    """Write report.html and report.md for scored runs (as `faithcheck report`); several
    runs make one page, compared side by side.

    Args:
        runs: run directories (or report.json paths).
        out: the folder to write into; None: the run directory of the one run given.
        explore_max: responses per (correctness, support status) category in the
            per-response explorer; 0 leaves it out.

    Returns:
        The paths of report.html and report.md.

    Raises:
        UsageError: several runs and no `out`, `out` a file, a negative `explore_max`,
            or a run that cannot be read.
    """
    from faithcheck.render.page import write_reports
    from faithcheck.render.views import load_checkpoint

    paths = [Path(r) for r in runs]
    if not paths:
        raise UsageError("no runs to report on")
    target = Path(out) if out is not None else None
    if len(paths) > 1 and target is None:
        raise UsageError(f"{len(paths)} runs given: pass --out DIR for the combined report")
    if target is not None and target.exists() and not target.is_dir():
        raise UsageError(f"--out {target} is a file; pass a folder")
    checkpoints = [load_checkpoint(run) for run in paths]
    target = target or (paths[0] if paths[0].is_dir() else paths[0].parent)
    if explore_max < 0:
        raise UsageError("--explore-max must be at least 0")
    return write_reports(checkpoints, target, explore_max)


def json_schema(what: Literal["report", "comparison"] = "report") -> dict[str, Any]:
    """The JSON Schema of report.json, or of the comparison file (as `faithcheck schema`).

    Raises:
        UsageError: neither `report` nor `comparison`.
    """
    if what == "report":
        from faithcheck.report import report_json_schema

        return report_json_schema()
    if what == "comparison":
        from faithcheck.comparison.core import comparison_json_schema

        return comparison_json_schema()
    raise UsageError("schema: choose report or comparison")
