"""``llmrack rotate-secrets`` on the admin machine: the plan and its bad input (exit 2, nothing written), the
retired keys' grace period and the gateway's key map, and the SCRAM verifier ``ALTER ROLE`` is given (checked
against RFC 7677's worked example, not against our own arithmetic)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmrack import retired_keys as rk
from llmrack import rotate
from llmrack import rotate_host as rh
from llmrack.cli import app
from llmrack.config import load_inventory
from llmrack.errors import LlmrackError
from llmrack.secrets import API_KEYS, new_api_key, write_private
from llmrack.stack.nginx import render_api_keys_map

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The repository's tiers; node1 serves with pgvector (sandbox tier), node2 is inference only, node3 uses
    Qdrant (entry tier); node1 and node3 were deployed from here (their keys and password are on this machine)."""
    monkeypatch.delenv("LLMRACK_SECRETS_DIR", raising=False)
    shutil.copytree(REPO / "tiers", tmp_path / "tiers")
    (tmp_path / "inventories").mkdir()
    (tmp_path / "inventories" / "office.py").write_text(
        'office = [\n    ("node1", {"tier": "sandbox", "address": "10.0.0.5"}),\n'
        '    ("node2", {"tier": "sandbox", "address": "10.0.0.6", "roles": ["inference"]}),\n'
        '    ("node3", {"tier": "entry", "address": "10.0.0.7"}),\n]\n')
    for host, clients in (("node1", ["default", "tests"]), ("node3", ["default"])):
        d = tmp_path / ".llmrack" / "secrets" / host
        write_private(d / API_KEYS, json.dumps({c: new_api_key() for c in clients}))
        write_private(d / "postgres_password", "ab" * 16 + "\n")
    return tmp_path


def inventory(project: Path):
    return load_inventory(project / "inventories" / "office.py", project)


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_plan_rotates_both_by_default_and_names_paths_and_times_never_a_key(project: Path) -> None:
    plan = rotate.plan_rotation(inventory(project), "node1", api_keys=False, postgres=False, grace_hours=6, now=NOW)
    assert plan.clients == ["default", "tests"] and plan.postgres
    assert plan.expires == NOW + timedelta(hours=6)
    text = "\n".join(plan.lines())
    assert "accepted until 2026-12-03T15:00:00Z (6 h)" in text and "ALTER ROLE" in text
    assert str(plan.keys_path) in text and "sk-llmrack-" not in text and "ab" * 16 not in text
    only = rotate.plan_rotation(inventory(project), "node1", api_keys=True, postgres=False, clients=["tests"],
                                grace_hours=0, now=NOW)
    assert only.clients == ["tests"] and not only.postgres and "stop now" in "\n".join(only.lines())
    qdrant = rotate.plan_rotation(inventory(project), "node3", api_keys=False, postgres=False, now=NOW)
    assert not qdrant.postgres and "no postgres password: node3's vector store is qdrant" in qdrant.lines()[1]


@pytest.mark.parametrize(("argv", "message"), [
    (["--host", "nope"], "no host 'nope' in the inventory"),
    (["--host", "node2"], "node2 has no gateway role"),
    (["--host", "node1", "--client", "bob"], "no client 'bob' on node1"),
    (["--host", "node1", "--grace-hours", "9999"], "--grace-hours"),
    (["--host", "node1", "--postgres", "--client", "tests"], "give --api-keys too"),
    (["--host", "node3", "--postgres"], "node3's vector store is qdrant"),
])
def test_bad_input_exits_2_naming_the_field_and_changes_nothing(project: Path, argv: list[str],
                                                                message: str) -> None:
    before = files(project)
    res = CliRunner().invoke(app, ["rotate-secrets", str(project / "inventories" / "office.py"), *argv, "--yes"])
    assert res.exit_code == 2, res.output
    assert message in " ".join(res.output.split()) and "Traceback" not in res.output
    assert files(project) == before


