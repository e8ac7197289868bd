"""`score` as stages over a run directory: options, the stage runner, the report.

- `options`: `ScoreOptions`, composed of the options each package declares, and
  `score_options`, which builds them from keywords (shared by the CLI and the API);
- `core`: the run (`run_score`: input, model, run directory, then the stages in turn);
- `aggregate`: the report, folded from the records on disk (`build_report`);
- `config`: the settings that change results, which the config hash covers;
- `runners`: each stage as a `Runner` that declares it (its files, hashes and merge keys:
  `LAYOUT`, which resume, merge and rebuild read) and runs it on its own options;
  `RUNNERS` in run order, `run_stages` the loop;
- `context`: what a run's stages share (`RunContext`: the run directory, problems,
  judges, engines, and the results passed forward);
- `stages`: the sampling and probe stages, writing their records problem by problem, and
  the check (derivation, support) and diversity stages that the report then folds;
- `rebuild`: report.json again from the records and run.json, no model loaded;
- `merge`: the shard runs of one `score --shard i/N` job as one run;
- `preloaded`: a model the caller already holds (`score(model=...)`), scored in place.

Data flows one way: CLI -> API -> pipeline -> stages -> store.
"""
