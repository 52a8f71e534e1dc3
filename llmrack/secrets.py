"""Every secret of a project, kept on the admin machine: one place, one permission policy, generated once.

Layout under ``<project>/.llmrack/secrets/`` (``LLMRACK_SECRETS_DIR`` moves it), never in the repository::

    <host>/api_keys.json         {"client name": "sk-llmrack-..."}: the keys clients send to the gateway
    <host>/postgres_password     the vector store's database password
    <host>/qdrant_api_key        Qdrant's API key
    <host>/restic_password       the password of the host's backup repository (lose it: backups unreadable)
    <host>/gateway-ca.crt        the CA the gateway's certificate is checked against (see llmrack.tls)
    cluster/backend_api_key      the key the gateways present to every vLLM server of the cluster
    cluster/gateway-ca.{crt,key} the project's own CA for self-signed gateway certificates
    monitoring.yaml              Grafana admin password, SMTP password, robot URLs (filled in by the operator)

The policy: directories 0700, files 0600, written through a private temporary file (never readable by others
for an instant); a value is generated once, on the first deploy, and read back ever after. A secret file that
others can read, or that llmrack did not write, stops the command (exit 2, naming the file) instead of being
silently fixed or replaced. Deploys create; everything else (verify, smoke, bench, the acceptance suite) reads
through :class:`AdminSecrets`, which never creates or changes a file.

The admin machine is not the only copy: a host that already runs the stack holds the secrets its services
were started with; a deploy reads them back first and the host's values win (:mod:`llmrack.stack.secrets`).
Keys are lowercase hex: nginx ``map`` compares strings case-insensitively.
"""

from __future__ import annotations

import json
import os
import re
import secrets as pysecrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import Field, ValidationError

from llmrack.errors import LlmrackError
from llmrack.settings._model import Settings
from llmrack.yamlfile import load_yaml_text, validation_error

DIR_MODE = 0o700
FILE_MODE = 0o600
KEY_PREFIX = "sk-llmrack-"
KEY_RE = re.compile(r"^sk-llmrack-[0-9a-f]{48}$")
TOKEN_RE = re.compile(r"^[0-9a-f]{32,}$")
CLUSTER = "cluster"
API_KEY_ENV = "LLMRACK_API_KEY"
API_KEYS = "api_keys.json"
MONITORING = "monitoring.yaml"


def new_api_key() -> str:
    return KEY_PREFIX + pysecrets.token_hex(24)


def new_token() -> str:
    return pysecrets.token_hex(24)


# ------------------------------------------------------------------------------------------------ the policy


def secrets_root(project_dir: str | Path) -> Path:
    override = os.environ.get("LLMRACK_SECRETS_DIR", "")
    return Path(override).resolve() if override else Path(project_dir) / ".llmrack" / "secrets"


def check_host_name(host: str) -> None:
    if not re.match(r"^[A-Za-z0-9._@-]+$", host) or host in (CLUSTER, ".", ".."):
        raise LlmrackError(f"host name {host!r} cannot name a secrets directory", field="host")


def host_dir(project_dir: str | Path, host: str) -> Path:
    """``<root>/<host>`` (not created)."""
    check_host_name(host)
    return secrets_root(project_dir) / host


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents below it) with mode 0700; an existing one is set to 0700."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.chmod(path, DIR_MODE)
    return path


def write_private(path: Path, text: str) -> None:
    """Write a file readable by its owner only (created 0600, never world-readable for an instant)."""
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.chmod(tmp, FILE_MODE)
    os.replace(tmp, path)


def read_private(path: Path) -> str | None:
    """The text of a secret file, None when it does not exist; never creates or changes anything.

    A file that others may read (or a directory, or bytes that are not UTF-8) is refused, naming the file."""
    if not path.exists():
        return None
    if not path.is_file():
        raise LlmrackError("not a regular file", source=str(path))
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise LlmrackError(f"secret file is readable by others (mode {mode:o}); run chmod 600 on it",
                           source=str(path))
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise LlmrackError("not UTF-8 text", source=str(path)) from None
    except OSError as exc:
        raise LlmrackError(f"cannot read it: {exc.strerror}", source=str(path)) from None


def _checked(path: Path, text: str, pattern: re.Pattern[str], what: str) -> str:
    value = text.strip()
    if not pattern.match(value):
        raise LlmrackError(f"not a valid {what} (delete the file to generate a new one)", source=str(path))
    return value


def read_token(path: Path, *, pattern: re.Pattern[str] = TOKEN_RE, what: str = "secret") -> str | None:
    text = read_private(path)
    return None if text is None else _checked(path, text, pattern, what)


def token(path: Path, *, pattern: re.Pattern[str] = TOKEN_RE, what: str = "secret") -> str:
    """The token stored at ``path``, generated on first use."""
    value = read_token(path, pattern=pattern, what=what)
    if value is None:
        value = new_token()
        write_private(path, value + "\n")
    return value


