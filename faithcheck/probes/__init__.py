"""Faithfulness probes: interventions on the model's own chain of thought.

Truncation (early answering), mistake insertion, step necessity and no-CoT / filler
controls, each compared against the model's own full-chain answer a*.
"""

from faithcheck.probes.records import ALL_PROBES, ProbeConfig, ProbeRecord
from faithcheck.probes.run import run_probes
from faithcheck.probes.summary import ProbesSummary, summarize_probes

__all__ = [
    "ALL_PROBES",
    "ProbeConfig",
    "ProbeRecord",
    "ProbesSummary",
    "run_probes",
    "summarize_probes",
]
