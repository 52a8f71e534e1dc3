"""Sandbox state, ssh_config and mirror discovery (no containers needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmrack.errors import SandboxError
from llmrack.sandbox_image import host_apt_sources, image_content_key, machine_mirrors, parse_deb822_sources
from llmrack.sandbox_state import SandboxHost, SandboxState, render_ssh_config


def make_state(tmp_path: Path, n: int = 2) -> SandboxState:
    key = str(tmp_path / "id_ed25519")
    return SandboxState(
        prefix="llmrack-test-", image="llmrack/sandbox-host:bookworm", state_dir=str(tmp_path), key_path=key,
        ssh_config=str(tmp_path / "ssh_config"),
        hosts=[SandboxHost(name=f"host{i}", container=f"llmrack-test-host{i}", ssh_port=40000 + i,
                           address=f"172.17.0.{i + 1}", key_path=key) for i in range(1, n + 1)],
    )


def test_state_round_trip(tmp_path: Path) -> None:
    state = make_state(tmp_path)
    state.save()
    loaded = SandboxState.load(tmp_path)
    assert loaded == state
    assert loaded.host("host2").ssh_port == 40002
    with pytest.raises(SandboxError, match="no sandbox host named"):
        loaded.host("host9")


def test_missing_state_tells_the_user_to_start_the_sandbox(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="llmrack sandbox up"):
        SandboxState.load(tmp_path / "nothing")


def test_damaged_state_is_a_clean_error(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text(json.dumps({"prefix": "x", "hosts": [{"name": "h"}]}))
    with pytest.raises(SandboxError, match="damaged"):
        SandboxState.load(tmp_path)


def test_inventory_without_state_raises_the_same_message(tmp_path: Path, monkeypatch) -> None:
    import runpy

    monkeypatch.setenv("LLMRACK_SANDBOX_DIR", str(tmp_path / "absent"))
    inv = Path(__file__).resolve().parents[2] / "inventories" / "sandbox.py"
    with pytest.raises(SandboxError, match="llmrack sandbox up"):
        runpy.run_path(str(inv))


def test_inventory_defines_one_pyinfra_host_per_sandbox_host(tmp_path: Path, monkeypatch) -> None:
    import runpy

    make_state(tmp_path, 3).save()
    monkeypatch.setenv("LLMRACK_SANDBOX_DIR", str(tmp_path))
    inv = Path(__file__).resolve().parents[2] / "inventories" / "sandbox.py"
    hosts = dict(runpy.run_path(str(inv))["sandbox"])
    assert list(hosts) == ["host1", "host2", "host3"]
    assert hosts["host3"]["ssh_port"] == 40003
    assert hosts["host3"]["address"] == "172.17.0.4"
    assert hosts["host1"]["tier"] == "sandbox"
    assert hosts["host1"]["ssh_known_hosts_file"] == "/dev/null"


def test_ssh_config_has_one_alias_per_host_and_a_control_path(tmp_path: Path) -> None:
    text = render_ssh_config(make_state(tmp_path), control_dir="/tmp/cm")
    blocks = text.split("Host ")[1:]
    assert [b.split()[0] for b in blocks] == ["host1", "host2"]
    assert "Port 40002" in blocks[1]
    for needle in ("StrictHostKeyChecking no", "UserKnownHostsFile /dev/null", "ControlPath /tmp/cm/%C",
                   f"IdentityFile {tmp_path}/id_ed25519"):
        assert needle in blocks[0]


def test_mirrors_read_from_deb822(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\n# comment\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\n"
        "Components: main\n\nTypes: deb\nURIs: http://mirror.example/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n"
    )
    assert machine_mirrors(tmp_path) == ("http://mirror.example/debian",
                                         "http://mirror.example/debian-security")


def test_mirrors_read_from_one_line_sources_and_defaults(tmp_path: Path) -> None:
    assert machine_mirrors(tmp_path) == ("http://deb.debian.org/debian", "http://deb.debian.org/debian-security")
    (tmp_path / "sources.list").write_text(
        "# x\ndeb [arch=amd64] https://mirrors.tuna.tsinghua.edu.cn/debian bookworm main\n"
    )
    assert machine_mirrors(tmp_path)[0] == "https://mirrors.tuna.tsinghua.edu.cn/debian"


def test_host_sources_and_content_key() -> None:
    text = host_apt_sources("http://m/debian", "http://m/debian-security")
    stanzas = parse_deb822_sources(text)
    assert [s["uris"] for s in stanzas] == ["http://m/debian", "http://m/debian-security"]
    assert stanzas[1]["suites"] == "bookworm-security"
    assert image_content_key("http://a", "http://b") != image_content_key("http://c", "http://b")
    assert image_content_key("http://a", "http://b") == image_content_key("http://a", "http://b")
