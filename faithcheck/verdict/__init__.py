"""GO / NO-GO / INCONCLUSIVE, and the metrics it is decided on.

- `catalog`: every named metric once: report path, direction, compare pairing, tracking;
- `paths`: reading a dotted path out of report.json (value, CI, n), and which paths exist;
- `gates`: the default checks and their thresholds (with the evidence for each), gate
  files and `--require`;
- `core`: evaluating checks by the three-way rule on CIs and deciding the verdict.

The records a verdict is made of (`Verdict`, `Check`, `Decision`, `Op`, `Outcome`) are part
of the report schema, in `faithcheck.report`: the verdict reads the report, so its records
sit below it.
"""
