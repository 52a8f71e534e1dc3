"""The `sec.exposure` check of `llmrack verify`: a real connect scan (here against listeners on 127.0.0.1)
and the allow list it judges by, written from the README's table."""

from __future__ import annotations

import socket
import subprocess
import sys
from types import SimpleNamespace

from llmrack.config import HostSpec, load_tier
from llmrack.verify import REGISTRY
from llmrack.verify import exposure as ex


def test_scan_finds_listeners_and_only_them() -> None:
    socks = []
    try:
        for _ in range(3):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            s.listen()
            socks.append(s)
        ports = [s.getsockname()[1] for s in socks]
        socks.pop().close()  # the third port: closed again, nothing answers there
        assert ex.scan("127.0.0.1", ports) == sorted(ports[:2])
    finally:
        for s in socks:
            s.close()


def _ctx(roles: list[str], address: str = "10.0.0.5", **connector):
    profile = load_tier("sandbox")
    spec = HostSpec(name="h", address=address, roles=roles, tier="sandbox", profile=profile, connector=connector)
    return SimpleNamespace(spec=spec, profile=profile, local=False, run=lambda cmd: (0, "", ""), peer=None,
                           inventory=None)


def test_scan_raises_a_low_descriptor_limit_for_its_batches() -> None:
    """A shell with the common soft limit of 1024 (here 256) still scans in batches of thousands: the scan
    lifts the process's soft limit towards its hard one (a filtered port costs the batch's deadline)."""
    code = ("import resource, socket\n"
            "resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))\n"
            "from llmrack.verify import exposure as ex\n"
            "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); port = s.getsockname()[1]\n"
            "ports = sorted({*range(20000, 23000), port})\n"
            "print(ex.scan('127.0.0.1', ports) == [port], resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "True"
    assert int(out[1]) > 3000, f"the soft limit stayed at {out[1]}"


def test_allowed_ports_follow_the_role() -> None:
    assert ex.allowed_from_the_lan(_ctx(["gateway", "monitoring"])) == {22, 8443}
    assert ex.allowed_from_the_lan(_ctx(["inference"])) == {22}
    assert ex.allowed_from_the_lan(_ctx(["inference"], ssh_hostname="10.0.0.5", ssh_port=2222)) == {22, 2222}


def test_the_check_is_registered_and_names_what_is_exposed(monkeypatch) -> None:
    assert "sec.exposure" in REGISTRY
    monkeypatch.setattr(ex, "scan", lambda address: [22, 9100, 18000])
    ctx = _ctx(["inference"])
    ctx.run = lambda cmd: ((0, 'LISTEN 0 4096 10.0.0.5:9100 0.0.0.0:* users:(("prometheus-node",pid=7,fd=3))\n', "")
                           if cmd.startswith("ss") else (0, "llmrack-vllm-1\t10.0.0.5:18000->8000/tcp\n", ""))
    out = ex.sec_exposure(ctx)
    assert out.status == "fail"
    assert out.message == ("open from the admin machine besides SSH and the gateway: 9100 (prometheus-node), "
                           "18000 (container llmrack-vllm-1)")
    monkeypatch.setattr(ex, "scan", lambda address: [22])
    assert ex.sec_exposure(ctx).status == "pass"
    assert ex.sec_exposure(_ctx(["inference"], address="127.0.0.1")).status == "manual"
