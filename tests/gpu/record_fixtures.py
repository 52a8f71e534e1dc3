"""Record the raw output of every llmrack fact command on this host (run on a GPU host).

    python tests/gpu/record_fixtures.py DIR

Writes DIR/<fact>.txt (the command's stdout, exactly what pyinfra's process() receives) and
DIR/<fact>.parsed.json (what the fact makes of it), plus raw tool outputs useful for new fixtures.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from llmrack import facts

FACTS = {
    "nvidia_gpus": (facts.NvidiaGpus, {}),
    "secure_boot": (facts.SecureBoot, {}),
    "kernel_modules": (facts.KernelModules, {}),
    "nvidia_packages": (facts.NvidiaPackages, {}),
    "container_toolkit_version": (facts.ContainerToolkitVersion, {}),
    "cdi_spec": (facts.CdiSpec, {}),
    "xid_errors": (facts.XidErrors, {}),
    "free_disk": (facts.FreeDisk, {"path": "/"}),
}
RAW = {
    "nvidia-smi.txt": "nvidia-smi",
    "nvidia-smi-L.txt": "nvidia-smi -L",
    "nvidia-smi-help-query-gpu.txt": "nvidia-smi --help-query-gpu",
    "nvidia-smi-q.txt": "nvidia-smi -q",
    "lspci-nn.txt": "lspci -nn",
    "os-release.txt": "cat /etc/os-release",
    "uname-r.txt": "uname -r",
    "proc-modules-nvidia.txt": "grep -E '^(nvidia|nouveau|nova)' /proc/modules; cat /sys/module/nvidia/version",
    "mokutil.txt": "mokutil --sb-state; ls -d /sys/firmware/efi",
    "dmesg-nvrm.txt": "dmesg | grep -i -E 'nvrm|nvidia' | head -50",
    "dpkg-nvidia.txt": "dpkg -l | grep -i -E 'nvidia|cuda' | head -100",
    "systemd-pid1.txt": "cat /proc/1/comm; ls -d /run/systemd/system",
}


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, (cls, kwargs) in FACTS.items():
        fact = cls()
        cmd = str(fact.command(**kwargs))
        res = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=120, check=False)
        (out / f"{name}.txt").write_text(res.stdout)
        lines = res.stdout.splitlines()
        parsed = fact.process(lines) if lines else cls.default()
        (out / f"{name}.parsed.json").write_text(json.dumps(parsed, indent=2, sort_keys=True) + "\n")
        print(f"{name}: rc={res.returncode} {json.dumps(parsed)[:300]}")
    raw = out / "raw"
    raw.mkdir(exist_ok=True)
    for fname, cmd in RAW.items():
        res = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=120, check=False)
        (raw / fname).write_text(f"$ {cmd}\n# exit {res.returncode}\n{res.stdout}{res.stderr}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
