"""Problems in, answers checked: everything about the task before and after the model.

- `load`: problem sets (bundled names, JSON/JSONL/Parquet files, hub datasets, `rg:`
  reasoning-gym generators) with their field mapping and domain;
- `rollouts`: responses scored elsewhere (`--from-samples`: faithcheck, lm-eval, verl, TRL);
- `prompts`: the chat and base prompts, templates with `{answer}` / `{hint}`;
- `parsing`: a response's final answer and its steps;
- `arith`: arithmetic chains and values found in free text, evaluated safely (no eval);
- `verify`: whether an answer matches the gold one (math-verify in a worker, with a timeout).
"""
