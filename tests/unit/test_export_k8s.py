"""`llmrack export k8s`: golden files per tier, every file checked against the schema of what reads it, bad input.

Goldens live in tests/unit/golden/k8s/<case>/; regenerate them with `python scripts/regen_goldens.py` after an
intended change and read the diff (the tests only compare, never write). The alert rules and dashboards are not
goldens here: they must equal what the monitoring role installs on hosts, whatever that is.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from llmrack.cli import app
from llmrack.config import load_inventory, load_tier
from llmrack.errors import LlmrackError
from llmrack.export import k8s, validate
from llmrack.models import plan_for
from llmrack.monitoring.grafana import dashboards_for
from llmrack.monitoring.rules import alert_rules

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden" / "k8s"
TIERS = ["entry", "standard", "high-performance", "sandbox"]
NOT_GOLDEN = {"prometheus-rules.yaml", "grafana-dashboards.yaml"}
runner = CliRunner()


def tier_export(tier: str) -> k8s.Export:
    return k8s.build(profile=load_tier(tier, ROOT), source=f"tiers/{tier}.yaml", project_dir=ROOT)


def cluster_export() -> k8s.Export:
    inv = load_inventory(ROOT / "inventories" / "cluster.py", ROOT)
    return k8s.build(inv, source="inventories/cluster.py", project_dir=ROOT)


CASES = {**{t: (lambda t=t: tier_export(t)) for t in TIERS}, "cluster": cluster_export}


def golden_files() -> dict[Path, str]:
    """What the goldens should hold now (scripts/regen_goldens.py writes it; the tests compare with it)."""
    return {GOLDEN / case / name: text for case in sorted(CASES)
            for name, text in k8s.render(CASES[case]()).items() if name not in NOT_GOLDEN}


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str) -> None:
    files = k8s.render(CASES[case]())
    d = GOLDEN / case
    kept = {p.name for p in d.iterdir()}
    assert kept == set(files) - NOT_GOLDEN, "files differ from the goldens; run python scripts/regen_goldens.py"
    for name in kept:
        assert files[name] == (d / name).read_text(), f"{case}/{name} differs from its golden file"


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_file_validates_against_its_schema(case: str) -> None:
    export = CASES[case]()
    checked = dict(validate.validate_export(export, k8s.K8S_VERSION))
    assert checked["vllm-stack-values.yaml"] == "vllm-stack.values.schema.json"
    kinds = [d["kind"] for docs in export.manifests.values() for d in docs]
    assert len(checked) == len(export.values) + len(kinds)
    assert {"Namespace", "ScaledObject", "PrometheusRule", "ConfigMap"} <= set(kinds)
    for text in k8s.render(export).values():  # what is written parses back
        if not text.startswith("<!--"):
            assert list(yaml.safe_load_all(text))


def test_values_carry_the_planners_sizing() -> None:
    profile = load_tier("standard", ROOT)
    model = profile.stack.models[0]
    plan = plan_for(profile, model, project_dir=ROOT).to_dict()
    spec = tier_export("standard").values["vllm-stack-values.yaml"]["servingEngineSpec"]["modelSpec"][0]
    cfg = spec["vllmConfig"]
    assert cfg["tensorParallelSize"] == plan["tensor_parallel_size"] == 4
    assert cfg["maxModelLen"] == plan["max_model_len"] == 32768
    assert cfg["gpuMemoryUtilization"] == profile.stack.vllm.gpu_memory_utilization
    assert spec["requestGPU"] == 4 and spec["modelURL"] == model.name
    assert cfg["extraArgs"][-2:] == ["--served-model-name", model.public_name]
    # 4 of 4 GPUs: the whole host's 64 CPUs and 512 GiB, 80 % requested
    assert (spec["requestCPU"], spec["requestMemory"], spec["limitMemory"]) == (51, "410Gi", "512Gi")


def test_api_key_is_a_secret_reference_never_a_value() -> None:
    files = k8s.render(tier_export("standard"))
    engine = yaml.safe_load(files["vllm-stack-values.yaml"])["servingEngineSpec"]
    assert engine["vllmApiKey"] == {"secretName": k8s.API_KEY_SECRET, "secretKey": "api-key"}
    assert not any("sk-llmrack-" in text for text in files.values())
    qdrant = yaml.safe_load_all(files["vector-store.yaml"])
    env = next(qdrant)["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "QDRANT__SERVICE__API_KEY",
            "valueFrom": {"secretKeyRef": {"name": k8s.QDRANT_SECRET, "key": "api-key"}}} in env


def test_inventory_hosts_become_replicas_and_keda_scales_on_the_queue() -> None:
    export = cluster_export()
    (spec,) = export.values["vllm-stack-values.yaml"]["servingEngineSpec"]["modelSpec"]
    assert spec["replicaCount"] == 2  # gpu-01 and gpu-02
    (so,) = export.manifests["keda-scaledobjects.yaml"]
    assert so["spec"]["scaleTargetRef"]["name"] == f"llmrack-{spec['name']}-deployment-vllm"
    assert (so["spec"]["minReplicaCount"], so["spec"]["maxReplicaCount"]) == (2, 4)
    (trigger,) = so["spec"]["triggers"]
    assert trigger["metadata"]["query"] == 'sum(vllm:num_requests_waiting{model_name="qwen2.5-14b"})'
    assert trigger["metadata"]["threshold"] == str(load_tier("entry", ROOT).monitoring.thresholds.requests_waiting)


def test_rules_and_dashboards_are_the_ones_hosts_get() -> None:
    inv = load_inventory(ROOT / "inventories" / "cluster.py", ROOT)
    host = inv.by_role("inference")[0]
    export = cluster_export()
    (rule,) = export.manifests["prometheus-rules.yaml"]
    assert rule["spec"] == alert_rules(host.profile.monitoring, gpu=True)
    boards = {d["metadata"]["name"]: d for d in export.manifests["grafana-dashboards.yaml"]}
    import json

    assert {uid: json.loads(boards[f"grafana-dashboard-{uid}"]["data"][f"{uid}.json"])
            for uid in dashboards_for(host)} == dashboards_for(host)
    assert all(d["metadata"]["labels"]["grafana_dashboard"] == "1" for d in boards.values())


def test_cpu_tier_has_no_gpu_operator_and_asks_no_gpu() -> None:
    export = tier_export("sandbox")
    assert "gpu-operator-values.yaml" not in export.values
    engine = export.values["vllm-stack-values.yaml"]["servingEngineSpec"]
    assert "runtimeClassName" not in engine and engine["modelSpec"][0]["requestGPU"] == 0
    (rule,) = export.manifests["prometheus-rules.yaml"]
    assert not any(r["alert"].startswith("Gpu") for g in rule["spec"]["groups"] for r in g["rules"])


# ----------------------------------------------------------------------------- the validators catch faults


def _broken(mutate) -> k8s.Export:
    export = tier_export("standard")
    values, manifests = copy.deepcopy(export.values), copy.deepcopy(export.manifests)
    mutate(values, manifests)
    return k8s.Export(values=values, manifests=manifests, served=export.served, opts=export.opts)


def _spec0(v):
    return v["vllm-stack-values.yaml"]["servingEngineSpec"]["modelSpec"][0]


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda v, m: _spec0(v).update(requestCPU="lots"), "vllm-stack-values.yaml"),
        (lambda v, m: _spec0(v)["vllmConfig"].update(maxModelLength=4096), "vllm-stack-values.yaml"),
        (lambda v, m: v["gpu-operator-values.yaml"]["driver"].update(branch=550), "gpu-operator-values.yaml"),
        (lambda v, m: v["gpu-operator-values.yaml"]["driver"].update(usePrecompiled="yes"),
         "gpu-operator-values.yaml"),
        (lambda v, m: m["keda-scaledobjects.yaml"][0]["spec"].pop("scaleTargetRef"), "keda-scaledobjects.yaml"),
        (lambda v, m: m["keda-scaledobjects.yaml"][0]["spec"].update(minReplicaCount="two"),
         "keda-scaledobjects.yaml"),
        (lambda v, m: m["keda-scaledobjects.yaml"][0]["metadata"].update(labels=["x"]), "keda-scaledobjects.yaml"),
        (lambda v, m: m["prometheus-rules.yaml"][0]["spec"]["groups"][0].pop("name"), "prometheus-rules.yaml"),
        (lambda v, m: m["vector-store.yaml"][0]["spec"].update(replica=1), "vector-store.yaml"),
        (lambda v, m: m["vector-store.yaml"][1]["spec"]["ports"][0].update(port="http"), "vector-store.yaml"),
        (lambda v, m: m["grafana-dashboards.yaml"][0].update(data={"a.json": 1}), "grafana-dashboards.yaml"),
    ],
)
def test_validation_catches_a_broken_file(mutate, where: str) -> None:
    with pytest.raises(LlmrackError) as exc:
        validate.validate_export(_broken(mutate), k8s.K8S_VERSION)
    assert exc.value.source.startswith(where)


# ------------------------------------------------------------------------------------------------- CLI


def _project_with(tmp_path: Path, tier: str, edit) -> Path:
    proj = tmp_path / "proj"
    shutil.copytree(ROOT / "tiers", proj / "tiers")
    data = yaml.safe_load((proj / "tiers" / f"{tier}.yaml").read_text())
    edit(data)
    (proj / "tiers" / f"{tier}.yaml").write_text(yaml.safe_dump(data))
    return proj


def test_cli_writes_then_leaves_files_unchanged(tmp_path: Path) -> None:
    out = tmp_path / "k8s"
    r = runner.invoke(app, ["export", "k8s", "--tier", "standard", "--out", str(out), "--project", str(ROOT)])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == sorted(k8s.render(tier_export("standard")))
    assert "8 file(s) written" in r.output
    r = runner.invoke(app, ["export", "k8s", "--tier", "standard", "--out", str(out), "--project", str(ROOT)])
    assert r.exit_code == 0 and "0 file(s) written, 8 unchanged" in r.output


def test_cli_tier_whose_model_does_not_fit_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    def edit(d):  # a 72B model in bf16 on 2 x 24 GiB
        d["stack"]["models"][0].update(name="Qwen/Qwen2.5-72B-Instruct", quantization="bf16")

    proj = _project_with(tmp_path, "entry", edit)
    out = tmp_path / "k8s"
    r = runner.invoke(app, ["export", "k8s", "--tier", "entry", "--out", str(out), "--project", str(proj)])
    assert r.exit_code == 2
    assert "stack.models.0" in r.output and "does not fit" in r.output
    assert "Traceback" not in r.output and not out.exists()


def test_cli_out_is_a_file_exits_2(tmp_path: Path) -> None:
    f = tmp_path / "values.yaml"
    f.write_text("mine\n")
    r = runner.invoke(app, ["export", "k8s", "--tier", "entry", "--out", str(f), "--project", str(ROOT)])
    assert r.exit_code == 2
    assert " ".join(r.output.split()).startswith(f"error: {f}: --out: is a file, not a directory")
    assert f.read_text() == "mine\n"


def test_cli_never_replaces_a_file_it_did_not_write(tmp_path: Path) -> None:
    out = tmp_path / "k8s"
    out.mkdir()
    (out / "vllm-stack-values.yaml").write_text("servingEngineSpec: {}  # hand-written\n")
    r = runner.invoke(app, ["export", "k8s", "--tier", "entry", "--out", str(out), "--project", str(ROOT)])
    assert r.exit_code == 2 and "was not written by llmrack export" in r.output
    assert [p.name for p in out.iterdir()] == ["vllm-stack-values.yaml"]
    assert (out / "vllm-stack-values.yaml").read_text() == "servingEngineSpec: {}  # hand-written\n"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--tier", "entry", "inventories/cluster.py"], "give an INVENTORY or --tier, not both"),
        ([], "give an INVENTORY or --tier, not both"),
        (["--tier", "nope"], "unknown tier 'nope'"),
        (["--tier", "entry", "--namespace", "Not_A_Name"], "--namespace"),
    ],
)
def test_cli_bad_arguments_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    out = tmp_path / "k8s"
    r = runner.invoke(app, ["export", "k8s", *args, "--out", str(out), "--project", str(ROOT)])
    assert r.exit_code == 2 and needle in r.output and "Traceback" not in r.output
    assert not out.exists()
