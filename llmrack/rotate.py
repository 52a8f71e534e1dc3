"""``llmrack rotate-secrets``: new API keys for a gateway's clients and a new vector-store password, asked for.

A deploy never replaces a secret a running service or a client depends on: it reads the host's secret files
back first and the host's values win (:func:`llmrack.secrets.adopt_host_secrets`). A rotation works with that
rule instead of around it: it changes the host's copy itself, together with what runs, and only then the
admin machine's, so the read-back of every later deploy finds the rotated values and keeps them. Nothing else
ever puts a new value on a host.

1. read the host's secrets back (the host wins, as in a deploy): the keys retired are the ones clients hold;
2. postgres: ``ALTER ROLE`` in the running container (the SQL on stdin); when it fails nothing else changes.
   Then the host's ``secrets/postgres_password`` (a failure there puts the old password back), the admin copy,
   and a restart of what read the old one at start (the monitoring project's postgres-exporter); smoke, verify
   and the acceptance suite read the admin copy;
3. API keys: the old keys go to ``<secrets>/<host>/retired_api_keys.json`` with their expiry time
   (:mod:`llmrack.retired_keys`), the new ones to the host's ``secrets/api_keys.json``, then the admin copy;
4. converge ``deploys/stack.py --limit HOST``: the gateway's key map gets the new keys and the retired ones
   still in their grace period (nginx -t, reload);
5. check through the gateway: every new key answers 200, every old one 200 during the grace period and 401
   once it is over; after a postgres rotation, the smoke test's RAG round trip logs in with the new password.

Bad input (unknown host or client, a grace period out of range, a host without the stack, a malformed secret
file) is an :class:`LlmrackError` raised before anything changes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from llmrack import retired_keys as rk
from llmrack import rotate_host as rh
from llmrack.config import HostSpec, Inventory
from llmrack.errors import LlmrackError
from llmrack.rebuild import converge, host_of
from llmrack.secrets import (
    API_KEYS,
    adopt_host_secrets,
    host_dir,
    new_api_key,
    new_token,
    parse_host_secrets,
    read_api_keys,
    read_token,
    write_private,
)
from llmrack.stack.compose import StackPaths
from llmrack.stack.smoke import smoke_inventory
from llmrack.stack.smoke_http import TransportFailed, request
from llmrack.tls import trust_anchor

Log = Callable[[str], Any]
MAX_GRACE_HOURS = 24 * 90
DEPLOY = "stack"  # writes the stack's secrets and the gateway's configuration


@dataclass(frozen=True)
class RotationPlan:
    spec: HostSpec
    inventory: Inventory
    clients: list[str]  # whose API keys rotate (empty: none)
    postgres: bool
    grace_hours: int
    now: datetime
    notes: list[str] = field(default_factory=list)

    @property
    def project(self) -> Path:
        return Path(self.inventory.project_dir)

    @property
    def expires(self) -> datetime:
        return rk.grace_end(self.now, self.grace_hours)

    @property
    def keys_path(self) -> Path:
        return host_dir(self.project, self.spec.name) / API_KEYS

    @property
    def retired_path(self) -> Path:
        return rk.retired_path(self.project, self.spec.name)

    @property
    def postgres_path(self) -> Path:
        return host_dir(self.project, self.spec.name) / "postgres_password"

    def lines(self) -> list[str]:
        """What the rotation will do, for the confirmation (names, paths and times, never a value)."""
        name, out = self.spec.name, []
        if self.clients:
            if self.grace_hours:
                until = (f"their old keys are accepted until {rk.format_time(self.expires)} ({self.grace_hours} h), "
                         "then dropped by the first deploy after that time")
            else:
                until = "their old keys stop now (and any key they retired earlier)"
            out.append(f"new API keys for {', '.join(self.clients)}: {until}; the new keys go to {self.keys_path}")
        if self.postgres:
            pg = self.spec.profile.stack.vector_store.pgvector
            out.append(f"new password of the database role {pg.user!r}: ALTER ROLE in the running postgres "
                       f"container, then {name}'s secrets/postgres_password and {self.postgres_path}; "
                       "postgres-exporter restarts")
        out.append(f"then converge deploys/{DEPLOY}.py on {name} (the gateway reloads its key map) and check "
                   "through the gateway")
        return [f"plan for {name}:", *(f"  {line}" for line in [*self.notes, *out])]


def plan_rotation(inventory: Inventory, host: str, *, api_keys: bool, postgres: bool, clients: Sequence[str] = (),
                  grace_hours: int = 24, now: datetime | None = None) -> RotationPlan:
    """Check every input against the inventory and the admin machine's secrets; changes nothing, contacts no host.

    Neither ``api_keys`` nor ``postgres``: both (postgres where the host's vector store is pgvector)."""
    spec = host_of(inventory, host)
    if not 0 <= grace_hours <= MAX_GRACE_HOURS:
        raise LlmrackError(f"must be a whole number of hours from 0 to {MAX_GRACE_HOURS}, not {grace_hours}",
                           field="--grace-hours")
    if not spec.has_role("gateway"):
        raise LlmrackError(f"{host} has no gateway role (roles: {', '.join(spec.roles)}): it holds no API keys or "
                           "vector-store password to rotate", source=inventory.path, field=f"{host}.roles")
    stack = spec.profile.stack
    explicit = api_keys or postgres
    if clients and explicit and not api_keys:
        raise LlmrackError("names clients whose API keys rotate: give --api-keys too (or leave --postgres out)",
                           field="--client")
    known = stack.gateway.api_clients
    unknown = [c for c in clients if c not in known]
    if unknown:
        raise LlmrackError(f"no client {', '.join(map(repr, unknown))} on {host} (its clients: {', '.join(known)})",
                           source=inventory.path, field="--client")
    kind, notes = stack.vector_store.kind, []
    if postgres and kind != "pgvector":
        raise LlmrackError(f"{host}'s vector store is {kind}, not pgvector: there is no postgres password",
                           source=inventory.path, field="stack.vector_store.kind")
    want_pg = postgres or (not explicit and kind == "pgvector")
    if not explicit and kind != "pgvector":
        notes.append(f"no postgres password: {host}'s vector store is {kind}")
    want_keys = api_keys or not explicit
    chosen = [c for c in known if c in clients] if clients else list(known)
    plan = RotationPlan(spec=spec, inventory=inventory, clients=chosen if want_keys else [], postgres=want_pg,
                        grace_hours=grace_hours, now=now or rk.utc_now(), notes=notes)
    if plan.clients and not read_api_keys(plan.keys_path):
        raise LlmrackError(f"no API keys of {host} on this machine: the stack was never deployed from here "
                           "(deploy it first, or copy the admin machine's secrets)", source=str(plan.keys_path))
    if plan.postgres:
        rh.alter_role_sql(stack.vector_store.pgvector.user, "x")  # the role name is checked before any change
        if read_token(plan.postgres_path, what="password") is None:
            raise LlmrackError(f"no postgres password of {host} on this machine: the stack was never deployed from "
                               "here", source=str(plan.postgres_path))
    rk.read_retired(plan.retired_path)  # a malformed file stops here, not half way
    return plan


# --------------------------------------------------------------------------------------------------- the rotation


@dataclass
class RotationResult:
    clients: list[str]
    postgres: bool
    keys_path: Path
    expires: datetime
    restarted: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)


