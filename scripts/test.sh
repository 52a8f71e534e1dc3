#!/usr/bin/env bash
# The test command: unit tests, then integration tests against real sandbox hosts, images and services.
# Installs what it needs (scripts/bootstrap.sh). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/ruff check .
exec .venv/bin/pytest tests/unit tests/integration -p no:cacheprovider --durations=25 "$@"
