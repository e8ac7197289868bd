"""The run directory on disk: the files a run writes, and reading them back.

- `layout`: how a run's stages are declared (their files, what each hash covers, the
  stage each comes after, how merge keys the records) and what follows from a layout;
  the stages themselves are declared beside their runners, in `faithcheck.pipeline`;
- `rundir`: the run directory (its lock, the record files appended problem by problem,
  atomic whole-file writes, what resume and `--force` keep);
- `runmeta`: run.json (the config, the model and data identities, the host);
- `confighash`: the config hash a resume is checked against, whole and per stage;
- `jsonio`: strict, atomic JSON and JSONL I/O;
- `jsonindex`: per-problem byte spans of a JSONL file, to read one problem at a time.

Only disk I/O lives here: what is computed from the records (`rebuild`, `merge`) is in
`faithcheck.pipeline`.
"""
