"""The run directory on disk: everything a run writes, and everything that reads it back.

- `rundir`: the run directory (its lock, the record files appended problem by problem,
  atomic whole-file writes) and the names of its files;
- `runmeta`: run.json (the config, the model and data identities, the host);
- `confighash`: the config hash a resume is checked against, whole and per stage;
- `jsonio`: strict, atomic JSON and JSONL I/O;
- `jsonindex`: per-problem byte spans of a JSONL file, to read one problem at a time;
- `rebuild`: report.json again from the records and run.json, no model loaded;
- `merge`: the shard runs of one `score --shard i/N` job as one run.
"""
