"""Operations on a sandbox server with data: converge from bare, backup and restore throughput, and a rebuild
(`llmrack rebuild`) of the server after it was destroyed, split into its phases, with N vectors in pgvector.

    .venv/bin/python bench/operations.py [--rows 10000] [--json bench/results/operations.json]

Two sandboxes are made and removed: the server (host1) and a NAS (an SFTP backup target). After the backup
the server's container and its disks are removed and a bare one takes its name, as in
tests/integration/test_data_safety.py; `llmrack rebuild` then takes it from bare to verified with its rows.
The sandbox tier's offline bundle (images, tiny model) is built or reused first and is not timed. Prints a
table and writes JSON.
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

from harness import SANDBOX_INVENTORY, Sandbox, run_pyinfra, sandbox_bundle, sandbox_env  # noqa: E402
from nas import destroy_and_recreate, grant_repository_access  # noqa: E402

from llmrack import sandbox  # noqa: E402

LLMRACK = Path(sys.executable).with_name("llmrack")
COMPOSE = "docker compose --project-name llmrack -f /opt/llmrack/stack/compose.yaml"


def ssh(state, command: str, stdin: str | None = None) -> str:
    done = subprocess.run(["ssh", "-F", state.ssh_config, "host1", command], input=stdin, capture_output=True,
                          text=True, timeout=1800, check=True)
    return done.stdout


def timed_cli(env: dict[str, str], *args: str) -> tuple[float, str]:
    t0 = time.monotonic()
    done = subprocess.run([str(LLMRACK), *args], cwd=PROJECT, capture_output=True, text=True, timeout=3600,
                          env={**os.environ, **env}, check=True)
    return time.monotonic() - t0, done.stdout


def measure(rows: int) -> dict:
    bundle = sandbox_bundle()
    with tempfile.TemporaryDirectory(prefix="llmrack-bench-ops-") as tmp, \
            Sandbox(1, Path(tmp) / "sbx", prefix=f"llmrack-bench-ops-{os.getpid()}-") as state, \
            Sandbox(1, Path(tmp) / "nas", prefix=f"llmrack-bench-nas-{os.getpid()}-") as nas:
        env = {**sandbox_env(state), "LLMRACK_SECRETS_DIR": str(Path(tmp) / "secrets"),
               "LLMRACK_BUNDLE": str(bundle), "LLMRACK_BACKUP_REPOSITORY": grant_repository_access(state, nas)}
        first = run_pyinfra(SANDBOX_INVENTORY, PROJECT / "deploys" / "full_stack.py", env=env, timeout=3600)
        assert first.ok, first.errors()
        sql = (f"CREATE EXTENSION IF NOT EXISTS vector; CREATE TABLE docs (id int PRIMARY KEY, body text, "
               f"embedding vector(384)); INSERT INTO docs SELECT i, repeat(md5(i::text), 8), ('[' || "
               f"array_to_string(ARRAY(SELECT ((i * 31 + d * 17) % 97) / 96.0 FROM generate_series(1, 384) d), "
               f"',') || ']')::vector FROM generate_series(1, {rows}) i;")
        ssh(state, f"{COMPOSE} exec -T postgres psql -U rag -d rag -q -v ON_ERROR_STOP=1", stdin=sql)
        size = int(ssh(state, f"{COMPOSE} exec -T postgres psql -U rag -d rag -Atc "
                              "\"SELECT pg_database_size('rag')\"").strip())
        backup_s, _ = timed_cli(env, "backup", str(SANDBOX_INVENTORY), "--host", "host1")
        restore_s, _ = timed_cli(env, "restore", str(SANDBOX_INVENTORY), "--host", "host1", "--yes")
        fresh = destroy_and_recreate(state)
        grant_repository_access(fresh, nas)  # the new server's own key
        rebuild_s, out = timed_cli(env, "rebuild", str(SANDBOX_INVENTORY), "--host", "host1", "--yes")
        phases = {line.split(":")[0].strip(): float(line.split(":")[1].split()[0])
                  for line in out.splitlines() if line.startswith("  ") and line.strip().endswith(" s")}
        count = int(ssh(fresh, f"{COMPOSE} exec -T postgres psql -U rag -d rag -Atc 'SELECT count(*) FROM docs'"))
    return {"rows": rows, "database_mib": round(size / 2**20, 1), "first_converge_s": round(first.wall_s, 1),
            "backup_s": round(backup_s, 1), "backup_mib_per_s": round(size / 2**20 / backup_s, 1),
            "restore_s": round(restore_s, 1), "restore_mib_per_s": round(size / 2**20 / restore_s, 1),
            "rebuild_from_bare_s": round(rebuild_s, 1), "rebuild_phases_s": phases, "rows_after_rebuild": count}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--json", dest="json_path", default=str(PROJECT / "bench" / "results" / "operations.json"))
    args = parser.parse_args()
    sandbox.ensure_engine()
    sandbox.build_host_image()
    result = measure(args.rows)
    for k, v in result.items():
        print(f"{k:>20}: {v}")
    Path(args.json_path).write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["rows_after_rebuild"] == args.rows else 1


if __name__ == "__main__":
    raise SystemExit(main())
