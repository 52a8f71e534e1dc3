"""llmrack (pyinfra) against Ansible on the same steps: base + Docker engine (deploys/docker_host.py and
bench/ansible/docker_host.yml), first converge and no-op re-run on 1, 3 and 6 sandbox hosts, in one run.

    .venv/bin/python bench/vs_ansible.py [--hosts 1 3 6] [--json bench/results/vs_ansible.json]

For each size: a fresh sandbox converged twice by llmrack, then a fresh sandbox (same image, same size)
converged twice by ansible-playbook. The playbook copies the very files llmrack wrote (read back from the
llmrack host), so both tools put the same bytes, install the same packages and start the same services.
ansible-core comes from PyPI into its own venv (.llmrack/bench-ansible); bench/ansible/ansible.cfg turns on
pipelining and ControlPersist, minimal facts, 16 forks. Not a test: prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "tests" / "integration"))

from harness import SANDBOX_INVENTORY, Sandbox, container, run_pyinfra, sandbox_env  # noqa: E402

from llmrack import sandbox  # noqa: E402
from llmrack.config import load_tier  # noqa: E402

ANSIBLE_DIR = PROJECT / "bench" / "ansible"
ANSIBLE_VENV = PROJECT / ".llmrack" / "bench-ansible"
COPIED = [  # files llmrack writes with the same bytes on every sandbox host (host-specific ones are templated)
    "/etc/chrony/chrony.conf", "/etc/default/chrony", "/etc/sysctl.d/60-llmrack.conf",
    "/etc/security/limits.d/60-llmrack.conf", "/etc/systemd/system.conf.d/60-llmrack.conf",
    "/etc/systemd/journald.conf.d/60-llmrack.conf", "/etc/docker/daemon.json",
]
STATE_CHECK = ("dpkg-query -W -f='${Package} ${Status}\\n' docker.io chrony; "
               "systemctl is-active docker chrony; cat /etc/hostname")
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def ensure_ansible() -> Path:
    playbook_bin = ANSIBLE_VENV / "bin" / "ansible-playbook"
    if not playbook_bin.exists():
        subprocess.run([sys.executable, "-m", "venv", str(ANSIBLE_VENV)], check=True)
        subprocess.run([str(ANSIBLE_VENV / "bin" / "pip"), "install", "-q", "ansible-core"], check=True)
    return playbook_bin


def ansible_version(playbook_bin: Path) -> str:
    out = subprocess.run([str(playbook_bin), "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0] if out else "?"


def host_state(state, name: str) -> dict:
    c = container(state, name)
    sums = {}
    for path in COPIED:
        rc, data = c.exec_run(["cat", path])
        sums[path] = hashlib.sha256(data).hexdigest() if rc == 0 else None
    _, out = c.exec_run(["sh", "-c", STATE_CHECK])
    return {"sha256": sums, "state": out.decode().replace(name, "<host>")}


def collect_files(state, dest: Path) -> None:
    c = container(state, state.hosts[0].name)
    for path in COPIED:
        rc, data = c.exec_run(["cat", path])
        if rc != 0:
            raise SystemExit(f"llmrack did not write {path} on {state.hosts[0].name}")
        target = dest / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def run_ansible(playbook_bin: Path, state, files_dir: Path, work: Path) -> dict:
    profile = load_tier("sandbox", PROJECT)
    inv = work / "inventory.ini"
    inv.write_text("[sandbox]\n" + "".join(
        f"{h.name} ansible_host=127.0.0.1 ansible_port={h.ssh_port} ansible_user=root "
        f"ansible_ssh_private_key_file={h.key_path}\n" for h in state.hosts))
    extra = work / "vars.json"
    extra.write_text(json.dumps({
        "files_dir": str(files_dir),
        "base_packages": sorted({*profile.base.packages, "tzdata", "chrony"}),
        "timezone": profile.base.time.timezone,
        "hosts_block": "\n".join(f"{h.address} {h.name}" for h in sorted(state.hosts, key=lambda h: h.name)),
    }))
    control = work / "cp"
    control.mkdir(exist_ok=True)
    env = {**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control), "ANSIBLE_LOCAL_TEMP": str(work / "tmp")}
    t0 = time.monotonic()
    done = subprocess.run([str(playbook_bin), "-i", str(inv), "-e", f"@{extra}", str(ANSIBLE_DIR / "docker_host.yml")],
                          capture_output=True, text=True, env=env, timeout=1800)
    wall = time.monotonic() - t0
    recap = RECAP.findall(done.stdout)
    ok = done.returncode == 0 and len(recap) == len(state.hosts) and all(r[3] == r[4] == "0" for r in recap)
    if not ok:
        print(done.stdout[-3000:], done.stderr[-2000:], file=sys.stderr)
    return {"wall_s": wall, "changes": sum(int(r[2]) for r in recap), "ok": ok}


def measure(n: int, playbook_bin: Path, deploy: Path) -> dict:
    prefix = f"llmrack-bench-{os.getpid()}-{n}"
    with tempfile.TemporaryDirectory(prefix="llmrack-vs-ansible-") as tmp:
        tmpd = Path(tmp)
        files_dir = tmpd / "files"
        with Sandbox(n, tmpd / "sb-pyinfra", prefix=f"{prefix}-p-") as state:
            env = sandbox_env(state)
            p1 = run_pyinfra(SANDBOX_INVENTORY, deploy, env=env, timeout=1800)
            p2 = run_pyinfra(SANDBOX_INVENTORY, deploy, env=env, timeout=1800)
            collect_files(state, files_dir)
            p_state = host_state(state, state.hosts[0].name)
        work = tmpd / "ansible"
        work.mkdir()
        with Sandbox(n, tmpd / "sb-ansible", prefix=f"{prefix}-a-") as state:
            a1 = run_ansible(playbook_bin, state, files_dir, work)
            a2 = run_ansible(playbook_bin, state, files_dir, work)
            a_state = host_state(state, state.hosts[0].name)
    return {
        "hosts": n,
        "llmrack": {"first_s": round(p1.wall_s, 1), "first_changes": p1.changes(), "first_ok": p1.ok,
                    "noop_s": round(p2.wall_s, 1), "noop_changes": p2.changes(), "noop_ok": p2.ok},
        "ansible": {"first_s": round(a1["wall_s"], 1), "first_changes": a1["changes"], "first_ok": a1["ok"],
                    "noop_s": round(a2["wall_s"], 1), "noop_changes": a2["changes"], "noop_ok": a2["ok"]},
        "same_end_state": p_state == a_state,
        "noop_ratio": round(a2["wall_s"] / p2.wall_s, 2),
        "first_ratio": round(a1["wall_s"] / p1.wall_s, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, nargs="+", default=[1, 3, 6])
    parser.add_argument("--deploy", default=str(PROJECT / "deploys" / "docker_host.py"))
    parser.add_argument("--json", dest="json_path", default=str(PROJECT / "bench" / "results" / "vs_ansible.json"))
    args = parser.parse_args()

    playbook_bin = ensure_ansible()
    sandbox.ensure_engine()
    sandbox.build_host_image()
    rows = []
    for n in args.hosts:
        rows.append(measure(n, playbook_bin, Path(args.deploy)))
        print(json.dumps(rows[-1]), flush=True)

    print(f"\n{'hosts':>5} | {'llmrack first':>13} | {'ansible first':>13} | {'llmrack no-op':>13} | "
          f"{'ansible no-op':>13} | no-op ratio | same end state")
    for r in rows:
        p, a = r["llmrack"], r["ansible"]
        print(f"{r['hosts']:>5} | {p['first_s']:>11} s | {a['first_s']:>11} s | {p['noop_s']:>11} s | "
              f"{a['noop_s']:>11} s | {r['noop_ratio']:>10}x | {r['same_end_state']}")
    out = Path(args.json_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "ansible": ansible_version(playbook_bin),
        "results": rows,
    }, indent=2) + "\n", encoding="utf-8")
    print(f"written {out}")
    good = all(r[t]["first_ok"] and r[t]["noop_ok"] and r[t]["noop_changes"] == 0
               for r in rows for t in ("llmrack", "ansible"))
    return 0 if good and all(r["same_end_state"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
