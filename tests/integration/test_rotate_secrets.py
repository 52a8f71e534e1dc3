"""``llmrack rotate-secrets`` on the served site (served_site.py), last in its lane.

The rotation works on a copy of the admin machine's secrets (``LLMRACK_SECRETS_DIR``), so the other lane's
hosts of the same names never see its keys. Measured from outside the rotation: the keys and the password as
host1 holds them before and after, what the gateway answers each key (old and new) while the grace period runs
and once it is over, a TCP login to the database with the new and the old password, and a converge afterwards
that changes nothing.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from harness import PROJECT, assert_no_changes, run_pyinfra
from served_site import FULL

from llmrack.config import load_tier
from llmrack.secrets import AdminSecrets, secrets_root
from llmrack.stack.compose import StackPaths
from llmrack.stack.smoke_http import request
from llmrack.tls import trust_anchor

pytestmark = pytest.mark.integration
LLMRACK = Path(sys.executable).with_name("llmrack")


def rotate(site, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(LLMRACK), "rotate-secrets", str(site.inventory), "--host", "host1", "--yes", *args],
                          capture_output=True, text=True, timeout=1200, env={**os.environ, **env})


def on_host1(site, command: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(["ssh", "-F", site.state.ssh_config, "host1", command], input=stdin, capture_output=True,
                          text=True, timeout=120)


def host_secrets(site) -> tuple[dict[str, str], str]:
    """The client keys and the database password as host1 holds them (what clients and postgres use)."""
    d = StackPaths.of(load_tier("sandbox", PROJECT).stack).secrets_dir
    keys, password = (on_host1(site, f"cat {d}/{name}") for name in ("api_keys.json", "postgres_password"))
    assert keys.returncode == password.returncode == 0, keys.stderr + password.stderr
    return json.loads(keys.stdout), password.stdout.strip()


def statuses(site, keys: dict[str, str]) -> dict[str, int]:
    """What the gateway answers each key (its certificate checked against the project's CA)."""
    ca = trust_anchor(PROJECT, "host1", load_tier("sandbox", PROJECT).stack.gateway.tls)
    url = f"https://{site.state.host('host1').address}:8443/v1/models"
    return {name: request("GET", url, api_key=key, ca=ca, timeout=30)[0] for name, key in keys.items()}


def postgres_login(site, password: str) -> int:
    """Exit status of a TCP login (SCRAM) to the vector store inside host1 with ``password`` (on stdin)."""
    stack = load_tier("sandbox", PROJECT).stack
    pg = stack.vector_store.pgvector
    inner = f'read p; PGPASSWORD="$p" psql -h 127.0.0.1 -U {pg.user} -d {pg.database} -tAc "select 1"'
    cmd = (f"cd {stack.directory} && docker compose --project-name {stack.project_name} exec -T postgres "
           f"sh -c {shlex.quote(inner)}")
    return on_host1(site, cmd, stdin=password + "\n").returncode


@pytest.fixture(scope="module")
def rotated(served_site, tmp_path_factory):
    root = tmp_path_factory.mktemp("rotate") / "secrets"
    shutil.copytree(secrets_root(PROJECT), root)
    env = {**served_site.env, "LLMRACK_SECRETS_DIR": str(root)}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLMRACK_SECRETS_DIR", str(root))  # the CA this process checks the gateway against
        old_keys, old_password = host_secrets(served_site)
        first = rotate(served_site, env, "--grace-hours", "1")
        keys, password = host_secrets(served_site)
        mid = {"new": statuses(served_site, keys), "old": statuses(served_site, old_keys)}
        second = rotate(served_site, env, "--api-keys", "--client", "tests", "--grace-hours", "0")
        last_keys, _ = host_secrets(served_site)
        end = {"new": statuses(served_site, last_keys), "old": statuses(served_site, old_keys)}
        logins = {"new": postgres_login(served_site, password), "old": postgres_login(served_site, old_password)}
        admin = AdminSecrets(PROJECT, root=root)
        admin_copy = {"keys": admin.api_keys("host1"), "password": admin.postgres_password("host1")}
        converge = run_pyinfra(served_site.inventory, FULL, env=env, timeout=900)
    return {"first": first, "second": second, "old_keys": old_keys, "old_password": old_password, "keys": keys,
            "password": password, "last_keys": last_keys, "mid": mid, "end": end, "logins": logins,
            "admin": admin_copy, "converge": converge}


def test_rotating_keys_keeps_the_old_ones_for_their_grace_period(rotated) -> None:
    assert rotated["first"].returncode == 0, rotated["first"].stdout + rotated["first"].stderr
    assert "sk-llmrack-" not in rotated["first"].stdout + rotated["first"].stderr  # no key in its output
    old, new = rotated["old_keys"], rotated["keys"]
    assert sorted(old) == sorted(new) == ["default", "tests"]
    assert all(old[c] != new[c] for c in old)
    assert rotated["mid"] == {"new": {"default": 200, "tests": 200}, "old": {"default": 200, "tests": 200}}


def test_a_rotation_with_no_grace_stops_the_old_keys_at_once(rotated) -> None:
    assert rotated["second"].returncode == 0, rotated["second"].stdout + rotated["second"].stderr
    assert rotated["last_keys"]["default"] == rotated["keys"]["default"]
    assert rotated["last_keys"]["tests"] != rotated["keys"]["tests"]
    assert rotated["admin"]["keys"] == rotated["last_keys"]  # the admin machine holds what the host holds
    # default's first old key is still in its hour; every old key of "tests" stops now
    assert rotated["end"] == {"new": {"default": 200, "tests": 200}, "old": {"default": 200, "tests": 401}}


def test_the_database_takes_the_new_password_and_a_converge_after_changes_nothing(rotated) -> None:
    assert "postgres password rotated" in rotated["first"].stdout
    assert "smoke:" in rotated["first"].stdout and "checks pass" in rotated["first"].stdout
    assert rotated["password"] != rotated["old_password"] and rotated["admin"]["password"] == rotated["password"]
    assert rotated["logins"] == {"new": 0, "old": 2}  # psql exits 2 when the connection fails (authentication)
    assert_no_changes(rotated["converge"])
