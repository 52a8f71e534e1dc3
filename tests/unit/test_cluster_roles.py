"""A cluster inventory: role rules, the sandbox's role layouts, and what each host's firewall, gateway and
Prometheus get from the other hosts (expected values written here from the README's port table)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from llmrack.cluster import check_roles, sandbox_roles
from llmrack.config import HostSpec, Inventory, load_tier
from llmrack.errors import LlmrackError

PROJECT = Path(__file__).resolve().parents[2]
LLMRACK = str(Path(sys.executable).parent / "llmrack")


@pytest.fixture(autouse=True)
def _secrets_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMRACK_SECRETS_DIR", str(tmp_path / "secrets"))  # the gateway's keys are generated


def _host(name: str, address: str, *roles: str, **overrides) -> HostSpec:
    return HostSpec(name=name, address=address, roles=list(roles), tier="sandbox",
                    profile=load_tier("sandbox", PROJECT, overrides or None))


def cluster() -> list[HostSpec]:
    return [_host("gw", "10.0.0.1", "gateway"), _host("n1", "10.0.0.2", "inference"),
            _host("n2", "10.0.0.3", "inference"), _host("mon", "10.0.0.4", "monitoring")]


# ------------------------------------------------------------------------------------------------ role rules


def test_a_cluster_of_split_roles_passes() -> None:
    check_roles(cluster())
    check_roles([_host("one", "10.0.0.9", "inference", "gateway", "monitoring")])


def test_inference_without_a_gateway_is_refused_naming_the_hosts() -> None:
    with pytest.raises(LlmrackError) as exc:
        check_roles([_host("n1", "10.0.0.2", "inference"), _host("mon", "10.0.0.4", "monitoring")], source="inv.py")
    assert str(exc.value).startswith("inv.py: roles: inference host(s) n1 but no host has the gateway role")


def test_a_gateway_without_inference_is_refused() -> None:
    with pytest.raises(LlmrackError, match="no host has the inference role"):
        check_roles([_host("gw", "10.0.0.1", "gateway", "monitoring")])


def test_two_gateways_need_one_virtual_address() -> None:
    two = [_host("gw1", "10.0.0.1", "gateway"), _host("gw2", "10.0.0.5", "gateway"), *cluster()[1:]]
    with pytest.raises(LlmrackError) as exc:
        check_roles(two, source="inv.py")
    assert exc.value.field == "stack.gateway.virtual_address" and "2 gateway hosts (gw1, gw2)" in exc.value.message
    vip = {"stack": {"gateway": {"virtual_address": "10.0.0.100"}}}
    other = {"stack": {"gateway": {"virtual_address": "10.0.0.101"}}}
    with pytest.raises(LlmrackError):
        check_roles([_host("gw1", "10.0.0.1", "gateway", **vip), _host("gw2", "10.0.0.5", "gateway", **other),
                     *cluster()[1:]])
    check_roles([_host("gw1", "10.0.0.1", "gateway", **vip), _host("gw2", "10.0.0.5", "gateway", **vip),
                 *cluster()[1:]])


def test_two_monitoring_hosts_are_refused() -> None:
    with pytest.raises(LlmrackError, match="2 monitoring hosts"):
        check_roles([*cluster(), _host("mon2", "10.0.0.6", "monitoring")])


def test_validate_exits_2_with_one_message_for_a_role_no_host_has(tmp_path: Path) -> None:
    inv = tmp_path / "inventories" / "nogw.py"
    inv.parent.mkdir()
    inv.write_text('nodes = [("n1", {"tier": "sandbox", "ssh_hostname": "10.0.0.2", "roles": ["inference"]}),\n'
                   '         ("mon", {"tier": "sandbox", "ssh_hostname": "10.0.0.4", "roles": ["monitoring"]})]\n')
    done = subprocess.run([LLMRACK, "validate", str(inv), "--project", str(PROJECT)],
                          capture_output=True, text=True, cwd=PROJECT)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"{inv}: roles: inference host(s) n1 but no host has the gateway role" in " ".join(done.stderr.split())


# ------------------------------------------------------------------------------------------ sandbox layouts

NAMES = ["host1", "host2", "host3", "host4"]


def test_sandbox_layouts() -> None:
    assert sandbox_roles("", NAMES[:1]) == {"host1": ["inference", "gateway", "monitoring"]}
    assert sandbox_roles("cluster", NAMES) == {"host1": ["gateway"], "host2": ["inference"],
                                               "host3": ["inference"], "host4": ["monitoring"]}
    assert sandbox_roles("host1=gateway;host2=inference;host4=monitoring", NAMES) == {
        "host1": ["gateway"], "host2": ["inference"], "host4": ["monitoring"]}  # host3 left out: removed
    assert sandbox_roles("host1=gateway,monitoring; host2,host3=inference", NAMES) == {
        "host1": ["gateway", "monitoring"], "host2": ["inference"], "host3": ["inference"]}


@pytest.mark.parametrize(("layout", "message"), [
    ("cluster", "needs at least 3 sandbox hosts"),
    ("host1=router", "unknown role 'router'"),
    ("host9=gateway", "no sandbox host 'host9'"),
    ("host1:gateway", "bad entry 'host1:gateway'"),
])
def test_bad_sandbox_layouts_are_refused(layout: str, message: str) -> None:
    names = NAMES[:2] if layout == "cluster" else NAMES
    with pytest.raises(LlmrackError, match=message):
        sandbox_roles(layout, names)


def test_sandbox_up_refuses_a_bad_layout_before_starting_anything() -> None:
    done = subprocess.run([LLMRACK, "sandbox", "up", "--hosts", "2", "--roles",
                           "cluster", "--state-dir", "/nonexistent/never"], capture_output=True, text=True)
    assert done.returncode == 2 and "needs at least 3 sandbox hosts" in done.stderr
    assert "Traceback" not in done.stderr and not Path("/nonexistent/never").exists()


# ------------------------------------------------------------------------------------ firewall of each host


def _openings(name: str) -> set:
    from llmrack.exposure import openings

    hosts = cluster()
    spec = next(h for h in hosts if h.name == name)
    return {(o.what, o.ports, o.sources) for o in openings(spec, hosts)}


def test_firewall_opens_each_port_only_to_the_host_that_needs_it() -> None:
    ssh = ("SSH", (22,), None)
    everyone = ("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4")

    def iperf3(me: str) -> tuple:  # the acceptance network test, from the other hosts
        return ("iperf3, for the acceptance network test from the other hosts", (5201,),
                tuple(a for a in everyone if a != me))

    assert _openings("gw") == {ssh, ("gateway", (8443,), None), iperf3("10.0.0.1"),
                               ("exporters, for Prometheus", (9100, 9113, 9187), ("10.0.0.4",))}
    for node, addr in (("n1", "10.0.0.2"), ("n2", "10.0.0.3")):  # the model to the gateway and Prometheus
        assert _openings(node) == {ssh, ("models, for the gateway and Prometheus", (18000,), ("10.0.0.1", "10.0.0.4")),
                                   ("exporters, for Prometheus", (9100,), ("10.0.0.4",)), iperf3(addr)}
    assert _openings("mon") == {ssh, iperf3("10.0.0.4")}  # its UIs are on loopback (monitoring.bind_address)


# ----------------------------------------------------------------------- gateway upstreams and scrape targets


def test_gateway_balances_over_every_inference_node(tmp_path: Path) -> None:
    from llmrack.stack.hostplan import host_stack
    from llmrack.stack.nginx import render_nginx_conf

    hosts = cluster()
    hs = host_stack(hosts[0], hosts, PROJECT)
    conf = render_nginx_conf(hs.context)
    block = conf[conf.index("upstream vllm_all {"):]
    block = block[:block.index("}")]
    assert "least_conn;" in block
    assert "server 10.0.0.2:18000 max_fails=3 fail_timeout=30s;" in block
    assert "server 10.0.0.3:18000 max_fails=3 fail_timeout=30s;" in block
    assert "proxy_next_upstream error timeout" in conf


def _targets(hosts: list[HostSpec]) -> dict[str, set[tuple[str, str]]]:
    from llmrack.monitoring.prometheus import prometheus_config

    mon = next(h for h in hosts if h.has_role("monitoring"))
    cfg = prometheus_config(Inventory(path="inv.py", project_dir=str(PROJECT), hosts=hosts), this_host=mon)
    return {job["job_name"]: {(t, c["labels"]["host"]) for c in job["static_configs"] for t in c["targets"]}
            for job in cfg["scrape_configs"]}


def test_prometheus_scrapes_every_exporter_of_every_node() -> None:
    jobs = _targets(cluster())
    assert jobs["node"] == {("10.0.0.1:9100", "gw"), ("10.0.0.2:9100", "n1"), ("10.0.0.3:9100", "n2"),
                            ("10.0.0.4:9100", "mon")}
    assert jobs["vllm"] == {("10.0.0.2:18000", "n1"), ("10.0.0.3:18000", "n2")}
    assert jobs["nginx"] == {("10.0.0.1:9113", "gw")}
    assert jobs["postgres"] == {("10.0.0.1:9187", "gw")}  # the vector store's exporter follows its host


def test_adding_a_node_changes_only_the_gateway_upstreams_and_the_scrape_targets() -> None:
    from llmrack.monitoring.render import host_files
    from llmrack.monitoring.secrets import MonitoringSecrets
    from llmrack.stack.hostplan import host_stack

    three, four = cluster(), [*cluster(), _host("n3", "10.0.0.7", "inference")]
    assert ("10.0.0.7:18000", "n3") in _targets(four)["vllm"]
    secrets = MonitoringSecrets(smtp_password="x", grafana_admin_password="y" * 16)

    def files(hosts: list[HostSpec], name: str) -> dict[str, str]:
        inv = Inventory(path="inv.py", project_dir=str(PROJECT), hosts=hosts)
        spec = next(h for h in hosts if h.name == name)
        return {f.path: f.content for f in host_files(inv, spec, secrets)}

    for name in ("gw", "n1", "n2"):  # exporters and compose projects of the other hosts stay as they were
        assert files(three, name) == files(four, name)
    before, after = files(three, "mon"), files(four, "mon")
    assert [p for p in before if before[p] != after[p]] == ["prometheus/prometheus.yml"]
    # an inference node's compose project is built from its own spec only (build_compose takes no inventory)
    gw3, gw4 = host_stack(three[0], three, PROJECT), host_stack(four[0], four, PROJECT)
    assert gw3.compose == gw4.compose and gw3.context != gw4.context


def test_servers_that_each_run_every_role_need_no_virtual_address() -> None:
    """Two all-in-one servers in one inventory are two services: neither rule about split roles applies."""
    whole = ("inference", "gateway", "monitoring")
    check_roles([_host("a", "10.0.0.1", *whole), _host("b", "10.0.0.2", *whole)])
    with pytest.raises(LlmrackError, match="2 gateway hosts"):  # a split gateway beside them still counts
        check_roles([_host("a", "10.0.0.1", *whole), _host("gw", "10.0.0.3", "gateway"),
                     _host("gw2", "10.0.0.4", "gateway"), _host("n", "10.0.0.5", "inference")])
