#!/usr/bin/env bash
# The main job on the embedded sandbox: local bare hosts -> offline bundle -> full_stack deploy (twice: the
# second run must change nothing) -> smoke -> acceptance verify -> what is running and where.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bootstrap_s=$SECONDS
export PATH="$PWD/.venv/bin:$PATH"
HOSTS=${LLMRACK_SANDBOX_HOSTS:-1}

phases=()
phase() {  # phase NAME COMMAND...: runs it, keeps its wall time for the summary at the end
    local t0=$SECONDS rc=0
    "${@:2}" || rc=$?
    phases+=("$(printf '%-28s %4d s' "$1" $((SECONDS - t0)))")
    return $rc
}
# The host image and the hosts come up beside the bundle build: they share no step (the host image is its own
# debootstrap), and each is mostly one process, so the two cores run both.
mkdir -p .llmrack
up_log=.llmrack/sandbox-up.log
(t0=$SECONDS; rc=0; llmrack sandbox up --hosts "$HOSTS" || rc=$?; echo $((SECONDS - t0)) > "$up_log.s"; exit $rc) \
    > "$up_log" 2>&1 &
up_pid=$!
echo "llmrack: host image + hosts starting beside the bundle build (log: $up_log)"
phase "bundle (service images)" llmrack bundle build --tier sandbox --out .llmrack/bundle
up_rc=0
wait "$up_pid" || up_rc=$?
cat "$up_log"
phases+=("$(printf '%-28s %4d s' "host image + hosts" "$(cat "$up_log.s")") (beside the bundle)")
if ((up_rc)); then echo "llmrack sandbox up failed (exit $up_rc)" >&2; exit "$up_rc"; fi
phase "validate" llmrack validate inventories/sandbox.py
phase "first converge" pyinfra -y inventories/sandbox.py deploys/full_stack.py
echo "llmrack: converging again (nothing should change)"
phase "second converge (no-op)" pyinfra -y inventories/sandbox.py deploys/full_stack.py
phase "smoke" llmrack smoke inventories/sandbox.py
set +e
phase "verify" llmrack verify inventories/sandbox.py --report .llmrack/report
verdict=$?
set -e
llmrack sandbox status
python3 - <<'PY'
import json
state = json.load(open(".llmrack/sandbox/state.json"))
for h in state["hosts"]:
    print(f"{h['name']}: OpenAI API  https://{h['address']}:8443/v1   (keys: .llmrack/secrets/{h['name']}/api_keys.json)")
    print(f"{h['name']}: Prometheus  ssh -p {h['ssh_port']} -i {h['key_path']} -L 9090:127.0.0.1:9090 root@127.0.0.1")
print("acceptance report: .llmrack/report/report.html (report.json, junit.xml, report.md beside it)")
PY
echo "llmrack: phase times (bootstrap before them: $bootstrap_s s)"
printf '  %s\n' "${phases[@]}"
printf '  %-28s %4d s\n' "total" "$SECONDS"
exit $verdict