def read_api_keys(path: Path) -> dict[str, str] | None:
    text = read_private(path)
    if text is None:
        return None
    try:
        current = json.loads(text)
    except ValueError:
        raise LlmrackError("not valid JSON (delete the file to generate new keys)", source=str(path)) from None
    if not isinstance(current, dict):
        raise LlmrackError("must map client names to keys", source=str(path))
    for name, key in current.items():
        if not isinstance(key, str) or not KEY_RE.match(key):
            raise LlmrackError(f"the key of {name!r} is not a valid llmrack key", source=str(path))
    return current


def api_keys(path: Path, clients: Sequence[str]) -> dict[str, str]:
    """Client name -> key, kept in ``path``; keys of new clients are added, removed clients dropped."""
    current = read_api_keys(path) or {}
    wanted = {name: current.get(name) or new_api_key() for name in clients}
    if wanted != current or not path.is_file():
        write_private(path, json.dumps(wanted, indent=2, sort_keys=True) + "\n")
    return wanted


# ------------------------------------------------------------------------------------------------ the stack


@dataclass(frozen=True)
class StackSecrets:
    api_keys: dict[str, str]
    backend_api_key: str
    postgres_password: str
    qdrant_api_key: str

    def __repr__(self) -> str:  # never print secrets by accident
        return f"StackSecrets(clients={sorted(self.api_keys)})"


def stack_secrets(project_dir: str | Path, host: str, clients: Sequence[str]) -> StackSecrets:
    """The host's secrets, generated on first use (deploys only: readers use :class:`AdminSecrets`)."""
    d = private_dir(host_dir(project_dir, host))
    private_dir(d.parent)
    return StackSecrets(
        api_keys=api_keys(d / API_KEYS, list(clients)),
        backend_api_key=token(private_dir(d.parent / CLUSTER) / "backend_api_key", what="backend key"),
        postgres_password=token(d / "postgres_password", what="password"),
        qdrant_api_key=token(d / "qdrant_api_key", what="API key"),
    )


def restic_password(project_dir: str | Path, host: str) -> str:
    """The password of the host's backup repository, generated once (lose it and the backups are unreadable)."""
    d = private_dir(host_dir(project_dir, host))
    private_dir(d.parent)
    return token(d / "restic_password", what="repository password")


# ------------------------------------------------------------------------------------------------ monitoring


class DingTalkRobot(Settings):
    url: str = Field(..., description="https://oapi.dingtalk.com/robot/send?access_token=...")
    secret: str = Field("", description="The robot's 加签 secret (SEC...), empty when unsigned.")


class MonitoringSecrets(Settings):
    grafana_admin_password: str = Field(..., min_length=16)
    smtp_password: str = ""
    wecom_robots: dict[str, str] = Field({}, description="name -> https://qyapi.weixin.qq.com/...?key=...")
    dingtalk_robots: dict[str, DingTalkRobot] = {}

    def relay_config(self) -> dict:
        """The relay's JSON config (see llmrack.monitoring.relay)."""
        return {
            "dingtalk": {k: v.model_dump() for k, v in sorted(self.dingtalk_robots.items())},
            "wecom": dict(sorted(self.wecom_robots.items())),
        }


def monitoring_secrets_path(project_dir: str | Path) -> Path:
    return secrets_root(project_dir) / MONITORING


def read_monitoring_secrets(path: str | Path) -> MonitoringSecrets | None:
    p = Path(path)
    text = read_private(p)
    if text is None:
        return None
    try:
        return MonitoringSecrets.model_validate(load_yaml_text(text) or {})
    except ValidationError as exc:
        raise validation_error(exc, str(p)) from None
    except yaml.YAMLError as exc:
        raise LlmrackError(f"not valid YAML: {exc}", source=str(p)) from None


def load_or_create_monitoring_secrets(path: str | Path) -> MonitoringSecrets:
    """Read the monitoring secrets file; create it (with a generated Grafana password) when it does not exist."""
    p = Path(path)
    found = read_monitoring_secrets(p)
    if found is not None:
        return found
    data = {"grafana_admin_password": pysecrets.token_urlsafe(24), "smtp_password": "",
            "wecom_robots": {}, "dingtalk_robots": {}}
    write_private(p, "# llmrack monitoring secrets: keep this file private (mode 0600), never commit it\n"
                  + yaml.safe_dump(data, sort_keys=True))
    return MonitoringSecrets.model_validate(data)


# ------------------------------------------------------------------------------------------------ read back from a host

HOST_FILES = ("vllm.env", "qdrant.env", "postgres_password", API_KEYS)


def _env_value(text: str, name: str) -> str | None:
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key == name:
            return value.strip()
    return None


