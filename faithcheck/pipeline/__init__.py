"""`score` as stages over a run directory: options, the stage runner, the report.

- `core`: `ScoreOptions` and their validation (`score_options`, shared by the CLI and the
  API), the run (sampling, probes, judge, each resumable) and the report's aggregation;
- `stages`: the sampling and probe stages, writing their records problem by problem, and
  the check (derivation, support) and diversity stages that the report then folds;
- `rebuild`: report.json again from the records and run.json, no model loaded;
- `merge`: the shard runs of one `score --shard i/N` job as one run;
- `preloaded`: a model the caller already holds (`score(model=...)`), scored in place.

Data flows one way: CLI -> API -> pipeline -> stages -> store.
"""
