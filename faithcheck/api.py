"""faithcheck's Python API: what the CLI does, callable from a notebook or a training loop.

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
    faithcheck.calibrate(judge_model="openai/o3", per_domain=4)  # -> JudgeReliability

Every keyword is a `faithcheck score` option with dashes as underscores (`max_tokens`,
`probe_samples`, `judge_model`, ...), with the CLI's defaults, and goes through the same
validation: both reject the same bad input with the same `UsageError`. Messages go to
`on_message` (default: nowhere), never to stdout. Errors are `faithcheck.errors`
exceptions, each with the exit code the CLI would use (`exc.exit_code`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faithcheck.errors import UsageError

if TYPE_CHECKING:
    from faithcheck.report import Report, Verdict

OnMessage = Callable[[str], None]


def score(
    model: Any = None,
    *,
    tokenizer: Any = None,
    gate: str | Path | None = None,
    require: Sequence[str] = (),
    on_message: OnMessage | None = None,
    progress: Any = None,
    **options: Any,
) -> Any:
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
            its `start`, `add_task`, `update`, `advance` and `stop`), or None.
        **options: any other `faithcheck score` option (see module docs).

    Raises:
        UsageError: a bad option (the CLI's message), DataError, ModelLoadError,
            BackendError, RunDirError: as the CLI reports them.
    """
    from faithcheck.pipeline.core import run_score, score_options
    from faithcheck.verdict.core import load_gate

    say = on_message or (lambda _: None)
    preloaded = None
    spec = model
    if model is not None and not isinstance(model, str | Path):
        preloaded = _preloaded(model, tokenizer)
        spec = preloaded.identity.spec
    elif tokenizer is not None:
        raise UsageError("tokenizer= goes with a model object, not a model name")
    made_here = preloaded is not None and preloaded.backend is not model
    try:
        _check_names(options)
        opts = score_options(model=str(spec) if spec is not None else None, **options)
        spec_gate = load_gate(str(gate) if gate else None, list(require))
        return run_score(opts, say=say, progress=progress, gate=spec_gate, preloaded=preloaded)
    finally:
        if made_here:  # our wrapper around the caller's model: hands it back as it came
            preloaded.backend.close()  # type: ignore[union-attr]


def _preloaded(model: Any, tokenizer: Any) -> Any:
    from faithcheck.backends.base import Backend
    from faithcheck.backends.precision import Precision, probe_device
    from faithcheck.models import ModelIdentity, in_memory_identity
    from faithcheck.pipeline.core import Preloaded

    if isinstance(model, Backend):
        name = type(model).__name__
        identity = ModelIdentity(
            spec=name, kind="in-memory", path=name, sha256=f"backend:{name}:{id(model)}",
            has_chat_template=True,
        )  # fmt: skip
        precision = Precision(
            requested="auto", dtype=None, reason="a backend object passed in", device="caller"
        )
        return Preloaded(model, identity, precision)
    if _is_vllm_llm(model):
        return _preloaded_vllm(model)
    if not hasattr(model, "state_dict") or not hasattr(model, "generate"):
        raise UsageError(
            "model= takes a name, a checkpoint folder, a transformers model (with "
            "tokenizer=), a vllm.LLM or a faithcheck Backend"
        )
    if tokenizer is None:
        raise UsageError("a transformers model object needs its tokenizer= too")
    from faithcheck.backends.hf import HFBackend

    backend = HFBackend.from_objects(model, tokenizer)
    caps = probe_device(cpu=backend.device == "cpu")
    precision = Precision(
        requested=backend.dtype,
        dtype=backend.dtype,
        reason="the model object's own dtype",
        device=caps.describe() if backend.device == "cpu" else backend.device,
    )
    return Preloaded(backend, in_memory_identity(model, tokenizer), precision)


def _is_vllm_llm(model: Any) -> bool:
    kind = type(model)
    return kind.__name__ == "LLM" and kind.__module__.split(".")[0] == "vllm"


def _preloaded_vllm(llm: Any) -> Any:
    """A `vllm.LLM` the caller holds: used as it is, identified by the checkpoint it
    loaded (the files' hash, as `--model` would), never shut down by faithcheck."""
    from faithcheck.backends.precision import Precision
    from faithcheck.backends.vllm import VLLMBackend
    from faithcheck.models import resolve_model
    from faithcheck.pipeline.core import Preloaded

    backend = VLLMBackend.from_llm(llm)
    identity = resolve_model(backend.model_path)
    precision = Precision(
        requested=backend.dtype,
        dtype=backend.dtype,
        reason="the vllm.LLM's own dtype",
        device="vllm engine (caller's)",
    )
    return Preloaded(backend, identity, precision)


def _check_names(options: dict[str, Any]) -> None:
    import inspect

    from faithcheck.pipeline.core import score_options

    known = inspect.signature(score_options).parameters
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise UsageError(
            f"unknown option {unknown[0]!r} (faithcheck score options, dashes as underscores)"
        )


def compare(
    runs: Sequence[str | Path],
    *,
    metrics: Sequence[str] | None = None,
    max_drop: float | None = None,
    seed: int = 0,
) -> Any:
    """Compare finished runs (paired deltas with CIs, ranking; as `faithcheck compare`).

    Returns:
        The `Comparison` (what `compare --json` prints).
    """
    from faithcheck.comparison.core import compare_runs
    from faithcheck.comparison.metrics import load_run

    if len(runs) < 2:
        raise UsageError("compare needs at least two runs")
    loaded = [load_run(Path(r)) for r in runs]
    kwargs: dict[str, Any] = {"seed": seed}
    if metrics is not None:
        kwargs["metrics"] = list(metrics)
    if max_drop is not None:
        kwargs["max_drop"] = max_drop
    return compare_runs(loaded, **kwargs)


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


def calibrate(
    judge_model: str | Sequence[str] = "smollm2-135m",
    *,
    per_domain: int | None = None,
    seed: int = 0,
    dtype: str = "auto",
    max_model_len: int = 2048,
    on_message: OnMessage | None = None,
    **judge_options: Any,
) -> Any:
    """Measure a judge on the bundled faithful / unfaithful pairs (as `faithcheck
    calibrate`); `judge_options` are the judge options without the `judge_` prefix
    (`backend`, `base_url`, `api_key_env`, `max_tokens`, `reasoning_effort`, `readout`,
    `rationale_tokens`, ...). A list of judges (a jury, each `MODEL[,key=value...]` as
    `--judge-model` takes it) calibrates each on its own, one loaded at a time.

    Returns:
        The `JudgeReliability`; for a list of judges, a dict of each one's by name.
    """
    from faithcheck.judge.jury import juror_names
    from faithcheck.judge.plan import calibrate_judge
    from faithcheck.judge.stage import calibration_items
    from faithcheck.pipeline.core import jury_options

    say = on_message or (lambda _: None)
    if per_domain is not None and per_domain < 1:
        raise UsageError("--per-domain must be at least 1")
    specs = [judge_model] if isinstance(judge_model, str) else list(judge_model)
    chosen = jury_options(specs, **({"max_tokens": None} | judge_options))
    judges = [chosen["judge"], *chosen["jury"]]
    names = juror_names([j.model for j in judges])
    items = calibration_items(per_domain or 10_000, seed)
    out = {}
    for opts, name in zip(judges, names, strict=True):
        one = name if len(judges) > 1 else None
        out[name] = calibrate_judge(opts, items, dtype, seed, max_model_len, say, name=one)[1]
    return out if not isinstance(judge_model, str) else out[names[0]]