def parse_host_secrets(files: dict[str, str], *, where: str) -> dict[str, object]:
    """The secret values found in a host's ``secrets/`` files (``{file name: text}``), validated.

    Keys of the result: ``backend_api_key``, ``qdrant_api_key``, ``postgres_password`` (strings) and
    ``api_keys`` (client -> key); absent when the host has no such file. A malformed file stops the deploy
    (``where`` names the host's directory) rather than being silently replaced.
    """
    found: dict[str, object] = {}
    singles = {"vllm.env": ("backend_api_key", "VLLM_API_KEY"), "qdrant.env": ("qdrant_api_key",
                                                                            "QDRANT__SERVICE__API_KEY")}
    for name, (key, var) in singles.items():
        if name in files:
            value = _env_value(files[name], var)
            if value is None or not TOKEN_RE.match(value):
                raise LlmrackError(f"{var} is missing or malformed; fix or delete the file on the host",
                                   source=f"{where}/{name}")
            found[key] = value
    if "postgres_password" in files:
        value = files["postgres_password"].strip()
        if not TOKEN_RE.match(value):
            raise LlmrackError("not a password llmrack wrote; fix or delete the file on the host",
                               source=f"{where}/postgres_password")
        found["postgres_password"] = value
    if "restic-password" in files:
        value = files["restic-password"].strip()
        if not TOKEN_RE.match(value):
            raise LlmrackError("not a repository password llmrack wrote; fix or delete the file on the host",
                               source=f"{where}/restic-password")
        found["restic_password"] = value
    if "api_keys.json" in files:
        try:
            keys = json.loads(files["api_keys.json"])
        except ValueError:
            keys = None
        if not isinstance(keys, dict) or not all(isinstance(k, str) and KEY_RE.match(k) for k in keys.values()):
            raise LlmrackError("must map client names to llmrack keys; fix or delete the file on the host",
                               source=f"{where}/api_keys.json")
        found["api_keys"] = keys
    return found


def adopt_host_secrets(project_dir: Path, host: str, found: dict[str, object]) -> list[str]:
    """Make the admin machine's copy agree with the secrets a host already runs with (the host wins).

    Returns one line per secret taken from the host (names only, never values). Clients the host does not
    know yet keep the admin machine's keys (or get new ones later); no key a client holds is replaced.
    """
    hdir = private_dir(host_dir(project_dir, host))
    root = private_dir(hdir.parent)
    taken: list[str] = []
    targets = {
        "backend_api_key": private_dir(root / CLUSTER) / "backend_api_key",
        "postgres_password": hdir / "postgres_password",
        "qdrant_api_key": hdir / "qdrant_api_key",
        "restic_password": hdir / "restic_password",
    }
    for key, path in targets.items():
        value = found.get(key)
        if not isinstance(value, str):
            continue
        current = (read_private(path) or "").strip() or None
        if current != value:
            write_private(path, value + "\n")
            taken.append(f"{key}: {'replaced the admin copy with' if current else 'read back'} the host's value "
                         f"({path})")
    host_keys = found.get("api_keys")
    if isinstance(host_keys, dict) and host_keys:
        path = hdir / "api_keys.json"
        current: dict[str, str] = {}
        text = read_private(path)
        try:  # a broken admin copy is replaced by the host's keys
            loaded = json.loads(text) if text else {}
            current = loaded if isinstance(loaded, dict) else {}
        except ValueError:
            current = {}
        merged = {**current, **host_keys}
        if merged != current:
            write_private(path, json.dumps(merged, indent=2, sort_keys=True) + "\n")
            changed = sorted(n for n in host_keys if current.get(n) != host_keys[n])
            taken.append(f"api_keys: read back the keys of {', '.join(changed)} from the host ({path})")
    return taken


# ------------------------------------------------------------------------------------------------ read only


class AdminSecrets:
    """The admin machine's secrets of a project, read only: for verify, smoke, bench and the acceptance suite.

    Nothing here creates a file or a directory; an absent secret is None, a bad one raises (exit 2)."""

    def __init__(self, project_dir: str | Path, *, root: str | Path | None = None):
        self.project_dir = Path(project_dir)
        self.root = Path(root) if root else secrets_root(project_dir)  # ``root``: as LLMRACK_SECRETS_DIR

    def path(self, host: str, name: str) -> Path:
        check_host_name(host)
        return self.root / host / name

    def api_keys(self, host: str) -> dict[str, str]:
        return read_api_keys(self.path(host, API_KEYS)) or {}

    def client_key(self, host: str, clients: Sequence[str]) -> str | None:
        """The one rule for the key a check or a smoke test sends: ``$LLMRACK_API_KEY`` when set, else the key
        of the first client of ``stack.gateway.api_clients`` (``clients``) that has one."""
        env = os.environ.get(API_KEY_ENV, "").strip()
        if env:
            return env
        keys = self.api_keys(host)
        return next((keys[c] for c in clients if c in keys), None)

    def postgres_password(self, host: str) -> str | None:
        return read_token(self.path(host, "postgres_password"), what="password")

    def qdrant_api_key(self, host: str) -> str | None:
        return read_token(self.path(host, "qdrant_api_key"), what="API key")

    def backend_api_key(self) -> str | None:
        return read_token(self.root / CLUSTER / "backend_api_key", what="backend key")

    def monitoring(self) -> MonitoringSecrets | None:
        return read_monitoring_secrets(self.root / MONITORING)

    def gateway_ca(self, host: str) -> Path | None:
        """The CA file the host's gateway certificate is checked against (written by the deploy), or None."""
        p = self.path(host, "gateway-ca.crt")
        return p if p.is_file() else None