def _rotate_postgres(plan: RotationPlan, log: Log) -> list[str]:
    spec = plan.spec
    old = read_token(plan.postgres_path, what="password")
    new = new_token()
    rh.alter_role(spec, new)  # raises: nothing else changed
    host_file = f"{StackPaths.of(spec.profile.stack).secrets_dir}/postgres_password"
    try:
        rh.put_secret_file(spec, host_file, new + "\n")
    except RuntimeError:
        if old:
            rh.alter_role(spec, old)  # the database takes the password the files still hold
        raise
    write_private(plan.postgres_path, new + "\n")
    log(f"{spec.name}: postgres password rotated ({host_file}, {plan.postgres_path})")
    return rh.restart_postgres_consumers(spec)


def _keys_text(keys: dict[str, str]) -> str:
    return json.dumps(keys, indent=2, sort_keys=True) + "\n"  # the form the deploy writes (stack.secrets)


def _rotate_api_keys(plan: RotationPlan, log: Log) -> tuple[dict[str, str], dict[str, str]]:
    """(new keys, old keys) of the rotated clients; the host's copy first, then the admin machine's."""
    spec = plan.spec
    current = read_api_keys(plan.keys_path) or {}
    old = {c: current[c] for c in plan.clients if c in current}
    new = {c: new_api_key() for c in plan.clients}
    keys = {**current, **new}
    before = rk.read_retired(plan.retired_path)
    had_file = plan.retired_path.exists()
    rk.write_retired(plan.retired_path, rk.retire(before, old, plan.expires, plan.now))
    try:
        rh.put_secret_file(spec, f"{StackPaths.of(spec.profile.stack).secrets_dir}/{API_KEYS}", _keys_text(keys))
    except RuntimeError:
        if had_file:
            rk.write_retired(plan.retired_path, before)
        else:
            plan.retired_path.unlink()
        raise
    write_private(plan.keys_path, _keys_text(keys))
    log(f"{spec.name}: API keys of {', '.join(plan.clients)} rotated (admin copy: {plan.keys_path})")
    return new, old


