"""Tier and inventory loading: every rule, and the bad-input catalogue (file + field in each message)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from llmrack.config import load_inventory, load_tier, tier_names
from llmrack.errors import LlmrackError
from llmrack.yamlfile import deep_merge

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A team's own copy of the project: tiers/ and inventories/ they may edit."""
    shutil.copytree(ROOT / "tiers", tmp_path / "tiers")
    (tmp_path / "inventories").mkdir()
    return tmp_path


def write_inv(project: Path, text: str, name: str = "site.py") -> Path:
    p = project / "inventories" / name
    p.write_text(text)
    return p


def test_shipped_tiers_load_with_seed_hardware():
    assert tier_names(ROOT) == ["entry", "high-performance", "sandbox", "standard"]
    entry, std, hp = (load_tier(n, ROOT) for n in ("entry", "standard", "high-performance"))
    # seed 000: 2x / 4x / 8x RTX 4090 24 GB; 256 GB / 512 GB / 1 TB RAM
    assert [t.hardware.gpu.count for t in (entry, std, hp)] == [2, 4, 8]
    assert {t.hardware.gpu.model for t in (entry, std, hp)} == {"RTX 4090"}
    assert [t.hardware.ram_gib_min for t in (entry, std, hp)] == [256, 512, 1024]
    assert len(hp.stack.models) == 2  # several models at once on the high-performance tier
    sandbox = load_tier("sandbox", ROOT)
    assert sandbox.hardware.gpu.count == 0 and not sandbox.nvidia.enabled
    assert sandbox.stack.vector_store.kind == "pgvector"
    assert sandbox.base.time.control_clock is False and sandbox.base.time.ntp_servers == []


def test_models_are_frozen():
    t = load_tier("entry", ROOT)
    with pytest.raises(ValidationError):
        t.hardware.gpu.count = 3  # type: ignore[misc]


def test_team_edits_to_tiers_take_effect(project: Path):
    p = project / "tiers" / "entry.yaml"
    p.write_text(p.read_text().replace("cpu_cores_min: 32", "cpu_cores_min: 48"))
    assert load_tier("entry", project).hardware.cpu_cores_min == 48
    assert load_tier("entry", ROOT).hardware.cpu_cores_min == 32


def test_deep_merge_keeps_siblings():
    merged = deep_merge({"a": {"b": 1, "c": 2}, "d": [1]}, {"a": {"b": 5}, "d": [2]})
    assert merged == {"a": {"b": 5, "c": 2}, "d": [2]}


def test_office_and_cluster_inventories_validate():
    office = load_inventory(ROOT / "inventories" / "office.py")
    assert [h.name for h in office.hosts] == ["llm-01"]
    assert office.hosts[0].profile.base.apt.mirror.startswith("https://mirrors.tuna")
    assert office.hosts[0].profile.hardware.gpu.count == 4  # the standard tier, untouched by the overrides
    cluster = load_inventory(ROOT / "inventories" / "cluster.py")
    assert {h.name: h.roles for h in cluster.hosts} == {
        "gw-01": ["gateway"], "gpu-01": ["inference"], "gpu-02": ["inference"], "mon-01": ["monitoring"],
    }
    assert "inference" in cluster.hosts[1].groups


def test_group_data_applies(project: Path):
    (project / "inventories" / "group_data").mkdir()
    (project / "inventories" / "group_data" / "all.py").write_text('tier = "entry"\n')
    inv = write_inv(project, 'servers = [("a", {"ssh_hostname": "10.0.0.1"})]\n')
    spec = load_inventory(inv).hosts[0]
    assert spec.tier == "entry" and spec.address == "10.0.0.1"


def test_per_host_overrides(project: Path):
    inv = write_inv(project, 'servers = [("a", {"tier": "entry", "overrides": {"docker": {"log_max_file": 7}}})]\n')
    assert load_inventory(inv).hosts[0].profile.docker.log_max_file == 7


