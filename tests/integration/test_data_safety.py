"""Data safety on one sandbox host (pgvector): secrets read back from the host, convergence from the running
state, backup into restic with its metric, restore with counts checked against the snapshot's manifest, and a
backup target that went away failing loudly.

Deploys run as users run them (pyinfra, the llmrack CLI as a subprocess); checks go through SSH, SQL inside
the database container and HTTP to the gateway and node-exporter, never through the deploy code.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest
import yaml
from harness import (
    PROJECT,
    SANDBOX_INVENTORY,
    Sandbox,
    assert_converged,
    assert_no_changes,
    run_pyinfra,
    sandbox_bundle,
    sandbox_env,
)
from nas import destroy_and_recreate, grant_repository_access, nas_ssh
from streams import Streams

from llmrack import sandbox
from llmrack.secrets import AdminSecrets
from llmrack.stack.smoke import run_smoke

FULL = PROJECT / "deploys" / "full_stack.py"
STACK = PROJECT / "deploys" / "stack.py"
LLMRACK = Path(sys.executable).with_name("llmrack")
ROWS = 10_000
STACK_DIR = "/opt/llmrack/stack"
COMPOSE = f"docker compose --project-name llmrack -f {STACK_DIR}/compose.yaml"
QUERIES = [f"[{','.join(str(((q * 7 + d * 3) % 11) / 10) for d in range(8))}]" for q in range(5)]


def ssh(state, command: str, *, stdin: str | None = None, check: bool = True, timeout: int = 600) -> str:
    done = subprocess.run(["ssh", "-F", state.ssh_config, "host1", command], input=stdin, capture_output=True,
                          text=True, timeout=timeout)
    if check:
        assert done.returncode == 0, f"{command}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    return done.stdout


def sql(state, query: str) -> str:
    return ssh(state, f"{COMPOSE} exec -T postgres psql -U rag -d rag -Atq -v ON_ERROR_STOP=1", stdin=query).strip()


def sql_with_password(state, password: str, query: str) -> str:
    """SQL over TCP with password authentication (the password travels on stdin, never on a command line)."""
    inner = f"read -r pw; PGPASSWORD=$pw psql -h 127.0.0.1 -U rag -d rag -Atc \"{query}\""
    return ssh(state, f"{COMPOSE} exec -T postgres sh -c '{inner}'", stdin=password + "\n").strip()


def top10(state) -> list[list[int]]:
    out = sql(state, ";\n".join(f"SELECT string_agg(id::text, ',') FROM (SELECT id FROM docs ORDER BY "
                               f"embedding <-> '{q}' LIMIT 10) t" for q in QUERIES) + ";")
    return [[int(x) for x in line.split(",")] for line in out.splitlines()]


def cli(env: dict[str, str], *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([str(LLMRACK), *args], cwd=PROJECT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **env}, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def bundle() -> Path:
    return sandbox_bundle()


@pytest.fixture(scope="module")
def site(sandbox_state, bundle, tmp_path_factory):
    """A converged host with 10,000 vectors; the admin machine's secrets in a directory of this module."""
    first_admin = tmp_path_factory.mktemp("admin-a")
    env = {**sandbox_env(sandbox_state), "LLMRACK_BUNDLE": str(bundle), "LLMRACK_SECRETS_DIR": str(first_admin)}
    t0 = time.monotonic()
    assert_converged(run_pyinfra(SANDBOX_INVENTORY, FULL, env=env, timeout=1500))
    sql(sandbox_state, f"""
        CREATE EXTENSION IF NOT EXISTS vector;
        CREATE TABLE docs (id int PRIMARY KEY, body text NOT NULL, embedding vector(8) NOT NULL);
        INSERT INTO docs SELECT i, 'doc ' || i || ' payload ' || md5(i::text),
            ('[' || array_to_string(ARRAY(SELECT ((i * 31 + d * 17) % 97) / 96.0 FROM generate_series(1, 8) d),
             ',') || ']')::vector
        FROM generate_series(1, {ROWS}) i;""")
    keys = json.loads((first_admin / "host1" / "api_keys.json").read_text())
    return {"state": sandbox_state, "env": env, "admin": first_admin, "keys": keys, "top10": top10(sandbox_state),
            "converge_s": time.monotonic() - t0}


