"""Output diversity, reported for contrast: the study found it does not predict whether RL
generalizes, faithfulness does.

- `core`: the per-problem diversity metrics and their averages (`DiversitySummary`,
  folded by `DiversityTally`);
- `text`: the metric functions on texts and vectors (distinct-n, self-BLEU, Vendi, ...);
- `embed`: the offline sentence embedder behind the embedding metrics.
"""
