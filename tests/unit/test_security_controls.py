"""Container security options of the stack and the judges of the security controls (on recorded documents)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from llmrack.config import load_tier
from llmrack.errors import LlmrackError
from llmrack.stack import compose as c
from llmrack.stack.security import secure
from llmrack.stack.services import gateway_service
from llmrack.verify import REGISTRY
from llmrack.verify.security.controls import CONTROLS
from llmrack.verify.security.probes import container_violation, load_waivers

PROJECT = Path(__file__).resolve().parents[2]


def sandbox_compose() -> c.ComposeFile:
    stack = load_tier("sandbox", PROJECT).stack
    plans = [c.ServedModelPlan(model=m, vllm_args=["--max-model-len", "512"]) for m in stack.models]
    return c.build_compose(stack, plans=plans, gpu_count=0)


def test_every_stack_service_is_locked_down() -> None:
    compose = sandbox_compose()
    assert set(compose.services) >= {"gateway", "postgres", "embeddings"}
    for name, svc in compose.services.items():
        assert svc.cap_drop == ["ALL"], name
        assert "no-new-privileges:true" in (svc.security_opt or []), name
        assert svc.pids_limit and svc.pids_limit > 0, name
        assert svc.healthcheck is not None, name
        assert not [v for v in svc.volumes or [] if "docker.sock" in v], name
    gw = compose.services["gateway"]
    assert gw.cap_add == ["CHOWN", "NET_BIND_SERVICE", "SETGID", "SETUID"] and gw.read_only
    assert compose.services["embeddings"].cap_add is None and compose.services["embeddings"].read_only


def test_memory_and_pids_limits_come_from_the_tier() -> None:
    compose = sandbox_compose()
    vllm = next(s for s in compose.services.values() if (s.labels or {}).get("org.llmrack.role") == "inference")
    assert (vllm.mem_limit, vllm.pids_limit) == ("5g", 1024)  # tiers/sandbox.yaml
    assert compose.services["gateway"].mem_limit == "1g"  # the default


def test_a_docker_socket_mount_is_refused() -> None:
    stack = load_tier("sandbox", PROJECT).stack
    svc = gateway_service(stack).model_copy(update={"volumes": ["/var/run/docker.sock:/var/run/docker.sock"]})
    with pytest.raises(LlmrackError, match="Docker socket"):
        secure("gateway", svc, stack)


def test_controls_have_unique_ids_refs_and_are_registered() -> None:
    ids = [x.id for x in CONTROLS]
    assert len(ids) == len(set(ids)) and len(ids) >= 200
    assert all(x.ref for x in CONTROLS)
    assert all(REGISTRY[i].category == "security" for i in ids)


INSPECT = {
    "Name": "/llmrack-gateway-1",
    "Config": {"User": "", "Healthcheck": {"Test": ["CMD", "true"]},
               "Labels": {"com.docker.compose.service": "gateway"}},
    "HostConfig": {"CapDrop": ["ALL"], "SecurityOpt": ["no-new-privileges:true"], "Privileged": False,
                   "PidsLimit": 1024, "Memory": 1 << 30, "ReadonlyRootfs": True, "IpcMode": "private",
                   "UTSMode": "", "RestartPolicy": {"Name": "unless-stopped"}},
    "Mounts": [{"Source": "/opt/llmrack/stack/gateway", "RW": False}],
}


@pytest.mark.parametrize(("prop", "change", "why"), [
    ("cap_drop_all", {"HostConfig": {"CapDrop": None}}, "CapDrop"),
    ("no_new_privileges", {"HostConfig": {"SecurityOpt": []}}, "NNP"),
    ("not_privileged", {"HostConfig": {"Privileged": True}}, "privileged"),
    ("pids_limit", {"HostConfig": {"PidsLimit": 0}}, "pids"),
    ("memory_limit", {"HostConfig": {"Memory": 0}}, "memory"),
    ("read_only_rootfs", {"HostConfig": {"ReadonlyRootfs": False}}, "writable"),
    ("healthcheck", {"Config": {"Healthcheck": {"Test": ["NONE"]}}}, "healthcheck"),
    ("no_docker_socket", {"Mounts": [{"Source": "/var/run/docker.sock", "RW": True}]}, "docker.sock"),
    ("no_host_ipc", {"HostConfig": {"IpcMode": "host"}}, "IPC"),
    ("no_sensitive_mounts", {"Mounts": [{"Source": "/etc", "RW": True}]}, "/etc"),
])
def test_container_judge_passes_then_fails(prop: str, change: dict, why: str) -> None:
    assert container_violation(prop, INSPECT) is None
    doc = {k: (dict(v) if isinstance(v, dict) else v) for k, v in INSPECT.items()}
    for key, value in change.items():
        doc[key] = {**doc[key], **value} if isinstance(value, dict) else value
    assert why in (container_violation(prop, doc) or "")


def test_root_user_is_a_violation_unless_waived(tmp_path: Path) -> None:
    assert container_violation("non_root", INSPECT) == "user root"
    waivers = load_waivers(tmp_path)
    assert "sec.container.non_root:gateway" in waivers
    (tmp_path / "security-waivers.yaml").write_text(yaml.safe_dump([{"id": "sec.kernel.sysrq", "reason": "kdump"}]))
    assert load_waivers(tmp_path)["sec.kernel.sysrq"] == "kdump"
    (tmp_path / "security-waivers.yaml").write_text(yaml.safe_dump([{"id": "sec.kernel.sysrq"}]))
    with pytest.raises(ValueError, match="reason"):
        load_waivers(tmp_path)


def _judge(cid: str, answers: dict[str, tuple[int, str]]) -> str:
    from test_verify_checks import ctx_for

    from llmrack.verify.security.probes import JUDGES

    control = next(x for x in CONTROLS if x.id == cid)
    return JUDGES[control.family](ctx_for(answers), control).status


@pytest.mark.parametrize(("shadow", "status"), [
    ("alice:$y$j9T$abc:20000:1:365:7:::\ncarol:!:20000:0:99999:7:::\n", "pass"),  # carol: locked, no password
    ("alice:$y$j9T$abc:20000:1:99999:7:::\n", "fail"),
    ("alice:$y$j9T$abc:20000:1::7:::\n", "fail"),  # no maximum at all
])
def test_password_aging_judge_reads_each_account_with_a_password(shadow: str, status: str) -> None:
    assert _judge("sec.account.pass_max_days", {r"getent passwd": (0, shadow + "@rc=0")}) == status


def test_present_package_judge_fails_when_the_package_is_gone() -> None:
    dpkg = "usbguard installed\naide installed\n"
    assert _judge("sec.pkg.usbguard_present", {r"dpkg-query": (0, dpkg + "@rc=0")}) == "pass"
    assert _judge("sec.pkg.usbguard_present", {r"dpkg-query": (0, "aide installed\n@rc=0")}) == "fail"


def test_monitoring_containers_have_healthchecks_and_read_only_roots() -> None:
    from llmrack.monitoring.example import example_inventory
    from llmrack.monitoring.render import compose_model

    inv = example_inventory("standard")
    services = compose_model(inv, inv.hosts[0]).dump()["services"]
    waived = load_waivers(None)
    for name, svc in services.items():
        if name == "dcgm-exporter":
            continue
        test = (svc.get("healthcheck") or {}).get("test")
        assert test or f"sec.container.healthcheck:{name}" in waived, name
        assert svc.get("read_only") or f"sec.container.read_only_rootfs:{name}" in waived, name
        if test:  # a probe the images can run: bash's /dev/tcp to the port the service listens on
            assert test[:3] == ["CMD", "bash", "-c"] and "/dev/tcp/" in test[3], (name, test)
    assert services["prometheus"]["read_only"] and services["alertmanager"]["read_only"]
    assert "/-/healthy" in services["prometheus"]["healthcheck"]["test"][3]