def base_url(state) -> str:
    return f"https://{state.host('host1').address}:8443"


def gateway_ca(env: dict[str, str]) -> Path | None:
    """What the admin machine of ``env`` checks host1's gateway certificate against."""
    return AdminSecrets(PROJECT, root=env["LLMRACK_SECRETS_DIR"]).gateway_ca("host1")


def test_redeploy_from_an_admin_machine_without_secrets_keeps_data_and_keys(site, tmp_path) -> None:
    state = site["state"]
    env = {**site["env"], "LLMRACK_SECRETS_DIR": str(tmp_path / "new-laptop")}
    first = run_pyinfra(SANDBOX_INVENTORY, FULL, env=env)
    assert_converged(first)
    new_keys = json.loads((tmp_path / "new-laptop" / "host1" / "api_keys.json").read_text())
    assert new_keys == site["keys"], "the clients' keys came back from the host"
    password = (tmp_path / "new-laptop" / "host1" / "postgres_password").read_text().strip()
    assert sql_with_password(state, password, "SELECT count(*) FROM docs") == str(ROWS)
    # the host's certificate came from the first admin machine's CA: the new one pins it and checks it
    results = run_smoke(base_url(state), site["keys"]["default"], model="llmrack-tiny", ca=gateway_ca(env))
    assert all(r.ok for r in results), [r.line() for r in results]
    assert_no_changes(run_pyinfra(SANDBOX_INVENTORY, FULL, env=env))


def test_a_run_interrupted_after_the_compose_write_is_converged_from_the_running_state(site) -> None:
    """compose.yaml live and right, the gateway still running an older configuration: the next run reloads."""
    state = site["state"]
    live = ssh(state, f"cat {STACK_DIR}/compose.yaml")
    older = yaml.safe_load(live)
    older["services"]["gateway"].setdefault("environment", {})["LLMRACK_DRILL"] = "old"
    ssh(state, f"cat > {STACK_DIR}/compose.old.yaml && cd {STACK_DIR} && docker compose --project-name llmrack "
               "-f compose.old.yaml up -d --no-deps gateway && rm compose.old.yaml", stdin=yaml.safe_dump(older))
    assert "LLMRACK_DRILL=old" in ssh(state, "docker inspect --format '{{.Config.Env}}' llmrack-gateway-1")
    assert ssh(state, f"cat {STACK_DIR}/compose.yaml") == live
    run = run_pyinfra(SANDBOX_INVENTORY, STACK, env=site["env"])
    assert_converged(run)
    assert any("Reload" in name for name in run.changed_ops("host1")), run.changed_ops("host1")
    assert "LLMRACK_DRILL" not in ssh(state, "docker inspect --format '{{.Config.Env}}' llmrack-gateway-1")
    assert_no_changes(run_pyinfra(SANDBOX_INVENTORY, STACK, env=site["env"]))


def test_restore_before_any_backup_and_unknown_hosts_are_bad_input(site) -> None:
    env = site["env"]
    done = cli(env, "restore", str(SANDBOX_INVENTORY), "--host", "host1", "--yes")
    assert done.returncode == 2 and "no backup yet" in done.stderr, done.stdout + done.stderr
    done = cli(env, "restore", str(SANDBOX_INVENTORY), "--host", "nope", "--yes")
    assert done.returncode == 2 and "no host 'nope'" in done.stderr and "Traceback" not in done.stderr
    done = cli(env, "backup", str(SANDBOX_INVENTORY), "--host", "nope")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def backed_up(site):
    t0 = time.monotonic()
    done = cli(site["env"], "backup", str(SANDBOX_INVENTORY), "--host", "host1")
    assert done.returncode == 0, done.stdout + done.stderr
    return {**site, "backup_out": done.stdout, "backup_s": time.monotonic() - t0}


