#!/usr/bin/env bash
# docs/report.png, the README's picture of report.html: the page of a scored run (default
# runs/demo, so `make demo` first), opened, checked and captured by the same script the browser
# test runs (scripts/screenshot_report.py --check): a page whose explorer fails its checks is
# never pictured.
#
#   scripts/docs_screenshot.sh [RUN_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
RUN=${1:-runs/demo}
"$VENV/bin/faithcheck" report "$RUN"
"$VENV/bin/python" scripts/screenshot_report.py "$RUN/report.html" docs/report.png \
  --width 1280 --height 1100 --check >/dev/null