def _status(url: str, key: str, ca: Any) -> int | str:
    try:
        return request("GET", url, api_key=key, ca=ca, timeout=30)[0]
    except TransportFailed as exc:
        return f"no answer ({exc})"


def check_keys(plan: RotationPlan, new: dict[str, str], old: dict[str, str], *, wait_s: float = 30) -> list[str]:
    """Every new key answers 200 at the gateway, every old one 200 in its grace period and 401 after it (the
    gateway may still be reloading: asked again for up to ``wait_s``). Returns one line per client."""
    stack = plan.spec.profile.stack
    url = f"https://{plan.spec.address}:{stack.gateway.https_port}/v1/models"
    ca = trust_anchor(plan.project, plan.spec.name, stack.gateway.tls)
    old_status = 200 if plan.expires > rk.utc_now() else 401
    deadline = time.monotonic() + wait_s
    while True:
        bad, lines = [], []
        for client in plan.clients:
            got_new = _status(url, new[client], ca)
            got_old = _status(url, old[client], ca) if client in old else None
            lines.append(f"{client}: new key {got_new}" + (f", old key {got_old}" if got_old is not None else ""))
            if got_new != 200 or (got_old is not None and got_old != old_status):
                bad.append(f"{client} (new key: {got_new}, old key: {got_old}, old key expected {old_status})")
        if not bad:
            return lines
        if time.monotonic() > deadline:
            raise RuntimeError(f"{plan.spec.name}: the gateway does not answer as rotated: {'; '.join(bad)}")
        time.sleep(2)


def check_postgres(plan: RotationPlan, log: Log, *, wait_s: float = 300) -> str:
    """The smoke test of the host (its RAG round trip logs into pgvector with the admin's new password)."""
    one = plan.inventory.model_copy(update={"hosts": [plan.spec]})
    deadline = time.monotonic() + wait_s
    while True:
        results = smoke_inventory(one, hosts={plan.spec.name}, log=log)
        bad = [r.line() for r in results if not r.ok]
        if not bad:
            rag = [r for r in results if r.name.endswith("rag round trip")]
            return f"smoke: {len(results)} checks pass" + (f" ({rag[0].detail})" if rag else "")
        if time.monotonic() > deadline or not any("HTTP 503" in b for b in bad):
            raise RuntimeError(f"{plan.spec.name} does not pass the smoke test after the rotation: {'; '.join(bad)}")
        time.sleep(10)


def rotate(plan: RotationPlan, inventory_path: Path, *, log: Log = print) -> RotationResult:
    """Carry out ``plan`` (see the module's docstring); RuntimeError when work on the host failed."""
    spec = plan.spec
    found = parse_host_secrets(rh.read_host_secrets(spec), where=f"{spec.name}:"
                                                                 f"{StackPaths.of(spec.profile.stack).secrets_dir}")
    for line in adopt_host_secrets(plan.project, spec.name, found):
        log(f"{spec.name}: {line}")
    result = RotationResult(clients=plan.clients, postgres=plan.postgres, keys_path=plan.keys_path,
                            expires=plan.expires)
    if plan.postgres:
        result.restarted = _rotate_postgres(plan, log)
    new, old = _rotate_api_keys(plan, log) if plan.clients else ({}, {})
    log(f"{spec.name}: converge deploys/{DEPLOY}.py")
    converge(inventory_path, plan.project, DEPLOY, spec.name, log=log)
    if plan.clients:
        result.checks += check_keys(plan, new, old)
    if plan.postgres:
        result.checks.append(check_postgres(plan, log))
    return result
