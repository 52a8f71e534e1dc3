"""Converge time of the four-host sandbox cluster (gateway, two inference nodes, monitoring), first and no-op.

    .venv/bin/python bench/cluster.py [--hosts 4] [--json bench/results/cluster.json]

A fresh sandbox is made with the `cluster` role layout (first host the gateway, last the monitoring host, the
others inference nodes), `deploys/full_stack.py` runs twice over all hosts at once (pyinfra's parallelism), and
the sandbox is removed. Prints the two wall times and the changed-operation counts, and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "tests" / "integration"))

from harness import SANDBOX_INVENTORY, Sandbox, run_pyinfra, sandbox_env  # noqa: E402

FULL = PROJECT / "deploys" / "full_stack.py"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=4, help="sandbox hosts (at least 3)")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = ap.parse_args()
    from llmrack.bundle import build_bundle_for_tier
    from llmrack.config import load_tier

    bundle = PROJECT / ".llmrack" / "bundle"
    build_bundle_for_tier(load_tier("sandbox", PROJECT), bundle, project_dir=PROJECT, log=lambda msg: None)
    with tempfile.TemporaryDirectory(prefix="llmrack-bench-cluster-") as tmp, \
            Sandbox(args.hosts, Path(tmp) / "sandbox", prefix=f"llmrack-bench-{os.getpid()}-") as state:
        env = {**sandbox_env(state), "LLMRACK_BUNDLE": str(bundle), "LLMRACK_SANDBOX_ROLES": "cluster",
               "LLMRACK_SECRETS_DIR": str(Path(tmp) / "secrets")}
        first = run_pyinfra(SANDBOX_INVENTORY, FULL, env=env, timeout=3600)
        second = run_pyinfra(SANDBOX_INVENTORY, FULL, env=env, timeout=1800)
    out = {"hosts": args.hosts, "first_s": round(first.wall_s, 1), "first_changes": first.changes(),
           "first_ok": first.ok, "noop_s": round(second.wall_s, 1), "noop_changes": second.changes(),
           "noop_ok": second.ok, "cpus": os.cpu_count()}
    print(f"{args.hosts}-host cluster: first converge {out['first_s']} s ({out['first_changes']} changes), "
          f"no-op {out['noop_s']} s ({out['noop_changes']} changes)")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0 if first.ok and second.ok and not second.changes() else 1


if __name__ == "__main__":
    raise SystemExit(main())
