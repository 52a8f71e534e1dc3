"""Secrets read back from a host win over the admin machine's copy; stack drift from running containers."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from llmrack.errors import LlmrackError
from llmrack.facts.stack import ComposeDrift, HostSecretFiles
from llmrack.stack import secrets as sec

TOKEN = "ab" * 24
KEY = "sk-llmrack-" + "cd" * 24


def host_files(**over: str) -> dict[str, str]:
    files = {
        "vllm.env": f"# managed by llmrack\nVLLM_API_KEY={TOKEN}\n",
        "postgres_password": "ef" * 24 + "\n",
        "api_keys.json": json.dumps({"default": KEY}),
    }
    return {**files, **over}


def test_fact_splits_files_and_keeps_names_only_for_present_files() -> None:
    fact = HostSecretFiles()
    cmd = fact.command("/opt/llmrack/stack/secrets", "vllm.env postgres_password")
    assert "cat /opt/llmrack/stack/secrets/vllm.env" in cmd and cmd.endswith("true")
    out = fact.process(["==> vllm.env", "# c", f"VLLM_API_KEY={TOKEN}", "", "==> postgres_password", "x" * 48])
    assert out == {"vllm.env": f"# c\nVLLM_API_KEY={TOKEN}\n", "postgres_password": "x" * 48 + "\n"}


def test_host_values_win_over_a_fresh_admin_copy(tmp_path: Path) -> None:
    fresh = sec.stack_secrets(tmp_path, "node1", ["default", "ci"])  # a new laptop: generated values
    assert fresh.api_keys["default"] != KEY
    found = sec.parse_host_secrets(host_files(), where="node1:/s")
    lines = sec.adopt_host_secrets(tmp_path, "node1", found)
    assert len(lines) == 3 and not any(TOKEN in ln or KEY in ln for ln in lines), "names only, never values"
    after = sec.stack_secrets(tmp_path, "node1", ["default", "ci"])
    assert after.backend_api_key == TOKEN
    assert after.postgres_password == "ef" * 24
    assert after.api_keys["default"] == KEY, "the client's old key is kept"
    assert after.api_keys["ci"] == fresh.api_keys["ci"], "a client the host does not know keeps the admin key"
    assert after.qdrant_api_key == fresh.qdrant_api_key, "nothing on the host: the admin copy stays"
    root = tmp_path / ".llmrack/secrets"
    for f in ["node1/api_keys.json", "node1/postgres_password", "cluster/backend_api_key"]:
        assert stat.S_IMODE((root / f).stat().st_mode) == 0o600, f
    assert sec.adopt_host_secrets(tmp_path, "node1", found) == [], "a second read-back changes nothing"


def test_an_empty_admin_directory_is_filled_from_the_host(tmp_path: Path) -> None:
    found = sec.parse_host_secrets(host_files(), where="node1:/s")
    assert len(sec.adopt_host_secrets(tmp_path, "node1", found)) == 3
    assert sec.stack_secrets(tmp_path, "node1", ["default"]).api_keys == {"default": KEY}


def test_secrets_dir_can_live_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMRACK_SECRETS_DIR", str(tmp_path / "elsewhere"))
    sec.stack_secrets(tmp_path / "project", "node1", ["default"])
    assert (tmp_path / "elsewhere/node1/api_keys.json").is_file()
    assert not (tmp_path / "project/.llmrack").exists()


@pytest.mark.parametrize("name,text", [
    ("vllm.env", "VLLM_API_KEY=short\n"),
    ("vllm.env", "# no key\n"),
    ("postgres_password", "hunter2\n"),
    ("api_keys.json", "{not json"),
    ("api_keys.json", json.dumps({"default": "sk-wrong"})),
])
def test_a_malformed_host_secret_stops_the_deploy_naming_the_file(name: str, text: str) -> None:
    with pytest.raises(LlmrackError) as exc:
        sec.parse_host_secrets(host_files(**{name: text}), where="node1:/opt/llmrack/stack/secrets")
    assert str(exc.value).startswith(f"node1:/opt/llmrack/stack/secrets/{name}: ")


def test_drift_lists_services_compose_would_recreate_or_start() -> None:
    fact = ComposeDrift()
    out = ["gateway Recreate", "gateway Recreated", "vllm-0 Running", "postgres Running", "embeddings Starting"]
    assert fact.process(out) == ["embeddings", "gateway"]
    assert fact.process(["vllm-0 Running", "postgres Running"]) == []
    assert fact.process(["vllm-0 Creating", "vllm-0 Created"]) == [], "nothing runs: a start, not a reload"
    cmd = fact.command("/opt/llmrack/stack", "llmrack")
    assert "--dry-run up" in cmd and "--pull never" in cmd
