#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
PATH="$PWD/.venv/bin:$PATH" exec .venv/bin/python -m pytest -q "$@"