def test_a_host_never_deployed_from_here_or_a_malformed_retired_file_stops_before_any_change(project: Path) -> None:
    shutil.rmtree(project / ".llmrack" / "secrets" / "node1")
    with pytest.raises(LlmrackError, match="never deployed from here"):
        rotate.plan_rotation(inventory(project), "node1", api_keys=True, postgres=False)
    retired = rk.retired_path(project, "node3")
    write_private(retired, '{"default": "sk-llmrack-x"}')
    with pytest.raises(LlmrackError, match="JSON list") as exc:
        rotate.plan_rotation(inventory(project), "node3", api_keys=True, postgres=False)
    assert exc.value.source == str(retired)
    write_private(retired, json.dumps([{"client": "default", "key": "not-a-key", "expires": "2026-12-04T00:00:00Z"}]))
    with pytest.raises(LlmrackError, match="entry 0"):
        rk.read_retired(retired)


def test_retiring_caps_earlier_keys_and_the_key_map_holds_only_live_ones(tmp_path: Path) -> None:
    a1, a2, b1, c1 = (new_api_key() for _ in range(4))
    earlier = [rk.RetiredKey("alice", a1, NOW + timedelta(hours=48)),
               rk.RetiredKey("bob", b1, NOW + timedelta(hours=1))]
    now_retired = rk.retire(earlier, {"alice": a2}, NOW + timedelta(hours=2), NOW)
    assert {(e.client, e.key, e.expires) for e in now_retired} == {
        ("alice", a1, NOW + timedelta(hours=2)), ("alice", a2, NOW + timedelta(hours=2)),
        ("bob", b1, NOW + timedelta(hours=1))}
    path = tmp_path / "secrets" / "h" / rk.RETIRED_API_KEYS
    rk.write_retired(path, [*now_retired, rk.RetiredKey("carol", c1, NOW + timedelta(hours=3))])
    assert path.stat().st_mode & 0o077 == 0 and rk.read_retired(path)[0].client == "alice"
    assert a1 not in repr(rk.read_retired(path))
    current = {"alice": new_api_key(), "bob": b1}  # bob's retired key is his current one again; carol left
    later = rk.accepted(rk.read_retired(path), current, NOW + timedelta(hours=1, minutes=30))
    assert sorted((e.client, e.key) for e in later) == sorted([("alice", a1), ("alice", a2)])  # same expiry
    assert rk.accepted(rk.read_retired(path), current, NOW + timedelta(hours=2)) == []  # expired: dropped
    keymap = render_api_keys_map(current, [(e.client, e.key, rk.format_time(e.expires)) for e in later])
    lines = [line for line in keymap.splitlines() if line.startswith('"Bearer ')]
    assert sorted(lines) == sorted([f'"Bearer {current["alice"]}" "alice";', f'"Bearer {b1}" "bob";',
                                    f'"Bearer {a1}" "alice";', f'"Bearer {a2}" "alice";'])
    assert "accepted until 2026-12-03T11:00:00Z" in keymap


def test_the_scram_verifier_answers_rfc_7677s_exchange() -> None:
    """RFC 7677 section 3: user "user", password "pencil"; the server's signature and the client's proof of its
    exchange must follow from the stored and server keys of our verifier."""
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    verifier = rh.scram_verifier("pencil", salt=salt, iterations=4096)
    head, keys = verifier.split("$", 1)[1], verifier.split("$")[2]
    assert verifier.startswith("SCRAM-SHA-256$4096:") and head.split(":")[1].startswith("W22ZaJ0SNY7soEsUEjb6gQ==")
    stored, server = (base64.b64decode(k) for k in keys.split(":"))
    nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    auth = (f"n=user,r=rOprNGfwEbeRWgbNEkqO,r={nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r={nonce}").encode()
    assert base64.b64encode(hmac.new(server, auth, "sha256").digest()).decode() == \
        "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    proof = base64.b64decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    client_key = bytes(p ^ s for p, s in zip(proof, hmac.new(stored, auth, "sha256").digest(), strict=True))
    assert hashlib.sha256(client_key).digest() == stored
    assert "pencil" not in rh.alter_role_sql("rag", "pencil")
    with pytest.raises(LlmrackError, match="role name"):
        rh.alter_role_sql('rag"; DROP TABLE x; --', "pencil")
