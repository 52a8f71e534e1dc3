"""What the monitoring role renders per layout: the compose file of every host, and the monitoring host's
Prometheus configuration and alert rules, compared with golden files.

Goldens live in tests/unit/golden/monitoring/<case>/ (a cluster's per-host compose files as
``<host>.compose.yaml``); regenerate them with `python scripts/regen_goldens.py` after an intended change and
read the diff (the tests only compare, never write).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from llmrack.config import HostSpec, Inventory, load_tier
from llmrack.monitoring.prometheus import RULES_FILE
from llmrack.monitoring.render import host_files
from llmrack.monitoring.secrets import MonitoringSecrets

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden" / "monitoring"
SECRETS = MonitoringSecrets(smtp_password="x" * 24, grafana_admin_password="y" * 24)
KEPT = {"compose.yaml": "compose.yaml", "prometheus/prometheus.yml": "prometheus.yml",
        f"prometheus/{RULES_FILE}": Path(RULES_FILE).name}
WHOLE = ("inference", "gateway", "monitoring")


def _host(name: str, address: str, tier: str, *roles: str) -> HostSpec:
    return HostSpec(name=name, address=address, roles=list(roles), tier=tier, profile=load_tier(tier, ROOT))


def _layout(case: str) -> list[HostSpec]:
    if case == "cluster":  # split roles, as tests/unit/test_cluster_roles.py builds them
        return [_host("gw", "10.0.0.1", "sandbox", "gateway"), _host("n1", "10.0.0.2", "sandbox", "inference"),
                _host("n2", "10.0.0.3", "sandbox", "inference"), _host("mon", "10.0.0.4", "sandbox", "monitoring")]
    return [_host("node1", "10.0.0.5", case, *WHOLE)]


CASES = ["sandbox", "standard", "cluster"]


def rendered(case: str) -> dict[str, str]:
    hosts = _layout(case)
    inv = Inventory(path="inv.py", project_dir=str(ROOT), hosts=hosts)
    out: dict[str, str] = {}
    for host in hosts:
        for f in host_files(inv, host, SECRETS):
            if f.path in KEPT:
                name = KEPT[f.path]
                out[f"{host.name}.{name}" if len(hosts) > 1 and name == "compose.yaml" else name] = f.content
    return out


def golden_files() -> dict[Path, str]:
    """What the goldens should hold now (scripts/regen_goldens.py writes it; the tests compare with it)."""
    return {GOLDEN / case / name: text for case in CASES for name, text in rendered(case).items()}


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    files = rendered(case)
    d = GOLDEN / case
    kept = {p.name for p in d.iterdir()}
    assert kept == set(files), "files differ from the goldens; run python scripts/regen_goldens.py"
    for name in kept:
        assert files[name] == (d / name).read_text(), f"{case}/{name} differs from its golden file"


def test_the_cluster_layout_renders_the_scrapers_only_on_the_monitoring_host() -> None:
    files = rendered("cluster")
    assert {"prometheus.yml", Path(RULES_FILE).name} <= set(files)
    assert "prometheus:" in files["mon.compose.yaml"] and "prometheus:" not in files["n1.compose.yaml"]


def test_monitoring_joins_the_network_the_stack_creates() -> None:
    """The settings layer sits below the stack's layout, so the default is written twice: they must agree."""
    from llmrack.settings.monitoring import MonitoringSettings
    from llmrack.stack.layout import BACKEND_NETWORK

    assert MonitoringSettings().stack_network == BACKEND_NETWORK
