"""The training callback: a real transformers Trainer trains the embedded 135M model for a
few steps on CPU, and faithcheck scores it in place, logs next to the loss, and stops
training on a NO-GO when asked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from faithcheck.callback import FaithcheckCallback, log_values


def _trainer(tmp_path: Path, model_path: str, callback: Any, steps: int) -> Any:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    texts = [f"Question: what is {a} + {a}? Answer: {2 * a}." for a in range(1, 9)]
    enc = tokenizer(texts, padding="max_length", max_length=24, truncation=True)
    data = [
        {"input_ids": i, "attention_mask": m, "labels": i}
        for i, m in zip(enc["input_ids"], enc["attention_mask"], strict=True)
    ]
    args = TrainingArguments(
        output_dir=str(tmp_path / "train"),
        max_steps=steps,
        per_device_train_batch_size=2,
        learning_rate=1e-5,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=data, callbacks=[callback])
    callback.tokenizer = tokenizer
    callback.trainer = trainer
    return trainer


SCORE = dict(
    dataset="math", samples=1, max_tokens=8, temperature=0.0, probes="none", judge=False,
    diversity=False,
)  # fmt: skip


@pytest.mark.slow
def test_scores_in_place_logs_next_to_the_loss_and_stops_on_nogo(
    tmp_path: Path, model_path: str
) -> None:
    # 10 problems and a bar the 135M model cannot clear: a NO-GO, so training stops.
    gate = tmp_path / "gate.toml"
    gate.write_text(
        # max_truncated_rate: the tiny model's short responses are mostly cut at the cap
        "[gate]\ndefaults = false\nmin_scorable = 1\nmax_truncated_rate = 1\n[[gate.check]]\n"
        'metric = "sampling.accuracy"\nop = ">="\nthreshold = 0.99\n'
    )
    cb = FaithcheckCallback(
        every_n_steps=1, out=tmp_path / "faith", on_nogo="stop", limit=10, gate=gate, **SCORE
    )
    trainer = _trainer(tmp_path, model_path, cb, steps=3)
    trainer.train()
    assert trainer.state.global_step == 1  # stopped after the first scored step
    assert (tmp_path / "faith" / "step-1" / "report.json").is_file()
    logged = [h for h in trainer.state.log_history if "faithcheck/verdict" in h]
    assert len(logged) == 1 and logged[0]["faithcheck/verdict"] == 0.0
    assert "faithcheck/accuracy" in logged[0] and "faithcheck/supported" in logged[0]
    history = trainer.state.log_history
    assert any(k in ("loss", "train_loss") for h in history for k in h), history
    assert trainer.model.training  # handed back in train mode


def test_log_values_from_a_report() -> None:
    from tests.render.test_page import make_report

    report = make_report("r", 0.5)
    values = log_values(report)
    assert values["faithcheck/accuracy"] == pytest.approx(report.sampling.accuracy.value)
    assert values["faithcheck/verdict"] in (0.0, 0.5, 1.0)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="on_nogo"):
        FaithcheckCallback(on_nogo="explode")
    with pytest.raises(ValueError, match="every_n_steps"):
        FaithcheckCallback(every_n_steps=0)
