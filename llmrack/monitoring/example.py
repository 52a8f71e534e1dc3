"""Generated inventories for rendering and checking the monitoring files of a tier without a real inventory."""

from __future__ import annotations

from pathlib import Path

from llmrack.config import HostSpec, Inventory, load_tier


def example_inventory(tier: str, *, nodes: int = 1, project_dir: Path | None = None) -> Inventory:
    """One host with every role, or a gateway+monitoring host and ``nodes - 1`` inference-only nodes."""
    profile = load_tier(tier, project_dir)
    if nodes == 1:
        hosts = [HostSpec(name="node1", address="127.0.0.1" if tier == "sandbox" else "10.0.0.11",
                          roles=["inference", "gateway", "monitoring"], tier=tier, profile=profile)]
    else:
        hosts = [HostSpec(name="node1", address="10.0.0.11", roles=["inference", "gateway", "monitoring"],
                          tier=tier, profile=profile)]
        hosts += [HostSpec(name=f"node{i}", address=f"10.0.0.{10 + i}", roles=["inference"], tier=tier,
                           profile=profile) for i in range(2, nodes + 1)]
    return Inventory(path=f"<example {tier}>", project_dir=str(project_dir or "."), hosts=hosts)
