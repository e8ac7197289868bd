"""Faithfulness next to the loss: a `transformers.TrainerCallback` (TRL trainers too).

    from faithcheck.callback import FaithcheckCallback

    cb = FaithcheckCallback(tokenizer=tokenizer, every_n_steps=200, out="runs/faith",
                            dataset="math", limit=30, samples=4, judge=False,
                            on_nogo="stop")
    trainer = Trainer(..., callbacks=[cb])
    cb.trainer = trainer      # optional: log through the trainer's own loggers

Every `every_n_steps` steps (and, with `on_save=True`, whenever the trainer saves a
checkpoint) the callback scores the model the trainer holds, in place, with
`faithcheck.score` (any `score` option: problem set, probes, judge), into
`<out>/step-<global_step>`, and logs `faithcheck/<metric>` values — accuracy, support,
derivation, truncation, judge and the verdict (GO 1, INCONCLUSIVE 0.5, NO_GO 0) — through
`trainer.log` when `trainer` is set (so wandb, TensorBoard, trackio callbacks see them),
else into `state.log_history`. When the verdict is NO_GO, `on_nogo="warn"` warns,
`"stop"` ends training after this step, `"ignore"` does nothing.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from transformers import TrainerCallback


class FaithcheckCallback(TrainerCallback):  # type: ignore[misc]
    """Score the model under training every N steps / at each save (see module docs)."""

    def __init__(
        self,
        *,
        tokenizer: Any = None,
        every_n_steps: int | None = None,
        on_save: bool = False,
        out: str | Path = "runs/faithcheck",
        on_nogo: str = "warn",
        trainer: Any = None,
        **score_options: Any,
    ) -> None:
        if on_nogo not in ("warn", "stop", "ignore"):
            raise ValueError("on_nogo must be warn, stop or ignore")
        if every_n_steps is not None and every_n_steps < 1:
            raise ValueError("every_n_steps must be at least 1")
        self.tokenizer = tokenizer
        self.every_n_steps = every_n_steps
        self.score_on_save = on_save
        self.out = Path(out)
        self.on_nogo = on_nogo
        self.trainer = trainer
        self.options = score_options
        self.reports: dict[int, Any] = {}
        """Report per global step scored."""

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> Any:
        n = self.every_n_steps
        if n is not None and state.global_step % n == 0:
            self._score(state, control, kw)
        return control

    def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> Any:
        if self.score_on_save and state.global_step not in self.reports:
            self._score(state, control, kw)
        return control

    def _score(self, state: Any, control: Any, kw: dict[str, Any]) -> None:
        import faithcheck

        model = kw.get("model")
        tokenizer = self.tokenizer or kw.get("processing_class") or kw.get("tokenizer")
        if model is None or tokenizer is None:
            raise ValueError("FaithcheckCallback needs the model and tokenizer= (or the trainer's)")
        step = int(state.global_step)
        report = faithcheck.score(
            model=model, tokenizer=tokenizer, out=str(self.out / f"step-{step}"), **self.options
        )
        self.reports[step] = report
        metrics = log_values(report)
        if self.trainer is not None:
            self.trainer.log(metrics)
        else:
            state.log_history.append({**metrics, "step": step})
        verdict = report.verdict
        if verdict is not None and verdict.decision == "NO_GO":
            why = "; ".join(verdict.reasons)
            if self.on_nogo == "warn":
                warnings.warn(f"faithcheck: NO-GO at step {step}: {why}", stacklevel=2)
            elif self.on_nogo == "stop":
                control.should_training_stop = True


def log_values(report: Any) -> dict[str, float]:
    """The `faithcheck/<metric>` values of a report: the headline metrics the run has and
    the verdict (`faithcheck.trackers.tracker_values` without CI bounds or the curve)."""
    from faithcheck.trackers import tracker_values

    return tracker_values(report, cis=False, curve=False)
