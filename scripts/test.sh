#!/usr/bin/env bash
# The test command: unit tests, then integration tests against real sandbox hosts, images and services, in two
# lanes side by side (tests/integration/conftest.py says which module runs in which; the "site" lane's report is
# printed after the "hosts" lane's). Installs what it needs (scripts/bootstrap.sh). Exits non-zero on any
# failure. Arguments go to every pytest run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/ruff check .
.venv/bin/pytest tests/unit -p no:cacheprovider --durations=10 "$@"

logs=.llmrack/test-lanes
mkdir -p "$logs"
lane() {  # lane NAME: its integration modules, its own temporary directory
    .venv/bin/pytest tests/integration --lane "$1" --basetemp "/tmp/llmrack-lane-$1" -p no:cacheprovider \
        --durations=15 "${@:2}"
}
lane site "$@" > "$logs/site.log" 2>&1 &
site=$!
trap 'kill "$site" 2>/dev/null' INT TERM  # an interrupted run stops both lanes
echo "llmrack: integration lane 'site' runs alongside (its report follows this one; live: $logs/site.log)"
hosts_rc=0; lane hosts "$@" || hosts_rc=$?
site_rc=0; wait "$site" || site_rc=$?
echo "---------------------------------------------------------------- integration lane 'site'"
cat "$logs/site.log"
echo "llmrack: lane hosts exit $hosts_rc, lane site exit $site_rc"
[ "$hosts_rc" -eq 0 ] && [ "$site_rc" -eq 0 ]
