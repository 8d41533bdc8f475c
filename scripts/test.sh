#!/usr/bin/env bash
# Install everything the tests need, then run the whole test suite (as root).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/python -m pytest -q -ra "$@"
