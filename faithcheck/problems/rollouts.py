"""Readers for other tools' rollouts, behind `--from-samples` (`--from-format`).

Each reader turns one tool's saved generations into faithcheck's rollout rows
(`id`, `question`, `answer`, `response`), one row per response; `auto` picks the reader
from the first row's fields:

- `lm-eval`: lm-evaluation-harness `samples_<task>_<date>.jsonl` from `--log_samples`:
  `doc_id`, `doc` (the task's document), `target`, `arguments`, `resps` (one list of
  generations per request; several with `repeats`), `filtered_resps`. The question is
  the document's `question` / `problem` / `input` / `query` field, else the prompt
  (`arguments`); the gold is `target` — after `####` when it has one (GSM8K's solution
  texts); the responses are every string of `resps` (the unfiltered generations: the
  chain of thought, not the filtered answer).
- `verl`: verl's rollout or validation dumps (`trainer.rollout_data_dir`,
  `validation_data_dir`: `<step>.jsonl`): `input` (the decoded prompt), `output`, `gts`
  (the ground truth), `score`, `step`. The question is the prompt's last user turn when
  it carries a chat template (ChatML `<|im_start|>user`, Llama 3 headers), else the
  prompt; problems are grouped by it. A dump without `gts` (older verl) has no gold:
  refused with a message.
- `trl`: TRL GRPO completion logs (`log_completions=True`:
  `<output_dir>/completions/completions_<step>.parquet`, also read as JSONL): `prompt`
  (text or chat messages), `completion` (text or messages), reward columns. TRL logs no
  gold answer: a column `answer` / `solution` / `ground_truth` / `gold` / `target` is
  used when the user added one; otherwise refused with a message.
- `faithcheck` / `jsonl`: faithcheck's own schema (`id`, `question`, `answer`,
  `response`; the `--*-field` flags rename them).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from faithcheck.errors import DataError

RolloutFormat = Literal["auto", "faithcheck", "jsonl", "lm-eval", "verl", "trl"]
FORMATS: tuple[RolloutFormat, ...] = ("auto", "faithcheck", "jsonl", "lm-eval", "verl", "trl")

_DOC_QUESTION = ("question", "problem", "input", "query", "prompt", "text")
_GOLD = ("answer", "solution", "ground_truth", "gold", "target", "gts")
_CHAT_USER = (
    re.compile(r"<\|im_start\|>user\s*\n(.*?)<\|im_end\|>", re.DOTALL),
    re.compile(r"<\|start_header_id\|>user<\|end_header_id\|>\s*(.*?)<\|eot_id\|>", re.DOTALL),
    re.compile(r"<start_of_turn>user\s*\n(.*?)<end_of_turn>", re.DOTALL),
)


def detect(row: Any) -> RolloutFormat:
    """The reader for a file whose first row is `row`."""
    if not isinstance(row, Mapping):
        return "faithcheck"
    keys = set(row)
    if {"doc", "resps"} <= keys:
        return "lm-eval"
    if {"input", "output"} <= keys and ("step" in keys or "gts" in keys or "score" in keys):
        return "verl"
    if {"prompt", "completion"} <= keys:
        return "trl"
    return "faithcheck"


def convert(
    rows: Sequence[tuple[int, Any]], fmt: RolloutFormat, origin: str
) -> tuple[RolloutFormat, list[tuple[int, Any]]]:
    """(the format read, faithcheck rollout rows); `faithcheck`/`jsonl` rows pass as they are.

    Raises:
        DataError: a row does not have the format's fields, or gold answers are missing.
    """
    if fmt == "auto":
        fmt = detect(rows[0][1]) if rows else "faithcheck"
    if fmt in ("faithcheck", "jsonl"):
        return fmt, list(rows)
    reader = {"lm-eval": _lm_eval, "verl": _verl, "trl": _trl}[fmt]
    out: list[tuple[int, Any]] = []
    for lineno, row in rows:
        if not isinstance(row, Mapping):
            raise DataError(f"{origin}:{lineno}: not a JSON object")
        out.extend((lineno, r) for r in reader(row, f"{origin}:{lineno}"))
    return fmt, out


def _lm_eval(row: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    doc = row.get("doc")
    if not isinstance(doc, Mapping) or "resps" not in row:
        raise DataError(f"{where}: not an lm-eval --log_samples line (doc, resps)")
    question = next((doc[k] for k in _DOC_QUESTION if isinstance(doc.get(k), str)), None)
    if question is None:
        question = _lm_eval_prompt(row.get("arguments"))
    if not isinstance(question, str) or not question.strip():
        raise DataError(f"{where}: no question in doc ({', '.join(_DOC_QUESTION)}) or arguments")
    target = row.get("target")
    if isinstance(target, list) and len(target) == 1:
        target = target[0]
    if not isinstance(target, str | int | float):
        raise DataError(f"{where}: no target (the gold answer)")
    gold = str(target)
    if "####" in gold:  # GSM8K-style solution text: the answer follows the marker
        gold = gold.rsplit("####", 1)[1].strip()
    texts = [t for r in row["resps"] for t in (r if isinstance(r, list) else [r])]
    if not texts or not all(isinstance(t, str) for t in texts):
        raise DataError(f"{where}: resps holds no generated text")
    pid = str(row.get("doc_id", _digest(question)))
    return [{"id": pid, "question": question, "answer": gold, "response": t} for t in texts]


def _lm_eval_prompt(arguments: Any) -> str | None:
    if isinstance(arguments, Mapping):  # {"gen_args_0": {"arg_0": prompt, "arg_1": {...}}}
        first = next(iter(arguments.values()), None)
        if isinstance(first, Mapping):
            arg = first.get("arg_0")
            return arg if isinstance(arg, str) else None
    if isinstance(arguments, list) and arguments and isinstance(arguments[0], list):
        arg = arguments[0][0] if arguments[0] else None
        return arg if isinstance(arg, str) else None
    return None


def _user_turn(prompt: str) -> str:
    """The last user message of a chat-templated prompt, else the prompt itself."""
    for pattern in _CHAT_USER:
        found = pattern.findall(prompt)
        if found:
            return str(found[-1]).strip()
    return prompt.strip()


def _verl(row: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    prompt, output = row.get("input"), row.get("output")
    if not isinstance(prompt, str) or not isinstance(output, str):
        raise DataError(f"{where}: not a verl generations dump line (input, output)")
    gold = row.get("gts")
    if isinstance(gold, Mapping):
        gold = gold.get("ground_truth", gold.get("answer"))
    if gold is None:
        raise DataError(
            f"{where}: this verl dump has no ground truth ('gts', written by verl since "
            "mid-2025); re-dump with a newer verl, or convert to JSONL with an answer field"
        )
    question = _user_turn(prompt)
    return [
        {"id": _digest(question), "question": question, "answer": str(gold), "response": output}
    ]


def _text(value: Any) -> str | None:
    """A prompt or completion as text: a string, or the last message's content."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and isinstance(value[-1], Mapping):
        users = [m for m in value if m.get("role") == "user"] or value
        content = users[-1].get("content")
        return content if isinstance(content, str) else None
    return None


def _trl(row: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    prompt = _text(row.get("prompt"))
    completion = row.get("completion")
    if isinstance(completion, list) and completion and isinstance(completion[-1], Mapping):
        completion = completion[-1].get("content")
    if prompt is None or not isinstance(completion, str):
        raise DataError(f"{where}: not a TRL completions line (prompt, completion)")
    gold = next((row[k] for k in _GOLD if row.get(k) is not None), None)
    if gold is None:
        raise DataError(
            f"{where}: TRL completion logs carry no gold answer; add a column named "
            f"{' / '.join(_GOLD[:4])}, or use --from-format jsonl with --answer-field"
        )
    question = _user_turn(prompt)
    return [
        {"id": _digest(question), "question": question, "answer": str(gold), "response": completion}
    ]


def _digest(text: str) -> str:
    return "q-" + hashlib.sha256(text.encode()).hexdigest()[:12]
