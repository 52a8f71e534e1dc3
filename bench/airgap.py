"""Full-stack converge of an air-gapped sandbox host from the offline bundle alone: first run, no-op re-run,
then `llmrack verify`.

    .venv/bin/python bench/airgap.py [--bundle .llmrack/bundle] [--json bench/results/airgap.json]

The bundle must exist (`llmrack bundle build --tier sandbox --out .llmrack/bundle`). One fresh sandbox host
(removed afterwards) gets ``base.apt.offline: true``; before the first run its outbound network is cut with
nftables in its own network namespace (tests/integration/netcut.py: only replies to connections made to it
leave it; its nested containers reach nothing outside), proved by a connection from the host to this machine
that works before the cut and fails after it. Every package, image and model comes from the bundle.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "tests" / "integration"))

from harness import SANDBOX_INVENTORY, Sandbox, container, run_pyinfra, sandbox_env  # noqa: E402
from netcut import cut_outbound  # noqa: E402


def _why(state) -> str:
    """The stack unit's journal and the nested containers' states and last log lines."""
    c = container(state, "host1")
    cmd = ("journalctl -u llmrack-stack --no-pager -n 40; docker ps -a --format '{{.Names}} {{.Status}}'; "
           "for n in $(docker ps -aq); do docker logs --tail 15 $n 2>&1; done")
    return c.exec_run(["sh", "-c", cmd]).output.decode(errors="replace")[-6000:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default=str(PROJECT / ".llmrack" / "bundle"))
    parser.add_argument("--json", dest="json_path", default=str(PROJECT / "bench" / "results" / "airgap.json"))
    args = parser.parse_args()
    bundle = Path(args.bundle).resolve()
    with tempfile.TemporaryDirectory(prefix="llmrack-bench-airgap-") as tmp:
        inv = Path(tmp) / "airgap.py"
        inv.write_text(
            "import runpy\n"
            f"_base = runpy.run_path({str(SANDBOX_INVENTORY)!r})\n"
            "sandbox = [(n, {**d, 'overrides': {**d['overrides'], 'base': {'apt': {'offline': True}}, "
            # vLLM's start on a shared 2-core machine can pass the sandbox tier's 300 s healthcheck grace
            "'stack': {**d['overrides']['stack'], 'vllm': {'start_period_s': 1500}}}}) "
            "for n, d in _base['sandbox']]\n"
        )
        with Sandbox(1, Path(tmp) / "sbx", prefix=f"llmrack-bench-airgap-{os.getpid()}-") as state:
            cut = cut_outbound(state, "host1")
            if cut.before_rc != 0 or cut.after_rc == 0:
                print(f"the cut is not proved: {cut}")
                return 1
            env = {**sandbox_env(state), "LLMRACK_BUNDLE": str(bundle)}
            deploy = PROJECT / "deploys" / "full_stack.py"
            try:
                first = run_pyinfra(inv, deploy, env=env, timeout=2400)
            except AssertionError:  # pyinfra stopped before its results: say why the host failed, then stop
                print(_why(state), file=sys.stderr)
                raise
            second = run_pyinfra(inv, deploy, env=env, timeout=900)
            t = time.monotonic()
            verify = subprocess.run([str(PROJECT / ".venv" / "bin" / "llmrack"), "verify", str(inv)], cwd=PROJECT,
                                    env={**os.environ, **env}, capture_output=True, text=True, timeout=1800)
            verify_s = time.monotonic() - t
    row = {"outbound_before_cut_rc": cut.before_rc, "outbound_after_cut_rc": cut.after_rc,
           "first_converge_s": round(first.wall_s, 1), "first_changes": first.changes(), "first_ok": first.ok,
           "noop_rerun_s": round(second.wall_s, 1), "noop_changes": second.changes(), "noop_ok": second.ok,
           "verify_rc": verify.returncode, "verify_s": round(verify_s, 1),
           "bundle_mib": round(sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file()) / 2**20)}
    print(json.dumps(row, indent=2))
    if not first.ok:
        print(first.stderr[-3000:])
    print("changed on the no-op re-run:", second.changed_ops())
    if verify.returncode:
        print((verify.stdout + verify.stderr)[-3000:])
    out = Path(args.json_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"deploy": "deploys/full_stack.py", "machine": {"cpus": os.cpu_count()},
                               "results": [row]}, indent=2) + "\n", encoding="utf-8")
    return 0 if first.ok and second.ok and row["noop_changes"] == 0 and verify.returncode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
