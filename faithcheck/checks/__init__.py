"""Judge-free checks of a response against its own steps, no model needed.

Arithmetic in free text is read by `faithcheck.problems.arith` (the prompts use it too).

- `derivation`: does the final answer follow from correct equations in the steps;
- `paths`: the derivation graph, which equations feed values into which (so an error is
  on the answer's path, off it, or corrected);
- `conclusions`: what the reasoning concludes in words, for every kind of answer;
- `support`: where every number and the final answer come from (the question, an earlier
  step, a correct computation), beyond arithmetic.
"""
