#!/usr/bin/env bash
# The test command: unit tests, then integration tests against real sandbox hosts, images and services, in two
# lanes side by side (tests/integration/conftest.py says which module runs in which). Installs what it needs
# (scripts/bootstrap.sh). Exits non-zero on any failure. Arguments go to both pytest runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/ruff check .
.venv/bin/pytest tests/unit -p no:cacheprovider --durations=10 "$@"
exec .venv/bin/pytest tests/integration -p no:cacheprovider -n 2 --dist loadgroup --durations=25 "$@"
