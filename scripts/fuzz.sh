#!/usr/bin/env bash
# Fuzz every target for SECONDS each (default 60) with atheris; not part of the normal test run.
# Crashes land in testdata/fuzz/<target>/ and are replayed by tests/fuzz/test_replay.py from then on.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}
bash scripts/install.sh
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[fuzz]"
status=0
for target in extract_layer parse_document parse_config parse_reference dockerignore dockerfile; do
  echo "== $target (${SECONDS_EACH}s)"
  .venv/bin/python fuzz/run.py "$target" --seconds "$SECONDS_EACH" || status=1
done
exit $status
