"""The run directory on disk: the files a run writes, and reading them back.

- `stages`: each stage of a run declared once: its files, what its hash covers, the
  stage it comes after, how merge keys its records;
- `rundir`: the run directory (its lock, the record files appended problem by problem,
  atomic whole-file writes, what resume and `--force` keep);
- `runmeta`: run.json (the config, the model and data identities, the host);
- `confighash`: the config hash a resume is checked against, whole and per stage;
- `jsonio`: strict, atomic JSON and JSONL I/O;
- `jsonindex`: per-problem byte spans of a JSONL file, to read one problem at a time.

Only disk I/O lives here: what is computed from the records (`rebuild`, `merge`) is in
`faithcheck.pipeline`.
"""
