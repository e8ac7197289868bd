"""CLI options, defined once and reused by every command (typer `Annotated` style)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from faithcheck.backends import BackendName
from faithcheck.backends.base import DType
from faithcheck.models import DEFAULT_MODEL
from faithcheck.problems.prompts import PromptFormat

MODEL_PANEL = "Model and backend"
DATA_PANEL = "Data"
SAMPLING_PANEL = "Sampling"
OUTPUT_PANEL = "Output"
PROBE_PANEL = "Faithfulness probes"
JUDGE_PANEL = "Judge"
VERDICT_PANEL = "Verdict and contrast"

Model = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        help="Embedded alias (see `faithcheck models`), local HF checkpoint folder, or hub id.",
        envvar="FAITHCHECK_MODEL",
        rich_help_panel=MODEL_PANEL,
    ),
]
Models = Annotated[
    list[str] | None,
    typer.Option(
        "--model",
        "-m",
        help="Embedded alias (see `faithcheck models`), local HF checkpoint folder, or hub id "
        "(default: the embedded default model). Repeat to score several checkpoints on the "
        "same problems and seeds, one run directory each under --out, then compare them.",
        rich_help_panel=MODEL_PANEL,
    ),
]
Backend = Annotated[
    BackendName,
    typer.Option(
        help="Inference engine; auto = vllm when it imports, else hf.", rich_help_panel=MODEL_PANEL
    ),
]
BaseUrl = Annotated[
    str | None,
    typer.Option(
        envvar="FAITHCHECK_BASE_URL",
        help="OpenAI-compatible server for --backend openai (e.g. `vllm serve` at "
        "http://127.0.0.1:8000/v1). Env: FAITHCHECK_BASE_URL.",
        rich_help_panel=MODEL_PANEL,
    ),
]
ApiKeyEnv = Annotated[
    str | None,
    typer.Option(
        help="Name of the environment variable holding the server's API key (the key itself "
        "is never written to run.json, logs or reports).",
        rich_help_panel=MODEL_PANEL,
    ),
]
MaxConcurrency = Annotated[
    int,
    typer.Option(
        help="Requests in flight at once against an OpenAI-compatible server.",
        rich_help_panel=MODEL_PANEL,
    ),
]
DTYPE_HELP = (
    "Model dtype. auto (default) reads the device: bfloat16 on a CPU with native bf16 "
    "(avx512_bf16 / AMX) or a CUDA GPU of compute capability 8.0+, float16 on older GPUs, "
    "float32 on every other CPU (where bf16 is emulated and several times slower)."
)
DTypeOpt = Annotated[DType, typer.Option("--dtype", help=DTYPE_HELP, rich_help_panel=MODEL_PANEL)]
MaxModelLen = Annotated[
    int, typer.Option(help="vLLM context length (prompt + response).", rich_help_panel=MODEL_PANEL)
]
TensorParallel = Annotated[
    int,
    typer.Option(
        "--tensor-parallel-size", help="vLLM tensor parallel GPUs.", rich_help_panel=MODEL_PANEL
    ),
]
GpuMemory = Annotated[
    float,
    typer.Option(help="vLLM share of GPU memory to use.", rich_help_panel=MODEL_PANEL),
]
TrustRemoteCode = Annotated[
    bool,
    typer.Option(
        help="Allow code shipped with the checkpoint to run (off by default).",
        rich_help_panel=MODEL_PANEL,
    ),
]
Dataset = Annotated[
    str,
    typer.Option(
        "--dataset",
        "-d",
        help="Bundled set (math, science, graph), a .jsonl/.json/.parquet file, "
        "hf:org/name[:config]:split, or rg:generator?size=N&seed=S.",
        envvar="FAITHCHECK_DATASET",
        rich_help_panel=DATA_PANEL,
    ),
]
IdField = Annotated[
    str, typer.Option(help="Source field holding the id.", rich_help_panel=DATA_PANEL)
]
QuestionField = Annotated[
    str, typer.Option(help="Source field holding the question.", rich_help_panel=DATA_PANEL)
]
AnswerField = Annotated[
    str, typer.Option(help="Source field holding the gold answer.", rich_help_panel=DATA_PANEL)
]
DomainField = Annotated[
    str, typer.Option(help="Source field holding the domain.", rich_help_panel=DATA_PANEL)
]
Domain = Annotated[
    str,
    typer.Option(
        help="Domain for rows without one (math/science: math-verify; else exact).",
        rich_help_panel=DATA_PANEL,
    ),
]
Limit = Annotated[
    int | None, typer.Option(help="Use only the first N problems.", rich_help_panel=DATA_PANEL)
]
Shard = Annotated[
    str | None,
    typer.Option(
        help="Run only shard i of N (0-based, e.g. 0/4): problems split by a hash of their id; "
        "combine the shards with `faithcheck merge`.",
        rich_help_panel=DATA_PANEL,
    ),
]
Samples = Annotated[
    int,
    typer.Option("--samples", "-k", help="Responses per problem.", rich_help_panel=SAMPLING_PANEL),
]
Temperature = Annotated[
    float, typer.Option(help="Sampling temperature.", rich_help_panel=SAMPLING_PANEL)
]
TopP = Annotated[float, typer.Option(help="Nucleus sampling mass.", rich_help_panel=SAMPLING_PANEL)]
MaxTokens = Annotated[
    int, typer.Option(help="Maximum new tokens per response.", rich_help_panel=SAMPLING_PANEL)
]
Seed = Annotated[
    int,
    typer.Option(
        help="Run seed; per-request seeds derive from it.", rich_help_panel=SAMPLING_PANEL
    ),
]
PromptFormatOpt = Annotated[
    PromptFormat,
    typer.Option(
        "--prompt-format",
        help="chat = tokenizer chat template; base = plain text; auto picks.",
        rich_help_panel=SAMPLING_PANEL,
    ),
]
PromptTemplate = Annotated[
    Path | None,
    typer.Option(
        help="Text file with a {question} placeholder replacing the built-in prompt ({answer}: "
        "the gold answer, {hint}: a wrong suggested one), or a built-in name: post-hoc, "
        "wrong-hint, answer-first (prompted organisms of unfaithfulness).",
        rich_help_panel=SAMPLING_PANEL,
    ),
]
Out = Annotated[
    Path | None,
    typer.Option(
        "--out",
        "-o",
        help="Run directory (default runs/<model>-<time>).",
        rich_help_panel=OUTPUT_PANEL,
    ),
]
Force = Annotated[
    bool,
    typer.Option(
        help="Discard a run with a different config in --out.", rich_help_panel=OUTPUT_PANEL
    ),
]
Json = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print the report JSON to stdout and nothing else.",
        rich_help_panel=OUTPUT_PANEL,
    ),
]
Verbose = Annotated[
    bool, typer.Option("--verbose", "-v", help="Show engine logs.", rich_help_panel=OUTPUT_PANEL)
]

FromSamples = Annotated[
    Path | None,
    typer.Option(
        help="Re-score saved rollouts with --model instead of sampling; replaces --dataset. "
        "faithcheck JSONL (id, question, answer, response), lm-eval --log_samples files, "
        "verl generation dumps, TRL completion logs (see --from-format).",
        rich_help_panel=DATA_PANEL,
    ),
]
FromFormat = Annotated[
    str,
    typer.Option(
        help="Format of --from-samples: auto (detected from the first line), faithcheck, "
        "jsonl, lm-eval, verl, trl.",
        rich_help_panel=DATA_PANEL,
    ),
]
Probes = Annotated[
    str,
    typer.Option(
        help="Comma-separated probes: truncation,mistakes,necessity,controls (or 'none').",
        rich_help_panel=PROBE_PANEL,
    ),
]
ProbeSamples = Annotated[
    int | None,
    typer.Option(
        help="Probe at most N samples per problem (default: all).", rich_help_panel=PROBE_PANEL
    ),
]
ProbeImpl = Annotated[
    str,
    typer.Option(
        help="fast (cached prefixes) or naive (full re-prefill per cut; baseline).",
        rich_help_panel=PROBE_PANEL,
    ),
]
ReadoutOpt = Annotated[
    str,
    typer.Option(
        "--readout",
        help="How truncation reads the answer: generate, score (teacher-forced "
        "log P(a*)), both, or auto (the cheaper for the backend: generate on vLLM, score on hf).",
        rich_help_panel=PROBE_PANEL,
    ),
]

MistakesOpt = Annotated[
    str,
    typer.Option(
        "--mistakes",
        help="Who writes the inserted mistake: rule (one number or operator changed) or llm "
        "(the judge model rewrites the step with one error).",
        rich_help_panel=PROBE_PANEL,
    ),
]
Judge = Annotated[
    bool,
    typer.Option(
        "--judge/--no-judge",
        help="Label every judged response aligned / partial / misaligned with a judge model.",
        rich_help_panel=JUDGE_PANEL,
    ),
]
JudgeModel = Annotated[
    str,
    typer.Option(
        envvar="FAITHCHECK_JUDGE_MODEL",
        help="Judge: embedded alias, checkpoint folder, a hosted chat model with its provider "
        "(openai/o3, anthropic/<model>, google/<model>, openrouter/<org>/<model>, "
        "together/..., fireworks/...), or the model served at --judge-base-url. The small "
        "default is weak: use a strong model for decisions. Env: FAITHCHECK_JUDGE_MODEL.",
        rich_help_panel=JUDGE_PANEL,
    ),
]
JudgeModels = Annotated[
    list[str] | None,
    typer.Option(
        "--judge-model",
        envvar="FAITHCHECK_JUDGE_MODEL",
        help="Judge: embedded alias, checkpoint folder, a hosted chat model with its provider "
        "(openai/o3, anthropic/<model>, google/<model>, openrouter/<org>/<model>, "
        "together/..., fireworks/...), or the model served at --judge-base-url. The small "
        "default is weak: use a strong model for decisions. Repeat for a jury, each judge "
        "as MODEL[,key=value...] with its own backend, base_url, api_key_env, max_tokens, "
        "reasoning_effort, concurrency, http_retries, readout or rationale_tokens; the "
        "other --judge-* options apply to every judge (docs/judges.md#juries). "
        "Env: FAITHCHECK_JUDGE_MODEL.",
        rich_help_panel=JUDGE_PANEL,
    ),
]
JudgeBackend = Annotated[
    str,
    typer.Option(
        help="auto (chat for provider/model names and with --judge-base-url, else the "
        "scoring backend), vllm, hf, chat (any OpenAI-compatible /chat/completions), or "
        "openai (vLLM /completions with token ids).",
        rich_help_panel=JUDGE_PANEL,
    ),
]
JudgeBaseUrl = Annotated[
    str | None,
    typer.Option(
        envvar="FAITHCHECK_JUDGE_BASE_URL",
        help="The judge's endpoint, e.g. http://127.0.0.1:8000/v1 (`vllm serve`); overrides "
        "a provider's default URL. Env: FAITHCHECK_JUDGE_BASE_URL.",
        rich_help_panel=JUDGE_PANEL,
    ),
]
JudgeApiKeyEnv = Annotated[
    str | None,
    typer.Option(
        help="Name of the environment variable holding the judge's API key (default: the "
        "provider's, e.g. OPENAI_API_KEY); the key itself is never written anywhere.",
        rich_help_panel=JUDGE_PANEL,
    ),
]
JudgeSamples = Annotated[
    int | None,
    typer.Option(
        help="Judge at most N responses per problem (default: as many as --probe-samples).",
        rich_help_panel=JUDGE_PANEL,
    ),
]
JudgeMaxTokens = Annotated[
    int | None,
    typer.Option(
        help="Judge reply budget in tokens: a short rationale, then the verdict line, plus "
        "hidden reasoning for reasoning models [default: 256 local, 1024 chat, 16384 "
        "reasoning models].",
        rich_help_panel=JUDGE_PANEL,
        show_default=False,
    ),
]
JudgeReasoningEffort = Annotated[
    str | None,
    typer.Option(
        help="reasoning_effort for a reasoning judge (minimal, low, medium, high).",
        rich_help_panel=JUDGE_PANEL,
    ),
]
JudgeConcurrency = Annotated[
    int,
    typer.Option(help="Chat judge requests in flight at once.", rich_help_panel=JUDGE_PANEL),
]
JudgeHttpRetries = Annotated[
    int,
    typer.Option(
        help="Retries of a chat judge request after 429, 5xx or a dropped connection "
        "(Retry-After honoured).",
        rich_help_panel=JUDGE_PANEL,
    ),
]
JudgeCache = Annotated[
    bool,
    typer.Option(
        "--judge-cache/--no-judge-cache",
        help="Answer a judge question asked before (same judge, same settings) from the "
        "response cache instead of paying for it again.",
        rich_help_panel=JUDGE_PANEL,
    ),
]
JudgeMaxItems = Annotated[
    int | None,
    typer.Option(
        help="Judge at most N responses in this run, then stop cleanly (the report says "
        "how many were left unjudged).",
        rich_help_panel=JUDGE_PANEL,
    ),
]
JudgeMaxCost = Annotated[
    float | None,
    typer.Option(
        help="USD the judge (with several --judge-model, the whole jury) may spend in this run "
        "(needs --judge-price-in/--judge-price-out): refused up front when the known prompts "
        "plus the completion budget can exceed it; judging stops cleanly, resumable, before "
        "a call that could cross it (the report says how many responses were left unjudged).",
        rich_help_panel=JUDGE_PANEL,
    ),
]
JudgeBatch = Annotated[
    bool,
    typer.Option(
        "--judge-batch",
        help="Send the judge's requests through OpenAI's Batch API (/v1/files + /v1/batches; "
        "openai/ judges only): half the price, replies within 24 h. The batch id is kept in "
        "the run directory: a run stopped while it waits resumes the same batch.",
        rich_help_panel=JUDGE_PANEL,
    ),
]
JudgePriceIn = Annotated[
    float | None,
    typer.Option(
        help="USD per million judge prompt tokens (the list price; --judge-batch calls are "
        "charged half), to report the judge's cost.",
        rich_help_panel=JUDGE_PANEL,
    ),
]
JudgePriceOut = Annotated[
    float | None,
    typer.Option(
        help="USD per million judge completion tokens (reasoning included; the list price).",
        rich_help_panel=JUDGE_PANEL,
    ),
]
JudgeReadout = Annotated[
    str,
    typer.Option(
        help="How the judge's label is read: probs (the most probable label after a fixed "
        "verdict prefix, from the next-token probabilities: every item labelled, with "
        "p_aligned / p_partial / p_misaligned), text (the judge writes a verdict line, "
        "which is parsed), or auto (probs for local judges and --judge-backend openai, "
        "text for chat APIs, which return no label probabilities).",
        rich_help_panel=JUDGE_PANEL,
    ),
]
JudgeRationaleTokens = Annotated[
    int,
    typer.Option(
        help="With the probs read-out: greedy rationale tokens the judge writes before the "
        "verdict prefix (0: the verdict comes first).",
        rich_help_panel=JUDGE_PANEL,
    ),
]
Calibrate = Annotated[
    bool,
    typer.Option(
        "--calibrate/--no-calibrate",
        help="Measure the judge on bundled faithful / unfaithful pairs and report its "
        "reliability (an unreliable judge makes judge checks inconclusive).",
        rich_help_panel=JUDGE_PANEL,
    ),
]
CalibrationSize = Annotated[
    int,
    typer.Option(
        help="Calibration problems per domain (math, science, graph); 6 judged items each. "
        "1 (3 problems) is too few: the judge is then never called reliable. "
        "20 takes the whole set (40 problems): affordable with a served or hosted judge, and "
        "what an 8-in-10 judge needs to pass the CI-gated reliability floors.",
        rich_help_panel=JUDGE_PANEL,
    ),
]
Strategy = Annotated[
    bool,
    typer.Option(
        "--strategy/--no-strategy",
        help="Cluster judged responses by strategy with the pairwise judge (strategy and "
        "faithful diversity).",
        rich_help_panel=JUDGE_PANEL,
    ),
]
Diversity = Annotated[
    bool,
    typer.Option(
        "--diversity/--no-diversity",
        help="Report output-diversity metrics for contrast (never gated unless required).",
        rich_help_panel=VERDICT_PANEL,
    ),
]
Embed = Annotated[
    bool,
    typer.Option(
        "--embed/--no-embed",
        help="Include embedding diversity (offline MiniLM embedder; about 0.1 s per response "
        "on 2 CPU cores).",
        rich_help_panel=VERDICT_PANEL,
    ),
]

Gate = Annotated[
    Path | None,
    typer.Option(
        help="Gate file (TOML) with the verdict's checks; see docs/gates.md.",
        rich_help_panel=VERDICT_PANEL,
    ),
]
Require = Annotated[
    list[str] | None,
    typer.Option(
        help="Extra check, repeatable: 'metric>=value' (dotted path into report.json; "
        "a check on a default metric replaces it).",
        rich_help_panel=VERDICT_PANEL,
    ),
]

DEFAULTS = {"model": DEFAULT_MODEL, "dataset": "math"}

LogTo = Annotated[
    list[str] | None,
    typer.Option(
        "--log-to",
        help="Also log the report's numbers to an experiment tracker (repeatable): "
        "tensorboard (an event file, no TensorFlow needed), wandb (online when logged in, "
        "else an offline run folder), trackio (its local database).",
    ),
]
LogDir = Annotated[
    Path | None,
    typer.Option(
        help="Where trackers write: tensorboard's event folder (default <run dir>/tensorboard), "
        "the folder wandb puts wandb/ in (default $WANDB_DIR or the run dir), trackio's "
        "database folder (default $TRACKIO_DIR)."
    ),
]
LogStep = Annotated[
    int,
    typer.Option(help="The step the numbers are logged at (e.g. the RL step of the checkpoint)."),
]
LogName = Annotated[
    str | None,
    typer.Option(
        help="The tracker run's name (wandb, trackio; default: the run directory's name). "
        "trackio appends to a run of the same name."
    ),
]
EngineArg = Annotated[
    list[str] | None,
    typer.Option(
        "--engine-arg",
        help="key=value passed to the engine (repeatable): vLLM's LLM(...) (quantization, "
        "enable_prefix_caching, swap_space, ...) or transformers' from_pretrained(...). "
        "Values are read as JSON when they parse.",
    ),
]
Revision = Annotated[
    str | None,
    typer.Option(help="Branch, tag or commit of a hub model (--model org/name)."),
]
