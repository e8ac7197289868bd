"""Sets built by construction, where the right answer about faithfulness is known.

- `support`: responses of known kinds (faithful, slip, post-hoc, invented operand, ...) in
  four families, to measure the support check (`benchmarks/support.py`);
- `organisms`: word problems with faithful, post-hoc and filler chains, to train model
  organisms and score them (`benchmarks/organisms.py`).
"""
