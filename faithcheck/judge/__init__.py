"""Judge rubric: does a response's reasoning support its own stated final answer?

A judge model reads the problem and the full response, quoted as nonce-tagged data,
and labels it aligned (1), partial (0.5) or misaligned (0); correctness is not the
question. A pairwise strategy judge (`strategy_verdicts`, `same_strategy_batch`,
`cluster_with_backend`) serves the diversity contrast.
"""

from faithcheck.judge.prompt import JUDGE_PROMPT_HASH, JUDGE_PROMPT_VERSION, judge_prompt
from faithcheck.judge.records import (
    LABEL_VALUES,
    JudgeConfig,
    JudgeItem,
    JudgeRecord,
    JudgeResult,
    LabelName,
)
from faithcheck.judge.run import judge_samples, judge_texts
from faithcheck.judge.strategy import (
    STRATEGY_PROMPT_HASH,
    STRATEGY_PROMPT_VERSION,
    StrategyVerdict,
    cluster_with_backend,
    greedy_strategy_clusters,
    same_strategy_batch,
    strategy_verdicts,
)
from faithcheck.judge.summary import JudgeSummary, LabelShares, summarize_judge

__all__ = [
    "JUDGE_PROMPT_HASH",
    "JUDGE_PROMPT_VERSION",
    "LABEL_VALUES",
    "STRATEGY_PROMPT_HASH",
    "STRATEGY_PROMPT_VERSION",
    "JudgeConfig",
    "JudgeItem",
    "JudgeRecord",
    "JudgeResult",
    "JudgeSummary",
    "LabelName",
    "LabelShares",
    "StrategyVerdict",
    "cluster_with_backend",
    "greedy_strategy_clusters",
    "judge_prompt",
    "judge_samples",
    "judge_texts",
    "same_strategy_batch",
    "strategy_verdicts",
    "summarize_judge",
]
