"""`sec.exposure` from a named probe host (``acceptance.probe_host``): the scan runs on that host, with its own
python3, against the host under test. Here the probe host is this machine reached through testinfra's local
backend (the same interface an SSH host has) and the target is this machine's LAN address."""

from __future__ import annotations

import socket
import subprocess
from types import SimpleNamespace

import testinfra

from llmrack.config import HostSpec, Inventory, load_tier
from llmrack.verify import exposure as ex


def _lan_address() -> str:
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True)
    for line in out.stdout.splitlines():
        return line.split()[3].split("/")[0]
    raise AssertionError("this machine has no non-loopback IPv4 address to scan")


def _ctx(address: str, probe: str, peer):
    profile = load_tier("sandbox")
    profile = profile.model_copy(update={"acceptance": profile.acceptance.model_copy(update={"probe_host": probe})})
    spec = HostSpec(name="h", address=address, roles=["inference"], tier="sandbox", profile=profile)
    other = HostSpec(name="probe", address="10.0.0.9", roles=["inference"], tier="sandbox", profile=profile)
    inv = Inventory(path="inventory", project_dir=".", hosts=[spec, other])
    return SimpleNamespace(spec=spec, profile=profile, local=False, inventory=inv, peer=peer,
                           run=lambda cmd: (0, "", ""))


def test_the_scan_runs_on_the_probe_host_and_says_so() -> None:
    address = _lan_address()
    asked: list[str] = []

    def peer(name: str):
        asked.append(name)
        return testinfra.get_host("local://")

    with socket.socket() as listener:
        listener.bind(("0.0.0.0", 0))
        listener.listen()
        port = listener.getsockname()[1]
        out = ex.sec_exposure(_ctx(address, "probe", peer))
    assert asked == ["probe"]
    assert out.value["from"] == "the probe host probe" and port in out.value["reachable"], out
    assert out.status == "fail" and out.message.startswith("open from the probe host probe besides SSH")
    assert f"{port} (" in out.message


def test_without_a_probe_host_the_admin_machine_scans(monkeypatch) -> None:
    monkeypatch.setattr(ex, "scan", lambda address: [22])
    out = ex.sec_exposure(_ctx("10.0.0.5", "", peer=lambda name: (_ for _ in ()).throw(AssertionError(name))))
    assert out.status == "pass" and out.value["from"] == "the admin machine"
    missing = ex.sec_exposure(_ctx("10.0.0.5", "nohost", peer=lambda name: None))
    assert missing.status == "error" and "acceptance.probe_host: no host 'nohost'" in missing.message