BAD = [
    # (inventory text, substring of the message naming the field)
    ('s = [("a", {"tier": "nope"})]\n', "a.tier: unknown tier 'nope'"),
    ('s = [("a", {"tier": "entry", "colour": "red"})]\n', "a.colour: unknown key"),
    ('s = [("a", {"tier": "entry", "roles": ["db"]})]\n', "a.roles.0"),
    ('s = [("a", {"roles": ["gateway"]})]\n', "a.tier: Field required"),
    ('s = [("a", {"tier": "entry", "overrides": {"docker": {"log_max_file": "many"}}})]\n',
     "overrides.docker.log_max_file"),
    ('s = [("a", {"tier": "entry", "overrides": {"hardware": {"gpu": {"cuont": 1}}}})]\n',
     "overrides.hardware.gpu.cuont: unknown key"),
    ('s = [("a", {"tier": "entry", "overrides": {"stack": {"models": [{"name": "x", "tensor_parallel_size": 4}]}}})]\n',
     "overrides.stack.models.0.tensor_parallel_size: 4 is larger than the 2 GPU(s)"),
    ('s = [("a", {"tier": "entry", "overrides": {"stack": {"models": [{"name": "x", "gpus": [5]}]}}})]\n',
     "overrides.stack.models.0.gpus: index 5"),
    ('s = [("a", {"tier": "entry", "overrides": {"nvidia": {"driver_branch": 470}}})]\n',
     "overrides.nvidia.driver_branch"),
    ('s = [("a", {"tier": "entry", "data_disk": {"mount": "/data"}})]\n', "a.data_disk.device: Field required"),
    ("s = [(\n", "line 1"),
    ("raise RuntimeError('boom')\n", "cannot load the inventory: RuntimeError: boom"),
    ("x = 1\n", "the inventory defines no hosts"),
]


@pytest.mark.parametrize(("text", "expected"), BAD, ids=[b[1][:40] for b in BAD])
def test_bad_inventory_names_file_and_field(project: Path, text: str, expected: str):
    inv = write_inv(project, text)
    with pytest.raises(LlmrackError) as exc:
        load_inventory(inv)
    msg = str(exc.value)
    assert str(inv) in msg, msg
    assert expected in msg, msg
    assert exc.value.exit_code == 2


def test_bad_tier_file_names_tier_file(project: Path):
    (project / "tiers" / "broken.yaml").write_text("hardware: {gpu: {count: two}}\nstack: {models: [{name: x}]}\n")
    with pytest.raises(LlmrackError) as exc:
        load_tier("broken", project)
    assert "broken.yaml: hardware.gpu.count" in str(exc.value)
    (project / "tiers" / "syntax.yaml").write_text("hardware: [\n")
    with pytest.raises(LlmrackError, match=r"syntax.yaml: line \d+: not valid YAML"):
        load_tier("syntax", project)
    (project / "tiers" / "gpuless.yaml").write_text("stack: {models: [{name: x}]}\n")
    with pytest.raises(LlmrackError, match=r"nvidia.enabled: true \(the default\) on a tier without GPUs"):
        load_tier("gpuless", project)
    # said explicitly, it is allowed: the driver installed ahead of the cards
    (project / "tiers" / "cpu.yaml").write_text("nvidia: {enabled: false}\nstack: {models: [{name: x}]}\n")
    ahead = load_tier("cpu", project, {"nvidia": {"enabled": True}})
    assert ahead.nvidia.enabled and ahead.hardware.gpu.count == 0


def test_missing_and_non_python_inventory(tmp_path: Path):
    with pytest.raises(LlmrackError, match="no such inventory file"):
        load_inventory(tmp_path / "nope.py")
    f = tmp_path / "hosts.ini"
    f.write_text("[all]\n")
    with pytest.raises(LlmrackError, match="is a Python file"):
        load_inventory(f)
