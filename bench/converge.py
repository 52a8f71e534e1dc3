"""Converge time of deploys/docker_host.py (base + Docker engine) on sandbox hosts: first and no-op run,
for 1, 3 and 6 hosts; the no-op also as it was before Nagle's algorithm was turned off on the SSH socket
(bench/pyinfra_nagle.py), the two alternated on the same hosts in one run.

    .venv/bin/python bench/converge.py [--hosts 1 3 6] [--deploy deploys/X.py] [--json bench/results/converge.json]

Each size gets a fresh sandbox (removed afterwards). Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "tests" / "integration"))

from harness import SANDBOX_INVENTORY, Sandbox, run_pyinfra, sandbox_env  # noqa: E402

ROUNDS = 2  # no-op runs per variant after the first re-run, alternated (median of each reported)
NAGLE = [sys.executable, str(PROJECT / "bench" / "pyinfra_nagle.py")]

from llmrack import sandbox  # noqa: E402


def measure(n_hosts: int, deploy: Path) -> dict:
    with tempfile.TemporaryDirectory(prefix="llmrack-bench-") as tmp:
        t0 = time.monotonic()
        with Sandbox(n_hosts, Path(tmp), prefix=f"llmrack-bench-{os.getpid()}-{n_hosts}-") as state:
            up_s = time.monotonic() - t0
            env = sandbox_env(state)
            first = run_pyinfra(SANDBOX_INVENTORY, deploy, env=env)
            second = run_pyinfra(SANDBOX_INVENTORY, deploy, env=env)
            runs: dict[str, list] = {"before": [], "after": [second]}
            for _ in range(ROUNDS):
                runs["before"].append(run_pyinfra(SANDBOX_INVENTORY, deploy, env=env, program=NAGLE))
                runs["after"].append(run_pyinfra(SANDBOX_INVENTORY, deploy, env=env))
    before, after = (statistics.median(r.wall_s for r in runs[k]) for k in ("before", "after"))
    return {
        "hosts": n_hosts,
        "sandbox_up_s": round(up_s, 1),
        "first_converge_s": round(first.wall_s, 1),
        "first_changes": first.changes(),
        "first_ok": first.ok,
        "noop_rerun_s": round(after, 1),
        "noop_before_s": round(before, 1),
        "noop_runs": {k: [round(r.wall_s, 2) for r in v] for k, v in runs.items()},
        "noop_changes": max(r.changes() for v in runs.values() for r in v),
        "noop_ok": all(r.ok for v in runs.values() for r in v),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, nargs="+", default=[1, 3, 6])
    parser.add_argument("--deploy", default=str(PROJECT / "deploys" / "docker_host.py"))
    parser.add_argument("--json", dest="json_path", default=str(PROJECT / "bench" / "results" / "converge.json"))
    args = parser.parse_args()

    sandbox.ensure_engine()
    sandbox.build_host_image()
    rows = [measure(n, Path(args.deploy)) for n in args.hosts]

    header = (f"{'hosts':>5} | {'up s':>6} | {'first converge s':>16} | {'changes':>7} | "
              f"{'no-op before s':>14} | {'no-op re-run s':>14} | changes")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['hosts']:>5} | {r['sandbox_up_s']:>6} | {r['first_converge_s']:>16} | {r['first_changes']:>7} | "
              f"{r['noop_before_s']:>14} | {r['noop_rerun_s']:>14} | {r['noop_changes']}")
    out = Path(args.json_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "deploy": str(Path(args.deploy).relative_to(PROJECT)) if Path(args.deploy).is_absolute() else args.deploy,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "results": rows,
    }
    out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"written {out}")
    return 0 if all(r["first_ok"] and r["noop_ok"] and r["noop_changes"] == 0 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
