"""Carrying out a migration planned by ``llmrack.migrate``: converges with pyinfra, the backup role's
scripts over SSH, counts and golden prompts, and the way back when a check fails."""

from __future__ import annotations

import shlex
import time
from pathlib import Path

from llmrack import backup as b
from llmrack import migrate as m
from llmrack import rebuild as r
from llmrack.config import HostSpec, Inventory
from llmrack.errors import LlmrackError
from llmrack.stack.secrets import restic_password, stack_secrets
from llmrack.stack.smoke import smoke_inventory
from llmrack.tls import trust_anchor

SOURCE_PASSWORD = f"{b.CONFIG_DIR}/source-password"


def _compose(spec: HostSpec) -> str:
    stack = spec.profile.stack
    return (f"docker compose --project-name {shlex.quote(stack.project_name)} "
            f"--file {shlex.quote(stack.directory + '/compose.yaml')}")


def _writers(spec: HostSpec, action: str) -> None:
    done = r.remote(spec, f"{_compose(spec)} {action} {' '.join(m.WRITERS)}", timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{action} of the writers on {spec.name} failed: {done.stderr.strip()[-500:]}")


def _backup_now(inventory_path: Path, project: Path, spec: HostSpec, log: r.Log) -> b.BackupRun:
    if not spec.profile.backup.enabled:
        raise LlmrackError(f"backups are disabled for {spec.name}: a migration starts from one",
                           field="backup.enabled")
    r.converge(inventory_path, project, "backup", spec.name, log=log)
    run, text, rc = r.run_backup(spec)
    if rc != 0 or run is None:
        log(text[-3000:])
        raise RuntimeError(f"the backup of {spec.name} before the migration failed; nothing was changed")
    return run


def counts_on(spec: HostSpec, tables: list[str]) -> dict[str, int]:
    done = r.remote(spec, m.count_command(spec, tables), timeout=600)
    return m.parse_counts(done.stdout)


def golden(inventory: Inventory, spec: HostSpec) -> list[str]:
    stack = spec.profile.stack
    keys = stack_secrets(Path(inventory.project_dir), spec.name, list(stack.gateway.api_clients)).api_keys
    model = stack.models[0].public_name
    ca = trust_anchor(inventory.project_dir, spec.name, stack.gateway.tls)
    return m.golden_answers(f"https://{spec.address}:{stack.gateway.https_port}",
                            keys[stack.gateway.api_clients[0]], model, ca=ca)


def _check(inventory: Inventory, spec: HostSpec, before: dict[str, int], answers: list[str] | None,
           *, same_model: bool) -> list[str]:
    """What is wrong on ``spec`` after a migration (empty: nothing): rows lost, golden prompts, smoke."""
    problems = []
    after = counts_on(spec, list(before))
    problems += [f"{what}: {n} rows before, {a} after" for what, (n, a) in m.lost_rows(before, after).items()]
    if spec.has_role("gateway"):
        try:
            now = golden(inventory, spec)
            if same_model and answers is not None and now != answers:
                problems.append("the golden prompts are answered differently by the same model")
        except Exception as exc:  # an HTTP failure, a timeout, an empty answer: the check failed
            problems.append(f"golden prompts: {exc}")
        one = inventory.model_copy(update={"hosts": [spec]})
        problems += [x.line() for x in smoke_inventory(one, log=lambda _: None) if not x.ok]
    return problems


def in_place(inventory_path: Path, inventory: Inventory, host: str, tier: str, *, log: r.Log = print) -> dict:
    """Converge ``host`` with ``tier``; back to its previous tier when a check fails. Returns figures."""
    project = Path(inventory.project_dir)
    old = m.spec_in(inventory, host)
    wrapper, new = m.retiered(inventory_path, inventory, host, tier)
    same = [x.name for x in old.profile.stack.models] == [x.name for x in new.profile.stack.models]
    run = _backup_now(inventory_path, project, old, log)
    log(f"{host}: backed up as snapshot {run.snapshot} ({sum(run.counts.values())} rows/points)")
    answers = golden(inventory, old) if old.has_role("gateway") else None
    t0 = time.monotonic()
    log(f"{host}: converge with tier {tier}")
    try:
        r.converge(wrapper, project, "full_stack", host, log=log)
        problems = _check(inventory.model_copy(update={"hosts": [new]}), new, run.counts, answers,
                          same_model=same)
    except RuntimeError as exc:
        problems = [str(exc)]
    figures = {"converge_s": round(time.monotonic() - t0, 1), "rows_before": sum(run.counts.values())}
    if problems:
        log(f"{host}: tier {tier} failed its checks ({'; '.join(problems)}): back to tier {old.tier}")
        r.converge(Path(inventory_path), project, "full_stack", host, log=log)
        again = _check(inventory, old, run.counts, answers, same_model=True)
        state = "and passes its checks again" if not again else f"but still fails: {'; '.join(again)}"
        raise RuntimeError(f"{host} did not pass on tier {tier}; it runs tier {old.tier} again {state}")
    figures["rows_after"] = sum(counts_on(new, list(run.counts)).values())
    return figures


def host_to_host(inventory_path: Path, inventory: Inventory, src_name: str, dst_name: str, *,
                 log: r.Log = print) -> dict:
    """``dst`` takes over ``src``'s service and data; ``src`` serves again when a check fails."""
    project = Path(inventory.project_dir)
    src, dst = m.spec_in(inventory, src_name), m.spec_in(inventory, dst_name)
    log(f"{dst_name}: converge (deploys/full_stack.py)")
    r.converge(inventory_path, project, "full_stack", dst_name, log=log)
    answers = golden(inventory, src) if src.has_role("gateway") else None
    same = [x.name for x in src.profile.stack.models] == [x.name for x in dst.profile.stack.models]
    t0 = time.monotonic()
    log(f"{src_name}: stop the writers, final backup")
    _writers(src, "stop")
    try:
        run = _backup_now(inventory_path, project, src, log)
        log(f"{dst_name}: restore {src_name}'s snapshot {run.snapshot} with its secrets")
        done = _send(dst, f"umask 077 && cat > {SOURCE_PASSWORD}", restic_password(project, src_name) + "\n")
        if done != 0:
            raise RuntimeError(f"cannot give {dst_name} the password of {src_name}'s repository")
        env = (f"LLMRACK_SOURCE_REPOSITORY={shlex.quote(src.profile.backup.repository)} "
               f"LLMRACK_SOURCE_PASSWORD_FILE={SOURCE_PASSWORD} ")
        res = r.remote(dst, env + b.restore_command(run.snapshot, with_secrets=True))
        counts = b.parse_restore_output(res.stdout)
        if res.returncode != 0:
            log(res.stdout[-2000:] + res.stderr[-2000:])
            raise RuntimeError(b.restore_failure(dst_name, counts, res.returncode,
                                                 directory=dst.profile.backup.directory))
        log(f"{dst_name}: reconcile (deploys/stack.py)")
        r.converge(inventory_path, project, "stack", dst_name, log=log)
        problems = _check(inventory, dst, run.counts, answers, same_model=same)
        if problems:
            raise RuntimeError(f"{dst_name} does not pass its checks: {'; '.join(problems)}")
        _adopt_repository(dst, src)
    except (RuntimeError, LlmrackError) as exc:
        log(f"{src_name}: start its writers again ({exc})")
        _writers(src, "start")
        raise
    finally:
        r.remote(dst, f"rm -f {SOURCE_PASSWORD}", timeout=60)
    rows_after = sum(counts_on(dst, list(run.counts)).values())
    return {"interruption_s": round(time.monotonic() - t0, 1), "rows_before": sum(run.counts.values()),
            "rows_after": rows_after}


def _send(spec: HostSpec, command: str, text: str) -> int:
    import subprocess

    done = subprocess.run(r.ssh_command(spec.connector, command), input=text, capture_output=True, text=True,
                          timeout=60)
    return done.returncode


def _adopt_repository(dst: HostSpec, src: HostSpec) -> None:
    """When ``dst`` backs up into the repository ``src`` used, its own password becomes a key of it."""
    if dst.profile.backup.repository != src.profile.backup.repository:
        return
    env = f". {b.ENV_FILE} && export RESTIC_REPOSITORY RESTIC_CACHE_DIR && "
    done = r.remote(dst, env + f"RESTIC_PASSWORD_FILE={b.PASSWORD_FILE} restic cat config > /dev/null 2>&1 || "
                    f"RESTIC_PASSWORD_FILE={SOURCE_PASSWORD} restic key add --new-password-file {b.PASSWORD_FILE}",
                    timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{dst.name} cannot open the shared repository with its own password: "
                           f"{done.stderr.strip()[-300:]}")