def test_backup_saves_the_rows_into_a_checked_restic_repository(backed_up) -> None:
    state = backed_up["state"]
    assert f"table public.docs: {ROWS} rows" in backed_up["backup_out"], backed_up["backup_out"]
    snapshot = backed_up["backup_out"].split("snapshot ")[1].split()[0]
    listed = json.loads(ssh(state, "restic -r /var/backups/llmrack/repository --password-file "
                                   "/etc/llmrack/backup/restic-password snapshots --json"))
    assert [s["short_id"] for s in listed] == [snapshot]
    files = ssh(state, "restic -r /var/backups/llmrack/repository --password-file "
                       f"/etc/llmrack/backup/restic-password ls {snapshot}")
    for path in ["/var/backups/llmrack/current/pgvector.dump", "/var/backups/llmrack/current/counts.tsv",
                 f"{STACK_DIR}/secrets/postgres_password", f"{STACK_DIR}/secrets/api_keys.json",
                 f"{STACK_DIR}/compose.yaml", f"{STACK_DIR}/tls"]:
        assert path in files.splitlines(), path
    # the repository is encrypted: the payload text is nowhere in it
    assert ssh(state, "grep -rl 'payload' /var/backups/llmrack/repository || true").strip() == ""
    assert ssh(state, "stat -c %a /etc/llmrack/backup/restic-password").strip() == "600"
    assert ssh(state, "systemctl is-enabled llmrack-backup.timer").strip() == "enabled"


def test_the_last_good_backup_time_is_exported_by_node_exporter(backed_up) -> None:
    """node-exporter's textfile collector carries the backup metrics into the host's Prometheus, where the
    BackupTooOld / BackupFailed alerts read them (asked on the host: the firewall keeps 9100 to the monitoring
    host, and the machine running the tests is not one)."""
    state = backed_up["state"]
    query = "query={__name__=~\"llmrack_backup_.*\"}"
    deadline = time.monotonic() + 90
    values: dict[str, float] = {}
    while time.monotonic() < deadline:
        out = ssh(state, f"curl -sf http://127.0.0.1:9090/api/v1/query --data-urlencode {shlex.quote(query)}",
                  check=False)
        try:
            result = json.loads(out)["data"]["result"]
        except (ValueError, KeyError):
            result = []
        values = {r["metric"]["__name__"]: float(r["value"][1]) for r in result}
        if "llmrack_backup_last_success_timestamp_seconds" in values:
            break
        time.sleep(3)
    assert abs(values["llmrack_backup_last_success_timestamp_seconds"] - time.time()) < 900, values
    assert values["llmrack_backup_last_run_success"] == 1
    assert values["llmrack_backup_schedule_interval_seconds"] == 86400  # the daily default schedule


