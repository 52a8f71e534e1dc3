#!/usr/bin/env bash
# The test command: unit tests, then integration tests against real sandbox hosts, images and services.
# Installs what it needs (scripts/bootstrap.sh). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/ruff check .
# The stack-through-the-gateway and acceptance suites (test_stack.py, test_verify.py) deploy the whole stack
# again on their own hosts; they run with: .venv/bin/pytest tests/integration/test_stack.py tests/integration/test_verify.py
exec .venv/bin/pytest tests/unit tests/integration -p no:cacheprovider \
    --deselect tests/integration/test_stack.py --deselect tests/integration/test_verify.py "$@"
