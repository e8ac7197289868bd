"""Checkpoints side by side (`faithcheck compare`, `score --model A --model B`).

- `metrics`: the per-problem units of every paired metric, read from run directories
  (which metrics, their directions and aggregations come from `faithcheck.verdict.catalog`);
- `core`: paired bootstrap deltas, the ranking, the `--max-drop` gate, and the comparison
  record written by `--out`;
- `multi`: scoring several checkpoints on the same problems, then comparing them.
"""
