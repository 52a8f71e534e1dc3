#!/usr/bin/env bash
# The main job on the embedded sandbox: local bare hosts -> offline bundle -> full_stack deploy (twice: the
# second run must change nothing) -> smoke -> acceptance verify -> what is running and where.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"
HOSTS=${LLMRACK_SANDBOX_HOSTS:-1}

llmrack sandbox up --hosts "$HOSTS"
llmrack bundle build --tier sandbox --out .llmrack/bundle
llmrack validate inventories/sandbox.py
pyinfra -y inventories/sandbox.py deploys/full_stack.py
echo "llmrack: converging again (nothing should change)"
pyinfra -y inventories/sandbox.py deploys/full_stack.py
llmrack smoke inventories/sandbox.py
set +e
llmrack verify inventories/sandbox.py --report .llmrack/report
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
exit $verdict
