# The README's two commands: `make demo` and `make test`. Both set up .venv first.
.PHONY: setup demo test lint bench clean

VENV ?= .venv

setup:
	scripts/setup.sh

# faithcheck score on the embedded default model and the bundled math samples, sized to
# finish within 6 minutes on a 2-core CPU without native bf16 (AVX2 only): 12 problems x 4
# samples of at most 256 tokens, probes and judge on 2 responses per problem (docs/demo.md
# gives the measured times). A verdict of NO-GO (exit 1) or INCONCLUSIVE (exit 4) is a
# result, not a failure of the demo.
DEMO_ARGS ?= --limit 12 --samples 4 --max-tokens 256 --probe-samples 2 --judge-max-tokens 128 \
	--calibration-size 2
demo: setup
	$(VENV)/bin/faithcheck score --out runs/demo --force $(DEMO_ARGS); \
	rc=$$?; echo "faithcheck exit code: $$rc (0 GO, 1 NO-GO, 4 INCONCLUSIVE)"; \
	[ $$rc -eq 0 ] || [ $$rc -eq 1 ] || [ $$rc -eq 4 ]

# Two pytest-xdist workers, each test file on one worker (its module fixtures load once).
# The workers share the cores out (tests/conftest.py), and two suit a 2-core machine: the
# engines' start-up and the tests' Python run side by side. Files go out in collection
# order, longest first (tests/conftest.py LONG_FILES), not xdist's default of the files
# with the most tests first. `make test TEST_WORKERS=0` runs serially.
TEST_WORKERS ?= 2
XDIST = -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder
test: setup
	$(VENV)/bin/python -m pytest -q $(if $(filter 0,$(TEST_WORKERS)),,$(XDIST))

lint: setup
	$(VENV)/bin/ruff check faithcheck tests benchmarks
	$(VENV)/bin/ruff format --check faithcheck tests benchmarks
	$(VENV)/bin/mypy faithcheck

bench: setup
	$(VENV)/bin/python benchmarks/sampling.py

clean:
	rm -rf runs/demo .pytest_cache .ruff_cache .mypy_cache