def test_restore_puts_every_row_back_and_the_same_answers(backed_up) -> None:
    state, env = backed_up["state"], backed_up["env"]
    sql(state, "DELETE FROM docs WHERE id % 3 = 0; UPDATE docs SET body = 'damaged' WHERE id < 100;")
    assert int(sql(state, "SELECT count(*) FROM docs")) < ROWS
    done = cli(env, "restore", str(SANDBOX_INVENTORY), "--host", "host1", "--snapshot", "deadbeef", "--yes")
    assert done.returncode == 2 and "no snapshot 'deadbeef'" in done.stderr, done.stdout + done.stderr
    done = cli(env, "restore", str(SANDBOX_INVENTORY), "--host", "host1")  # asks; no answer: nothing done
    assert done.returncode != 0 and "plan for host1" in done.stdout
    assert int(sql(state, "SELECT count(*) FROM docs")) < ROWS
    done = cli(env, "restore", str(SANDBOX_INVENTORY), "--host", "host1", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"table public.docs: {ROWS} of {ROWS} ok" in done.stdout
    assert sql(state, "SELECT count(*) FROM docs") == str(ROWS)
    assert sql(state, "SELECT count(*) FROM docs WHERE body = 'damaged'") == "0"
    assert top10(state) == backed_up["top10"]
    results = run_smoke(base_url(state), backed_up["keys"]["default"], model="llmrack-tiny", ca=gateway_ca(env))
    assert all(r.ok for r in results), [r.line() for r in results]


def test_an_unreachable_backup_target_fails_loudly_and_breaks_nothing(backed_up) -> None:
    state, env = backed_up["state"], backed_up["env"]
    repo = "/var/backups/llmrack/repository"
    ssh(state, f"mv {repo} {repo}.away && mkdir -m 700 {repo}")  # the NAS is not mounted: an empty directory
    try:
        done = cli(env, "backup", str(SANDBOX_INVENTORY), "--host", "host1")
        assert done.returncode == 1 and "FAILED" in done.stderr, done.stdout + done.stderr
        prom = ssh(state, "cat /var/lib/llmrack/textfile/llmrack_backup.prom")
        assert "llmrack_backup_last_run_success 0" in prom
        assert ssh(state, f"ls -A {repo}").strip() == "", "no new repository was made in its place"
        results = run_smoke(base_url(state), backed_up["keys"]["default"], model="llmrack-tiny",
                            ca=gateway_ca(env))
        assert all(r.ok for r in results), [r.line() for r in results]
    finally:
        ssh(state, f"rm -rf {repo} && mv {repo}.away {repo}")


def restic_json(state, args: str) -> str:
    return ssh(state, f". /etc/llmrack/backup/backup.env && export RESTIC_REPOSITORY RESTIC_PASSWORD_FILE "
                      f"RESTIC_CACHE_DIR && restic {args}")


def gateway_running(state) -> bool:
    return ssh(state, "docker inspect --format '{{.State.Running}}' llmrack-gateway-1").strip() == "true"


def test_a_restore_whose_counts_do_not_match_stops_before_the_gateway_and_loses_nothing(backed_up) -> None:
    """A snapshot whose dump holds fewer rows than its manifest says (a damaged dump): the restore stops with
    the writers down, says what it found, and the store as it was before the restore is kept."""
    state, env = backed_up["state"], backed_up["env"]
    good = backed_up["backup_out"].split("snapshot ")[1].split()[0]
    sql(state, "INSERT INTO docs VALUES (20001, 'written after the backup', '[0,0,0,0,0,0,0,1]')")
    # the manifest of the last staged dump claims one row more than the dump holds; back that up as a snapshot
    ssh(state, "sed -i 's/^\\(table\tpublic.docs\t\\)[0-9]*$/\\1" + str(ROWS + 1) + "/' "
               "/var/backups/llmrack/current/counts.tsv")
    out = restic_json(state, "backup --json --host host1 --tag llmrack /var/backups/llmrack/current")
    damaged = next(json.loads(line)["snapshot_id"][:8] for line in out.splitlines()
                   if '"summary"' in line)
    done = cli(env, "restore", str(SANDBOX_INVENTORY), "--host", "host1", "--snapshot", damaged, "--yes")
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"table public.docs: {ROWS} of {ROWS + 1} DIFFERENT" in done.stdout, done.stdout
    assert "counts do not match" in done.stderr and "left stopped" in done.stderr, done.stderr
    assert not gateway_running(state), "the gateway was started on a store that is not what was backed up"
    with pytest.raises(httpx.TransportError):  # nothing answers on the gateway's port
        httpx.get(f"{base_url(state)}/v1/models", verify=False, timeout=10,
                  headers={"Authorization": f"Bearer {backed_up['keys']['default']}"})
    kept = ssh(state, f"{COMPOSE} exec -T postgres pg_restore -f - < /var/backups/llmrack/before-restore.dump")
    assert "written after the backup" in kept, "the rows written since the backup were kept in before-restore"
    # the good snapshot puts the service back (the writers a failed restore left stopped start again)
    done = cli(env, "restore", str(SANDBOX_INVENTORY), "--host", "host1", "--snapshot", good, "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert gateway_running(state)
    assert sql(state, "SELECT count(*) FROM docs") == str(ROWS)


# ------------------------------------------------------------------ the host destroyed, rebuilt from a NAS


@pytest.fixture(scope="module")
def nas(docker_engine_ready, tmp_path_factory):
    """Two more machines: host1 holds the backups (an SFTP target, as a NAS would be), host2 is a bare server
    for the migration. Neither is in the data-safety inventory until the migration adds host2."""
    with Sandbox(2, tmp_path_factory.mktemp("nas"), prefix=f"llmrack-test-{os.getpid()}-nas-") as state:
        yield state


@pytest.fixture(scope="module")
def rebuilt(backed_up, nas):
    """10,000 rows backed up to the NAS, the host destroyed, a bare one in its place, `llmrack rebuild`."""
    state = backed_up["state"]
    env = {**backed_up["env"], "LLMRACK_BACKUP_REPOSITORY": grant_repository_access(state, nas)}
    assert sql(state, "SELECT count(*) FROM docs") == str(ROWS)
    answers = top10(state)
    backup = cli(env, "backup", str(SANDBOX_INVENTORY), "--host", "host1")
    assert backup.returncode == 0, backup.stdout + backup.stderr
    fresh = destroy_and_recreate(state)
    bare = ssh(fresh, "test -e /opt/llmrack || test -e /etc/llmrack/backup || echo bare").strip() == "bare"
    grant_repository_access(fresh, nas)  # the new server's own key; the repository password is the admin's
    t0 = time.monotonic()
    done = cli(env, "rebuild", str(SANDBOX_INVENTORY), "--host", "host1", "--yes", timeout=2400)
    print(f"\nrebuild from the NAS: {time.monotonic() - t0:.0f} s, {ROWS} rows\n{done.stdout}")
    return {**backed_up, "env": env, "fresh": fresh, "bare": bare, "answers": answers, "backup": backup,
            "rebuild": done}


def test_rebuild_from_an_off_host_repository_after_the_host_is_destroyed(rebuilt, nas) -> None:
    fresh, keys, backup, done = rebuilt["fresh"], rebuilt["keys"], rebuilt["backup"], rebuilt["rebuild"]
    admin = rebuilt["admin"] / "host1"
    assert f"table public.docs: {ROWS} rows" in backup.stdout and "sftp:root@" in backup.stdout, backup.stdout
    assert nas_ssh(nas, "test -f /srv/llmrack/config && ls /srv/llmrack/snapshots | wc -l").strip() == "1"
    assert rebuilt["bare"], "the host was replaced by a bare one"
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]

    assert sql(fresh, "SELECT count(*) FROM docs") == str(ROWS), "every row came back"
    assert top10(fresh) == rebuilt["answers"]
    password = (admin / "postgres_password").read_text().strip()
    assert sql_with_password(fresh, password, "SELECT count(*) FROM docs") == str(ROWS)
    assert json.loads((admin / "api_keys.json").read_text()) == keys
    for name, key in keys.items():  # every client's old key still passes the gateway
        r = httpx.get(f"{base_url(fresh)}/v1/models", verify=False, timeout=60,
                      headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200, (name, r.status_code)
    r = httpx.get(f"{base_url(fresh)}/v1/models", verify=False, timeout=60,
                  headers={"Authorization": "Bearer sk-llmrack-" + "0" * 48})
    assert r.status_code == 401
    results = run_smoke(base_url(fresh), keys["default"], model="llmrack-tiny", ca=gateway_ca(rebuilt["env"]))
    assert all(r.ok for r in results), [r.line() for r in results]
    verify = cli(rebuilt["env"], "verify", str(SANDBOX_INVENTORY), "--only", "software", timeout=1200)
    assert verify.returncode == 0, verify.stdout[-3000:] + verify.stderr[-3000:]
    assert_no_changes(run_pyinfra(SANDBOX_INVENTORY, FULL, env=rebuilt["env"]))


def two_host_inventory_state(state, nas_state, directory: Path):
    """A sandbox state (what inventories/sandbox.py reads) with this module's host1 and the bare host2."""
    directory.mkdir(parents=True, exist_ok=True)
    control = Path(tempfile.mkdtemp(prefix="cm-", dir="/tmp"))  # ssh's ControlPath must stay under 108 bytes
    both = state.model_copy(update={"state_dir": str(directory), "ssh_config": str(directory / "ssh_config"),
                                    "hosts": [state.host("host1"), nas_state.host("host2")]})
    Path(both.ssh_config).write_text(sandbox.render_ssh_config(both, control_dir=str(control)))
    both.save()
    return both


def test_migrating_to_another_server_moves_every_row_and_key(rebuilt, nas, tmp_path) -> None:
    """host1 hands its service over to a bare host2 through the NAS: zero rows lost, the same keys and
    password on host2, host1's writers stopped, host2 backing up into the same repository afterwards."""
    keys = rebuilt["keys"]
    both = two_host_inventory_state(rebuilt["fresh"], nas, tmp_path / "two")
    env = {**rebuilt["env"], "LLMRACK_SANDBOX_DIR": both.state_dir}
    grant_repository_access(both, nas, host="host2")
    done = cli(env, "migrate", str(SANDBOX_INVENTORY), "--from-host", "host1", "--to-host", "host1")
    assert done.returncode == 2 and "the same host" in done.stderr
    done = cli(env, "migrate", str(SANDBOX_INVENTORY), "--from-host", "host1", "--to-host", "host2")
    assert done.returncode == 1 and "migrate host1 to host2" in done.stdout  # asked; no answer: nothing done
    assert gateway_running(both)
    url1, url2 = (f"https://{both.host(h).address}:8443" for h in ("host1", "host2"))
    # a client streaming all along: through host1, then through host2 once the migration has passed (its service
    # name moved then; earlier, host2 refuses host1's keys and fail2ban would ban a client trying them)
    client = {"url": url1, "key": keys["default"]}
    with Streams(client, clients=1, limit_s=2400) as streams:
        done = cli(env, "migrate", str(SANDBOX_INVENTORY), "--from-host", "host1", "--to-host", "host2", "--yes",
                   timeout=2400)
        client["url"] = url2
        deadline = time.monotonic() + 120
        while streams.answered_by(url2) < 3 and time.monotonic() < deadline and done.returncode == 0:
            time.sleep(0.5)
    print(f"\nmigration host1 -> host2: {len(streams.done)} streamed requests, {len(streams.failed())} failed "
          f"(host1 stopped, the name not yet moved), longest gap {streams.longest_gap():.1f} s, "
          f"{streams.t1 - streams.t0:.0f} s\n{done.stdout}")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    assert streams.answered_by(url1) > 0 and streams.answered_by(url2) >= 3, "host1 served, then host2"
    # every table of the vector store, counted (docs and the smoke check's RAG table): none lost, docs all there
    before, after = (int(re.search(rf"^\s*{k}: (\d+)$", done.stdout, re.M).group(1)) for k in ("rows_before",
                                                                                              "rows_after"))
    assert before == after >= ROWS, (before, after)

    def on2(query: str) -> str:
        return subprocess.run(["ssh", "-F", both.ssh_config, "host2", f"{COMPOSE} exec -T postgres psql -U rag "
                               "-d rag -Atq"], input=query, capture_output=True, text=True, timeout=300).stdout.strip()

    assert on2("SELECT count(*) FROM docs;") == str(ROWS)
    assert not gateway_running(both), "host1 no longer takes writes"
    for name, key in keys.items():
        r = httpx.get(f"{url2}/v1/models", verify=False, timeout=60, headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200, (name, r.status_code)
    password = (rebuilt["admin"] / "host1" / "postgres_password").read_text().strip()
    assert (rebuilt["admin"] / "host2" / "postgres_password").read_text().strip() == password
    backup = cli(env, "backup", str(SANDBOX_INVENTORY), "--host", "host2")
    assert backup.returncode == 0 and f"table public.docs: {ROWS} rows" in backup.stdout, backup.stderr[-3000:]
