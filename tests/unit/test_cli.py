"""The CLI's contract: exit codes and the exact first line of each error message (CliRunner, no hosts)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmrack.cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_plan_standard_prints_sizing_and_vllm_args():
    r = run("plan", "--tier", "standard")
    assert r.exit_code == 0, r.output
    assert "--tensor-parallel-size 4" in r.output
    assert "NCCL_P2P_DISABLE=1" in r.output  # multi-4090 tensor parallel


def test_plan_json_is_machine_readable():
    r = run("plan", "--tier", "entry", "--json")
    assert r.exit_code == 0
    data = json.loads(r.output)
    (p,) = data["plans"]
    assert p["model"] == "Qwen/Qwen2.5-14B-Instruct" and p["fits"] is True
    assert p["tensor_parallel_size"] == 2 and p["max_model_len"] == 16384


def test_plan_with_other_gpus():
    r = run("plan", "--tier", "entry", "--model", "llama-3.1-8b", "--gpus", "1", "--gpu-mem-gib", "80", "--json")
    assert r.exit_code == 0, r.output
    p = json.loads(r.output)["plans"][0]
    assert p["tensor_parallel_size"] == 1 and "NCCL_P2P_DISABLE" not in p["env"]


def test_plan_takes_a_hugging_face_id_as_help_says():
    r = run("plan", "--model", "Qwen/Qwen2.5-72B-Instruct-AWQ", "--json")
    assert r.exit_code == 0, r.output
    (p,) = json.loads(r.output)["plans"]
    assert p["model"] == "Qwen/Qwen2.5-72B-Instruct-AWQ" and p["served_name"] == "qwen2.5-72b-instruct-awq"
    assert p["weight_format"] == "awq" and p["fits"] is True


@pytest.mark.parametrize("tier", ["entry", "standard"])
def test_plan_table_shows_the_served_weight_format(tier):
    """An AWQ checkpoint is served as AWQ whatever the tier's first model is quantized as."""
    r = run("plan", "--tier", tier, "--model", "Qwen/Qwen2.5-7B-Instruct-AWQ", "--gpus", "1")
    assert r.exit_code == 0, r.output
    row = next(line for line in r.output.splitlines() if "quantization" in line)
    assert "awq" in row and "bf16" not in row
    plain = run("plan", "--tier", "standard", "--model", "Qwen/Qwen2.5-7B-Instruct", "--gpus", "1")
    row = next(line for line in plain.output.splitlines() if "quantization" in line)
    assert "bf16" in row and "awq" not in row


def test_plan_not_fitting_exits_2_and_says_what_would():
    r = run("plan", "--tier", "entry", "--model", "qwen2.5-72b")
    assert r.exit_code == 2
    assert "does not fit" in r.output and "would fit" in r.output


@pytest.mark.parametrize(
    ("args", "first_line"),
    [
        (["plan", "--tier", "nope"], "error: tiers: tier: unknown tier 'nope'"),
        (["plan", "--tier", "entry", "--model", "no-such-model"], "error: command line: --model: unknown model"),
        (["plan", "--tier", "entry", "--quantization", "int3"], "error: command line: overrides.stack.models.0"),
        (["validate", "inventories/nope.py"], "error: inventories/nope.py: no such inventory file"),
        (["verify", "--only", "speed", "inventories/office.py"], "error: --only: unknown category 'speed'"),
    ],
)
def test_bad_input_exits_2_with_one_message(args, first_line, monkeypatch):
    monkeypatch.chdir(ROOT)
    r = run(*args)
    assert r.exit_code == 2, r.output
    line = r.output.strip().splitlines()[0]
    assert line.startswith(first_line.split(": ", 1)[0] + ":"), line
    assert first_line.split(": ", 2)[-1].split(" '")[0] in r.output.replace("\n", " ")
    assert "Traceback" not in r.output


def test_validate_examples(monkeypatch):
    monkeypatch.chdir(ROOT)
    for inv in ("inventories/office.py", "inventories/cluster.py"):
        r = run("validate", inv)
        assert r.exit_code == 0, r.output
        assert "valid" in r.output


def test_validate_model_that_does_not_fit(tmp_path: Path):
    shutil.copytree(ROOT / "tiers", tmp_path / "tiers")
    inv = tmp_path / "site.py"
    inv.write_text('s = [("gpu-1", {"tier": "entry", "overrides": {"stack": {"models": '
                   '[{"name": "Qwen/Qwen2.5-72B-Instruct", "served_name": "q72", "tensor_parallel_size": 2}]}}})]\n')
    r = run("validate", str(inv))
    assert r.exit_code == 2
    assert f"{inv} (gpu-1, tier entry): gpu-1.stack.models.0:" in r.output.replace("\n", " ")
    assert "quantize" in r.output


def test_validate_tp_larger_than_gpus(tmp_path: Path):
    shutil.copytree(ROOT / "tiers", tmp_path / "tiers")
    inv = tmp_path / "site.py"
    inv.write_text('s = [("gpu-1", {"tier": "standard", "overrides": {"hardware": {"gpu": {"count": 2}}}})]\n')
    r = run("validate", str(inv))
    assert r.exit_code == 2
    assert "tensor_parallel_size: 4 is larger than the 2 GPU(s)" in r.output.replace("\n", " ")


def test_deploy_unknown_deploy_name(monkeypatch):
    monkeypatch.chdir(ROOT)
    r = run("deploy", "inventories/office.py", "nope")
    assert r.exit_code == 2
    assert "no deploy 'nope'" in r.output


def test_bench_missing_key_file_exits_2(tmp_path: Path):
    r = run("bench", "--url", "http://127.0.0.1:9/v1", "--model", "m", "--api-key-file", str(tmp_path / "nope"))
    assert r.exit_code == 2 and "--api-key-file: no such file" in r.output


def test_usage_errors_exit_2():
    assert run("plan", "--gpus", "-1").exit_code == 2
    assert run("bench", "--url", "http://127.0.0.1:9/v1", "--model", "m", "--concurrency", "a,b").exit_code == 2
