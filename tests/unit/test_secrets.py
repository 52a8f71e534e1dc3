"""The secrets policy of the admin machine (llmrack.secrets) and the TLS trust of the one HTTP client.

Real files and modes in a temporary project; real TLS handshakes against a local HTTPS server (Python's ssl)
presenting certificates the project's CA issued, or not.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import stat
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmrack import secrets as sec
from llmrack import tls
from llmrack.cli import app
from llmrack.errors import LlmrackError
from llmrack.stack import smoke_http
from llmrack.verify import suite

ROOT = Path(__file__).resolve().parents[2]


def mode(p: Path) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def tree(p: Path) -> list[str]:
    return sorted(str(x.relative_to(p)) for x in p.rglob("*")) if p.exists() else []


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(sec.API_KEY_ENV, raising=False)
    monkeypatch.delenv("LLMRACK_SECRETS_DIR", raising=False)


# ------------------------------------------------------------------------------------------------ policy


def test_every_secret_is_0600_in_0700_directories(tmp_path: Path) -> None:
    sec.stack_secrets(tmp_path, "gw1", ["default", "ci"])
    sec.restic_password(tmp_path, "gw1")
    sec.load_or_create_monitoring_secrets(sec.monitoring_secrets_path(tmp_path))
    tls.adopt_gateway_tls(tmp_path, "gw1", on_host=None, common_name="", address="10.0.0.5", days=30)
    root = sec.secrets_root(tmp_path)
    files = [p for p in root.rglob("*") if p.is_file()]
    dirs = [root, *(p for p in root.rglob("*") if p.is_dir())]
    assert {p.name for p in files} >= {"api_keys.json", "postgres_password", "qdrant_api_key", "restic_password",
                                       "backend_api_key", "monitoring.yaml", "gateway-ca.crt", "gateway-ca.key",
                                       "gateway.crt", "gateway.key"}
    assert {str(p.relative_to(root)): mode(p) for p in files} == {str(p.relative_to(root)): 0o600 for p in files}
    assert {str(p): mode(p) for p in dirs} == {str(p): 0o700 for p in dirs}


def test_generated_once(tmp_path: Path) -> None:
    first = sec.stack_secrets(tmp_path, "gw1", ["default"])
    again = sec.stack_secrets(tmp_path, "gw1", ["default"])
    assert first == again
    mon = sec.monitoring_secrets_path(tmp_path)
    assert sec.load_or_create_monitoring_secrets(mon) == sec.load_or_create_monitoring_secrets(mon)
    pem = tls.gateway_certificate(tmp_path, "gw1", common_name="", address="10.0.0.5", days=30)
    assert tls.gateway_certificate(tmp_path, "gw1", common_name="", address="10.0.0.5", days=30) == pem


def test_reading_never_creates(tmp_path: Path) -> None:
    reader = sec.AdminSecrets(tmp_path)
    assert reader.client_key("gw1", ["default"]) is None
    assert reader.postgres_password("gw1") is None and reader.qdrant_api_key("gw1") is None
    assert reader.backend_api_key() is None and reader.monitoring() is None and reader.gateway_ca("gw1") is None
    assert suite.find_api_key(tmp_path, "gw1", ["default"]) is None
    with pytest.raises(LlmrackError, match="deploy the stack from here first"):
        tls.trust_anchor(tmp_path, "gw1", _tls_settings())
    assert tree(tmp_path) == [], "a reader created files"


def test_reading_changes_nothing_on_disk(tmp_path: Path) -> None:
    sec.stack_secrets(tmp_path, "gw1", ["default", "ci"])
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sec.secrets_root(tmp_path).rglob("*") if p.is_file()}
    reader = sec.AdminSecrets(tmp_path)
    reader.client_key("gw1", ["ci", "default"]), reader.postgres_password("gw1"), reader.backend_api_key()
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sec.secrets_root(tmp_path).rglob("*") if p.is_file()}
    assert after == before


def test_one_rule_for_the_client_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = sec.stack_secrets(tmp_path, "gw1", ["zeta", "alpha"]).api_keys
    reader = sec.AdminSecrets(tmp_path)
    assert reader.client_key("gw1", ["zeta", "alpha"]) == keys["zeta"], "the first listed client, not the first sorted"
    assert reader.client_key("gw1", ["gone", "alpha"]) == keys["alpha"]
    assert suite.find_api_key(tmp_path, "gw1", ["zeta", "alpha"]) == keys["zeta"], "verify follows the same rule"
    monkeypatch.setenv(sec.API_KEY_ENV, " sk-from-env ")
    assert reader.client_key("gw1", ["zeta"]) == "sk-from-env"


@pytest.mark.parametrize(("name", "text", "message"), [
    ("api_keys.json", "{not json", "not valid JSON"),
    ("api_keys.json", json.dumps({"default": "sk-wrong"}), "is not a valid llmrack key"),
    ("postgres_password", "hunter2\n", "not a valid password"),
    ("qdrant_api_key", "\xff\xfe", "not UTF-8"),
])
def test_a_bad_secret_file_is_refused_naming_it(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = sec.host_dir(tmp_path, "gw1") / name
    path.parent.mkdir(parents=True, mode=0o700)
    path.write_bytes(text.encode("latin-1") if name == "qdrant_api_key" else text.encode())
    path.chmod(0o600)
    reader = sec.AdminSecrets(tmp_path)
    read = {"api_keys.json": lambda: reader.client_key("gw1", ["default"]),
            "postgres_password": lambda: reader.postgres_password("gw1"),
            "qdrant_api_key": lambda: reader.qdrant_api_key("gw1")}[name]
    with pytest.raises(LlmrackError, match=message) as exc:
        read()
    assert str(exc.value).startswith(f"{path}: ")
    with pytest.raises(LlmrackError, match=message):  # the deploy refuses it too instead of replacing it
        sec.stack_secrets(tmp_path, "gw1", ["default"])
    assert path.read_bytes() == (text.encode("latin-1") if name == "qdrant_api_key" else text.encode())


def test_a_secret_others_can_read_is_refused_and_left_alone(tmp_path: Path) -> None:
    sec.stack_secrets(tmp_path, "gw1", ["default"])
    path = sec.host_dir(tmp_path, "gw1") / "api_keys.json"
    path.chmod(0o644)
    with pytest.raises(LlmrackError, match="readable by others .*chmod 600") as exc:
        sec.AdminSecrets(tmp_path).client_key("gw1", ["default"])
    assert str(exc.value).startswith(str(path))
    assert mode(path) == 0o644, "reading changed the file's mode"
    with pytest.raises(LlmrackError, match="readable by others"):
        sec.stack_secrets(tmp_path, "gw1", ["default"])


def _site(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "tiers", tmp_path / "tiers")
    inv = tmp_path / "site.py"
    inv.write_text('s = [("gw1", {"tier": "sandbox", "address": "127.0.0.1", "roles": ["gateway", "inference"]})]\n')
    return inv


@pytest.mark.parametrize("command", ["smoke", "verify"])
def test_cli_exits_2_naming_a_bad_secret_file_and_touches_nothing(tmp_path: Path, command: str) -> None:
    inv = _site(tmp_path)
    path = sec.host_dir(tmp_path, "gw1") / "api_keys.json"
    path.parent.mkdir(parents=True, mode=0o700)
    path.write_text("{not json")
    path.chmod(0o600)
    before = tree(tmp_path)
    r = CliRunner().invoke(app, [command, str(inv), "--project", str(tmp_path)])
    assert r.exit_code == 2, r.output
    assert f"{path}: not valid JSON" in r.output.replace("\n", "")
    assert "Traceback" not in r.output
    assert tree(tmp_path) == before


def test_smoke_without_keys_creates_none(tmp_path: Path) -> None:
    inv = _site(tmp_path)
    tls_dir = sec.host_dir(tmp_path, "gw1")
    before = tree(tmp_path)
    r = CliRunner().invoke(app, ["smoke", str(inv), "--project", str(tmp_path)])
    assert r.exit_code == 2, r.output
    assert "deploy the stack from here first" in r.output.replace("\n", " ")
    assert tree(tmp_path) == before and not tls_dir.exists(), "smoke created secrets"


# ------------------------------------------------------------------------------------------------ TLS trust


def _tls_settings(**kw):
    from llmrack.settings.stack import TlsSettings

    return TlsSettings(**kw)


class _Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def https(tmp_path: Path):
    """Start an HTTPS server on 127.0.0.1 with the given (certificate PEM, key PEM); yields its base URL."""
    servers = []

    def start(cert_key: tuple[str, str]) -> str:
        d = tmp_path / f"srv{len(servers)}"
        d.mkdir()
        (d / "c.pem").write_text(cert_key[0])
        (d / "k.pem").write_text(cert_key[1])
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(d / "c.pem", d / "k.pem")
        srv = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"https://127.0.0.1:{srv.server_address[1]}"

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def test_the_issued_certificate_is_verified_and_a_wrong_one_fails(tmp_path: Path, https) -> None:
    project, other = tmp_path / "p", tmp_path / "other"
    issued, line = tls.adopt_gateway_tls(project, "gw1", on_host=None, common_name="", address="127.0.0.1", days=30)
    assert issued is not None and "issued by the project's CA" in line
    ca = tls.trust_anchor(project, "gw1", _tls_settings())
    good = https(issued)
    assert smoke_http.request("GET", f"{good}/x", ca=ca)[0] == 200
    # the same gateway taken for a name its certificate does not carry
    import socket

    port = int(good.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        tls.client_context(ca).wrap_socket(raw, server_hostname="gw2.example")
    # a gateway presenting a certificate of another CA (another project, a man in the middle)
    wrong = https(tls.gateway_certificate(other, "gw1", common_name="", address="127.0.0.1", days=30))
    with pytest.raises(smoke_http.TransportFailed, match="CERTIFICATE_VERIFY_FAILED"):
        smoke_http.request("GET", f"{wrong}/x", ca=ca)
    with pytest.raises(smoke_http.TransportFailed, match="CERTIFICATE_VERIFY_FAILED"):  # no CA: the system store
        smoke_http.request("GET", f"{good}/x")
    from llmrack import bench

    res = bench.run_bench(wrong, "sk", model="m", concurrency_levels=[1], requests_per_level=1, max_tokens=1,
                          timeout_s=10, ca=ca)
    assert res["levels"][0]["ok"] == 0 and "CERTIFICATE_VERIFY_FAILED" in json.dumps(res["levels"][0]["errors"])
    from llmrack.verify.checks_software import verified_handshake

    assert verified_handshake("127.0.0.1", int(good.rsplit(":", 1)[1]), ca) == ""
    assert "certificate" in verified_handshake("127.0.0.1", int(wrong.rsplit(":", 1)[1]), ca)


def test_a_pinned_certificate_of_another_ca_verifies_in_a_handshake(tmp_path: Path, https) -> None:
    """A new admin machine pins the certificate another admin machine's CA issued: clients then accept exactly
    that certificate (name checked), and still refuse any other."""
    project = tmp_path / "p"
    legacy = tls.gateway_certificate(tmp_path / "older", "gw1", common_name="", address="127.0.0.1", days=30)
    tls.adopt_gateway_tls(project, "gw1", on_host=legacy[0], common_name="", address="127.0.0.1", days=30)
    ca = tls.trust_anchor(project, "gw1", _tls_settings())
    assert smoke_http.request("GET", f"{https(legacy)}/x", ca=ca)[0] == 200
    other = tls.gateway_certificate(tmp_path / "third", "gw1", common_name="", address="127.0.0.1", days=30)
    with pytest.raises(smoke_http.TransportFailed, match="CERTIFICATE_VERIFY_FAILED"):
        smoke_http.request("GET", f"{https(other)}/x", ca=ca)


def test_a_certificate_already_on_the_host_wins(tmp_path: Path) -> None:
    project = tmp_path / "p"
    ours = tls.gateway_certificate(project, "gw1", common_name="", address="10.0.0.5", days=30)[0]
    assert tls.adopt_gateway_tls(project, "gw1", on_host=ours, common_name="", address="10.0.0.5",
                                 days=30)[0] is None
    anchor = sec.host_dir(project, "gw1") / tls.ANCHOR
    assert anchor.read_text() == (sec.secrets_root(project) / "cluster" / tls.CA_CERT).read_text()
    legacy = tls.gateway_certificate(tmp_path / "older", "gw2", common_name="", address="10.0.0.6", days=30)[0]
    upload, line = tls.adopt_gateway_tls(project, "gw2", on_host=legacy, common_name="", address="10.0.0.6",
                                         days=30)
    assert upload is None and "pinned" in line
    assert (sec.host_dir(project, "gw2") / tls.ANCHOR).read_text() == legacy
    assert tls.adopt_gateway_tls(project, "gw2", on_host=legacy, common_name="", address="10.0.0.6",
                                 days=30) == (None, ""), "a second deploy changes nothing"


def test_provided_mode_checks_against_the_users_ca_or_the_system_store(tmp_path: Path) -> None:
    assert tls.trust_anchor(tmp_path, "gw1", _tls_settings(mode="provided", cert_file="c", key_file="k")) is None
    ca = tls.trust_anchor(tmp_path, "gw1", _tls_settings(mode="provided", cert_file="c", key_file="k",
                                                          ca_file=str(tmp_path / "ca.pem")))
    assert ca == tmp_path / "ca.pem"
    assert tree(tmp_path) == []
