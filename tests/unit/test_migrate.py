"""``llmrack migrate``: the plan (what changes, what restarts), the planner's fit check on the host's GPUs,
the generated inventory, the counting, and bad input exiting 2 before anything is touched."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmrack import migrate as m
from llmrack.cli import app
from llmrack.config import load_inventory
from llmrack.errors import LlmrackError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project with the repository's tiers plus a larger CPU variant of the sandbox tier."""
    shutil.copytree(REPO / "tiers", tmp_path / "tiers")
    text = (tmp_path / "tiers" / "sandbox.yaml").read_text()
    text = text.replace("max_model_len: 512", "max_model_len: 384").replace("burst_per_key: 40", "burst_per_key: 80")
    (tmp_path / "tiers" / "sandbox-large.yaml").write_text(text)
    (tmp_path / "inventories").mkdir()
    inv = tmp_path / "inventories" / "office.py"
    inv.write_text('office = [\n    ("node1", {"tier": "sandbox", "address": "10.0.0.5", "overrides": '
                   '{"backup": {"repository": "sftp:backup@nas.lan:/srv/llmrack"}}}),\n'
                   '    ("node2", {"tier": "sandbox", "address": "10.0.0.6", "roles": ["inference"]}),\n'
                   '    ("node3", {"tier": "sandbox", "address": "10.0.0.7"}),\n]\n')
    return tmp_path


def test_the_generated_inventory_changes_one_host_tier_and_keeps_its_overrides(project: Path) -> None:
    inv_path = project / "inventories" / "office.py"
    inv = load_inventory(inv_path, project)
    wrapper, new = m.retiered(inv_path, inv, "node1", "sandbox-large")
    assert wrapper.name == "office.py" and wrapper.stat().st_mode & 0o077 == 0
    assert new.tier == "sandbox-large" and new.profile.stack.models[0].max_model_len == 384
    assert new.profile.backup.repository == "sftp:backup@nas.lan:/srv/llmrack"  # the host's override kept
    others = {h.name: h.tier for h in load_inventory(wrapper, project).hosts}
    assert others == {"node1": "sandbox-large", "node2": "sandbox", "node3": "sandbox"}
    assert inv_path.read_text().count('"tier": "sandbox"') == 3  # the user's file is untouched


def test_the_in_place_plan_names_what_changes_and_what_restarts(project: Path) -> None:
    inv_path = project / "inventories" / "office.py"
    inv = load_inventory(inv_path, project)
    _w, new = m.retiered(inv_path, inv, "node1", "sandbox-large")
    plan = m.in_place_plan(m.spec_in(inv, "node1"), new)
    text = "\n".join(plan.lines())
    assert "tier: sandbox -> sandbox-large" in text
    assert "max_model_len 512, max_num_seqs 64, bf16 -> llmrack-tiny TP auto, max_model_len 384" in text
    assert "gateway burst_per_key: 40 -> 80" in text
    assert "vLLM server of llmrack-tiny (weights loaded again)" in plan.restarts
    assert "gateway (configuration reload)" in plan.restarts
    assert plan.same_model and "load time" in plan.interruption
    unchanged = m.in_place_plan(m.spec_in(inv, "node1"), m.spec_in(inv, "node1"))
    assert unchanged.changes == [] and unchanged.restarts == [] and unchanged.interruption == "none expected"


def test_the_fit_check_is_the_planner_s_on_the_host_s_real_gpus(project: Path) -> None:
    inv_path = project / "inventories" / "office.py"
    inv = load_inventory(inv_path, project)
    _w, standard = m.retiered(inv_path, inv, "node1", "standard")  # Qwen2.5-72B AWQ, TP 4
    with pytest.raises(LlmrackError, match="has none") as none:
        m.check_fits(standard, [], project)
    assert none.value.field == "--to"
    with pytest.raises(LlmrackError, match=r"does not fit node1's 1 x 24 GiB") as small:
        m.check_fits(standard, [m.Gpu("NVIDIA GeForce RTX 4090", 24.0)], project)
    assert small.value.field == "--to"
    plans = m.check_fits(standard, [m.Gpu("NVIDIA GeForce RTX 4090", 24.0)] * 4, project)
    assert plans[0].fits and plans[0].tensor_parallel_size == 4


def test_gpus_are_read_from_nvidia_smi() -> None:
    text = "NVIDIA GeForce RTX 4090, 24564\nNVIDIA GeForce RTX 4090, 24564\n"
    assert m.parse_gpus(text) == [m.Gpu("NVIDIA GeForce RTX 4090", 24.0)] * 2
    assert m.parse_gpus("") == [] and m.parse_gpus("bash: nvidia-smi: not found\n") == []


def test_rows_lost_and_counts() -> None:
    assert m.parse_counts("table\tpublic.docs\t10000\ncollection\tdocs\t5\nnoise\n") == {
        "table public.docs": 10000, "collection docs": 5}
    assert m.lost_rows({"table public.docs": 10}, {"table public.docs": 10}) == {}
    assert m.lost_rows({"table public.docs": 10, "table public.x": 3}, {"table public.docs": 9}) == {
        "table public.docs": (10, 9), "table public.x": (3, 0)}


def test_count_queries_only_take_manifest_names_of_plain_characters(project: Path) -> None:
    inv = load_inventory(project / "inventories" / "office.py", project)
    cmd = m.count_command(m.spec_in(inv, "node1"), ["table public.docs", "table x;reboot", "collection c"])
    assert "SELECT count(*) FROM public.docs" in cmd and "reboot" not in cmd and cmd.count("psql") == 1


def test_the_host_to_host_plan(project: Path) -> None:
    inv = load_inventory(project / "inventories" / "office.py", project)
    plan = m.host_to_host_plan(m.spec_in(inv, "node1"), m.spec_in(inv, "node3"))
    text = "\n".join(plan.lines())
    assert text.startswith("migrate node1 to node3")
    assert "node3: takes node1's API keys and database password" in text
    assert "node1: gateway and embeddings stopped" in text and "none lost" in plan.interruption


@pytest.mark.parametrize("args,message", [
    (["--host", "nope", "--to", "sandbox-large"], "no host 'nope'"),
    (["--host", "node1", "--to", "nope"], "unknown tier 'nope'"),
    (["--host", "node1", "--to", "../x"], "bad tier name"),
    (["--host", "node1"], "give --host H --to TIER"),
    (["--from-host", "node1", "--to-host", "nope"], "no host 'nope'"),
    (["--from-host", "node1", "--to-host", "node1"], "the same host"),
    (["--from-host", "node1", "--to-host", "node2"], "lacks the role(s) gateway"),
    (["--from-host", "node3", "--to-host", "node1"], "on node3 itself"),
    (["--host", "node1", "--to", "sandbox", "--from-host", "node3"], "give --host H --to TIER"),
])
def test_bad_input_exits_2_with_one_message_and_touches_nothing(project: Path, args: list[str],
                                                                 message: str) -> None:
    inv = project / "inventories" / "office.py"
    before = sorted(p.relative_to(project) for p in project.rglob("*") if ".llmrack" not in p.parts)
    res = CliRunner().invoke(app, ["migrate", str(inv), *args, "--yes", "--project", str(project)])
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output, res.output
    assert sorted(p.relative_to(project) for p in project.rglob("*") if ".llmrack" not in p.parts) == before
