"""The rolling change's plan and its pieces that need no host: which layouts can roll (others exit 2), the drain
edit run by the real sed on a rendered gateway configuration, and the curl config that keeps the backend key off
command lines, read by the real curl against a local server."""

from __future__ import annotations

import http.server
import json
import subprocess
import threading
from pathlib import Path

import pytest

from llmrack.config import HostSpec, Inventory, load_tier
from llmrack.errors import LlmrackError
from llmrack.rollout import curl_config, drain_script, node_servers, plan_rollout

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _secrets_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMRACK_SECRETS_DIR", str(tmp_path / "secrets"))


def _host(name: str, address: str, *roles: str) -> HostSpec:
    return HostSpec(name=name, address=address, roles=list(roles), tier="sandbox",
                    profile=load_tier("sandbox", PROJECT))


def _inv(*hosts: HostSpec) -> Inventory:
    return Inventory(path="inv.py", project_dir=str(PROJECT), hosts=list(hosts))


GW, N1, N2, MON = (_host("gw", "10.0.0.1", "gateway"), _host("n1", "10.0.0.2", "inference"),
                   _host("n2", "10.0.0.3", "inference"), _host("mon", "10.0.0.4", "monitoring"))


def test_a_cluster_rolls_its_inference_hosts_in_order_then_the_others() -> None:
    plan = plan_rollout(_inv(GW, N1, N2, MON))
    assert [n.name for n in plan.nodes] == ["n1", "n2"]
    assert [g.name for g in plan.gateways] == ["gw"] and [o.name for o in plan.others] == ["gw", "mon"]
    text = "\n".join(plan.lines())
    assert "n1: drain at the gateway, converge (deploys/full_stack.py --limit n1)" in text
    assert "then converge gw, mon" in text


@pytest.mark.parametrize("hosts,message", [
    ((_host("one", "10.0.0.9", "gateway", "inference", "monitoring"),), "at least two inference hosts"),
    ((GW, N1, MON), r"found 1\)"),
    ((N1, N2), "needs a gateway host"),
])
def test_a_layout_with_nothing_to_roll_over_is_bad_input(hosts, message) -> None:
    with pytest.raises(LlmrackError, match=message) as exc:
        plan_rollout(_inv(*hosts))
    assert str(exc.value).startswith("inv.py: roles:")


def test_drain_marks_only_the_nodes_servers_down(tmp_path: Path) -> None:
    servers = node_servers(N1)
    assert servers == ["10.0.0.2:18000"]
    conf = tmp_path / "nginx.conf"
    body = ("    upstream vllm_all {\n        least_conn;\n"
            "        server 10.0.0.2:18000 max_fails=3 fail_timeout=30s;\n"
            "        server 10.0.0.20:18000 max_fails=3 fail_timeout=30s;\n"
            "        server 10.0.0.3:18000 max_fails=3 fail_timeout=30s;\n    }\n")
    conf.write_text(body)
    subprocess.run(f"sed -i {drain_script(servers)} {conf}", shell=True, check=True)
    got = conf.read_text().splitlines()
    assert got[2] == "        server 10.0.0.2:18000 down max_fails=3 fail_timeout=30s;"
    assert got[3:5] == body.splitlines()[3:5]  # 10.0.0.20 is not 10.0.0.2; n2 untouched


def test_the_curl_config_carries_key_and_body_on_stdin() -> None:
    seen: dict = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            seen["auth"] = self.headers.get("Authorization")
            seen["body"] = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"ok": true}')

        def log_message(self, *args):
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.handle_request, daemon=True).start()
    body = {"messages": [{"content": 'say "hi" \\ bye'}]}
    cfg = curl_config(f"http://127.0.0.1:{srv.server_port}/v1/x", 'k"ey\\1', body)
    done = subprocess.run(["curl", "--config", "-"], input=cfg, capture_output=True, text=True, timeout=30)
    srv.server_close()
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"ok": True}
    assert seen == {"auth": 'Bearer k"ey\\1', "body": body}
