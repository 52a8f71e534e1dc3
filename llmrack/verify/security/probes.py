"""Probes of the security controls: one read of the host per family (cached), judged per control.

Kernel-wide state (sysctl values, the audit rule list) belongs to the kernel: on a host that is a container
sharing its kernel (``/proc/sys`` read-only, ``auditctl`` refused) the live value is not the host's to set,
so such a control passes only on the live value, and otherwise reports "not applicable" when the host's
configuration holds the value (and fails when it does not).
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from llmrack.verify.checks import REGISTRY, Check, CheckContext, ChecklistLine, Outcome, bad, not_applicable, ok
from llmrack.verify.security.controls import Control

WAIVERS = Path(__file__).with_name("waivers.yaml")
PROJECT_WAIVERS = "security-waivers.yaml"


# ---------------------------------------------------------------------------------------------- waivers


def load_waivers(project_dir: str | Path | None) -> dict[str, str]:
    """Control id (or id prefix ending in ``.``) -> reason, built-in first, then the project's file."""
    out: dict[str, str] = {}
    for path in (WAIVERS, Path(project_dir or ".") / PROJECT_WAIVERS):
        if not path.is_file():
            continue
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        for item in data:
            if not isinstance(item, dict) or not item.get("id") or not str(item.get("reason", "")).strip():
                raise ValueError(f"{path}: each waiver needs an id and a reason")
            out[str(item["id"])] = str(item["reason"]).strip()
    return out


def waiver_of(cid: str, waivers: dict[str, str]) -> str | None:
    return waivers.get(cid)


# ---------------------------------------------------------------------------------------------- reads


def cached(ctx: CheckContext, key: str, cmd: str) -> tuple[int, str]:
    """(exit status, output) of ``cmd`` on the host, once per run (the status travels in the output: an
    exit status of 255 would read as an SSH failure)."""
    k = f"sec:{key}"
    if k not in ctx.cache:
        _, out, err = ctx.run(f"{{ {cmd}\n}} 2>&1; echo \"@rc=$?\"")
        body, _, rc = (out or "").rpartition("@rc=")
        ctx.cache[k] = (int(rc.strip()) if rc.strip().isdigit() else 1, body)
    return ctx.cache[k]


def shared_kernel(ctx: CheckContext) -> bool:
    """The host is a container whose /proc/sys is read-only: the kernel is not the host's own."""
    _, out = cached(ctx, "ro-proc-sys", "awk '$2 == \"/proc/sys\" {print $4}' /proc/mounts")
    return any(opt.split(",")[0] == "ro" for opt in out.split())


def sysctl_live(ctx: CheckContext) -> dict[str, str]:
    _, out = cached(ctx, "sysctl-a", "sysctl -a 2>/dev/null")
    vals = {}
    for line in out.splitlines():
        k, sep, v = line.partition(" = ")
        if sep:
            vals[k.strip()] = " ".join(v.split())
    return vals


def sysctl_configured(ctx: CheckContext) -> dict[str, str]:
    """What systemd-sysctl would apply at boot (its own ordering, last assignment wins)."""
    _, out = cached(ctx, "sysctl-conf", "systemd-analyze cat-config sysctl.d 2>/dev/null; "
                                        "cat /etc/sysctl.conf 2>/dev/null")
    vals = {}
    for line in out.splitlines():
        line = line.split("#", 1)[0].strip()
        k, sep, v = line.partition("=")
        if sep and not k.startswith(";"):
            vals[k.strip().lstrip("-").replace("/", ".")] = v.strip()
    return vals


def sshd_t(ctx: CheckContext) -> dict[str, str]:
    _, out = cached(ctx, "sshd-T", "/usr/sbin/sshd -T 2>/dev/null")
    vals: dict[str, str] = {}
    for line in out.splitlines():
        k, _, v = line.strip().partition(" ")
        vals.setdefault(k.lower(), v.strip())
    return vals


def audit_state(ctx: CheckContext) -> tuple[bool, str]:
    """(live, rules text): ``auditctl -l`` when the kernel answers, else the rules auditd would load."""
    rc, out = cached(ctx, "auditctl", "auditctl -l 2>&1")
    if rc == 0 and "No rules" not in out:
        return True, out
    _, files = cached(ctx, "audit-rules", "cat /etc/audit/rules.d/*.rules 2>/dev/null")
    return False, files


def stat_of(ctx: CheckContext, path: str) -> tuple[int, str, str] | None:
    rc, out = cached(ctx, f"stat:{path}", f"stat -c '%a %U %G' {shlex.quote(path)} 2>/dev/null")
    parts = out.split()
    if rc != 0 or len(parts) != 3:
        return None
    return int(parts[0], 8), parts[1], parts[2]


def modprobe_conf(ctx: CheckContext) -> str:
    _, out = cached(ctx, "modprobe", "cat /etc/modprobe.d/*.conf /lib/modprobe.d/*.conf /usr/lib/modprobe.d/*.conf "
                                     "2>/dev/null")
    return out


def installed_packages(ctx: CheckContext) -> set[str]:
    _, out = cached(ctx, "dpkg", "dpkg-query -W -f='${Package} ${db:Status-Status}\\n' 2>/dev/null")
    return {p for p, _, s in (line.partition(" ") for line in out.splitlines()) if s.strip() == "installed"}


def containers(ctx: CheckContext) -> list[dict[str, Any]]:
    rc, out = cached(ctx, "docker-inspect", "ids=$(docker ps -q 2>/dev/null); [ -n \"$ids\" ] && docker inspect $ids")
    if rc != 0 or not out.strip().startswith("["):
        return []
    return json.loads(out)


# ---------------------------------------------------------------------------------------------- judges


def j_sysctl(ctx: CheckContext, c: Control) -> Outcome:
    key, want = c.params["key"], c.params["want"]
    live = sysctl_live(ctx).get(key)
    conf = sysctl_configured(ctx).get(key)
    if live in want and (conf is None or conf in want):
        return ok(f"{key} = {live}", live, list(want))
    if shared_kernel(ctx):
        if conf in want:
            return not_applicable(f"{key} = {conf} in sysctl.d; the live value ({live}) is the shared kernel's "
                                        "(a container host cannot set it)", list(want))
        return bad(f"{key}: not configured in sysctl.d ({conf}); live {live}", conf, list(want))
    return bad(f"{key} = {live} (configured: {conf})", live, list(want))


def _sshd_value_ok(value: str | None, want: tuple[str, ...]) -> bool:
    if value is None:
        return False
    for w in want:
        if w.startswith("<=") and value.isdigit() and int(value) <= int(w[2:]):
            return True
        if w.startswith("!") and value != w[1:]:
            return True
        if value.lower() == w:
            return True
    return False


def j_sshd(ctx: CheckContext, c: Control) -> Outcome:
    vals = sshd_t(ctx)
    if not vals:
        return bad("sshd -T printed nothing (is openssh-server installed?)")
    v = vals.get(c.params["key"])
    if c.params["key"] == "debianbanner":  # sshd -T does not print it: read the version string sshd sends
        _, hello = cached(ctx, "ssh-hello", "timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/22; head -n1 <&3'")
        hello = hello.strip()
        return (bad if "debian" in hello.lower() or "ubuntu" in hello.lower() else ok)(f"sshd says {hello!r}")
    return (ok if _sshd_value_ok(v, c.params["want"]) else bad)(f"sshd {c.params['key']} {v}", v,
                                                                  list(c.params["want"]))


def j_sshd_algos(ctx: CheckContext, c: Control) -> Outcome:
    algos = (sshd_t(ctx).get(c.params["key"]) or "").split(",")
    weak = [a for a in algos if any(w in a for w in c.params["weak"]) and not a.startswith("rsa-sha2")]
    if not algos or algos == [""]:
        return bad(f"sshd {c.params['key']}: not printed")
    return (bad if weak else ok)(f"{c.params['key']}: {','.join(weak) or 'no weak algorithm'}", algos)


def j_moduli(ctx: CheckContext, c: Control) -> Outcome:
    rc, out = cached(ctx, "moduli", "awk '!/^#/ && NF >= 7 && $5 < 3071 {n++} END {print n+0}' /etc/ssh/moduli")
    n = int(out.strip() or 0) if rc == 0 else -1
    return (ok if n == 0 else bad)(f"{n} group(s) under 3072 bits in /etc/ssh/moduli", n, 0)


def j_login(ctx: CheckContext, c: Control) -> Outcome:
    rc, out = cached(ctx, "login", "id -un; sudo -n true && echo sudo-ok")
    user = out.splitlines()[0] if out else "?"
    return (ok if rc == 0 and "sudo-ok" in out else bad)(f"logged in over SSH as {user}; sudo: "
                                                        f"{'yes' if 'sudo-ok' in out else 'no'}", user)


def j_audit(ctx: CheckContext, c: Control) -> Outcome:
    live, rules = audit_state(ctx)
    word = c.params["word"]
    found = any(re.search(rf"(^|[\s,=]){re.escape(word)}($|[\s,])", line) for line in rules.splitlines())
    if live:
        return (ok if found else bad)(f"{'loaded' if found else 'no'} audit rule for {word}")
    if not found:
        return bad(f"no audit rule for {word} in /etc/audit/rules.d")
    return not_applicable(f"rule for {word} in /etc/audit/rules.d; not loaded: the kernel's audit system "
                                "refuses this host (a container)")


def j_file(ctx: CheckContext, c: Control) -> Outcome:
    st = stat_of(ctx, c.params["path"])
    if st is None:
        return not_applicable(f"{c.params['path']} does not exist")
    mode, owner, group = st
    good = not (mode & ~c.params["mode"]) and owner == c.params["owner"] and group in c.params["groups"]
    return (ok if good else bad)(f"{c.params['path']} {mode:o} {owner}:{group}", f"{mode:o} {owner}:{group}",
                                 f"<= {c.params['mode']:o} {c.params['owner']}:{'|'.join(c.params['groups'])}")


def j_module(ctx: CheckContext, c: Control) -> Outcome:
    mod = c.params["module"]
    conf = modprobe_conf(ctx)
    names = {mod, mod.replace("-", "_")}
    install = any(re.match(rf"^\s*install\s+{re.escape(n)}\s+/bin/(false|true)", ln) for n in names
                  for ln in conf.splitlines())
    black = any(re.match(rf"^\s*blacklist\s+{re.escape(n)}\s*$", ln) for n in names for ln in conf.splitlines())
    _, loaded = cached(ctx, "lsmod", "cut -d' ' -f1 /proc/modules")
    if mod.replace("-", "_") in loaded.split() and not shared_kernel(ctx):
        return bad(f"{mod} is loaded")
    return (ok if install and black else bad)(f"{mod}: install /bin/false {install}, blacklisted {black}")


def j_module_allowed(ctx: CheckContext, c: Control) -> Outcome:
    mod = c.params["module"]
    blocked = [ln for ln in modprobe_conf(ctx).splitlines()
               if re.match(rf"^\s*(install|blacklist)\s+{mod}\b", ln) and "modprobe" not in ln]
    return (bad if blocked else ok)(f"{mod}: {blocked[0] if blocked else 'not blocked'}")


def j_absent(ctx: CheckContext, c: Control) -> Outcome:
    pkg = c.params["package"]
    there = pkg in installed_packages(ctx)
    return (bad if there else ok)(f"{pkg} {'installed' if there else 'absent'}")


def j_present(ctx: CheckContext, c: Control) -> Outcome:
    pkg = c.params["package"]
    there = pkg in installed_packages(ctx)
    return (ok if there else bad)(f"{pkg} {'installed' if there else 'not installed'}")


def j_aging(ctx: CheckContext, c: Control) -> Outcome:
    """Password aging of each account with a password hash and a login shell (uid >= 1000), from /etc/shadow."""
    rc, out = cached(ctx, "shadow-aging",
                     "getent passwd | awk -F: '$3 >= 1000 && $3 < 60000 && $7 !~ /(nologin|false)$/ {print $1}' | "
                     "while read -r u; do getent shadow \"$u\" || exit 1; done")
    if rc != 0:
        return bad(f"cannot read /etc/shadow: {out.strip()[:200]}")
    pos = {"min": 3, "max": 4, "warn": 5}[c.params["field"]]
    op, limit = c.params["bound"][:2], int(c.params["bound"][2:])
    off = []
    for line in out.splitlines():
        f = line.split(":")
        if len(f) < 6 or not f[1].startswith("$"):
            continue  # locked or key-only accounts have no password to age
        v = int(f[pos]) if f[pos].strip().isdigit() else None
        if v is None or not (v <= limit if op == "<=" else v >= limit):
            off.append(f"{f[0]}: {c.params['field']} {f[pos] or 'unset'}")
    return (bad if off else ok)("; ".join(off) or "every account with a password complies", len(off), 0,
                                violations=off)


def j_line(ctx: CheckContext, c: Control) -> Outcome:
    path, regex = c.params["path"], c.params["regex"]
    rc, out = cached(ctx, f"grep:{path}:{regex}", f"grep -hE {shlex.quote(regex)} {path} 2>/dev/null")
    lines = [ln for ln in out.splitlines() if ln.strip()]
    return (ok if rc == 0 and lines else bad)(f"{path}: {lines[0].strip() if lines else 'no line matches'}")


def j_service(ctx: CheckContext, c: Control) -> Outcome:
    svc = c.params["service"]
    _, out = cached(ctx, f"svc:{svc}", f"systemctl is-active {svc}; systemctl is-enabled {svc}")
    states = out.split()
    if svc == "auditd" and shared_kernel(ctx) and "active" not in states[:1]:
        return not_applicable("auditd cannot run in a container sharing the machine's kernel")
    return (ok if states[:2] == ["active", "enabled"] else bad)(f"{svc}: {' '.join(states)}")


def j_jail(ctx: CheckContext, c: Control) -> Outcome:
    rc, out = cached(ctx, f"jail:{c.params['jail']}", f"fail2ban-client status {c.params['jail']} 2>&1")
    first = out.strip().splitlines()[0] if out.strip() else str(rc)
    return (ok if rc == 0 and "Status for the jail" in out else bad)(f"jail {c.params['jail']}: {first}")


SENSITIVE = ("/", "/boot", "/dev", "/etc", "/lib", "/proc", "/sys", "/usr")


def container_violation(prop: str, c: dict[str, Any]) -> str | None:
    hc, cfg = c.get("HostConfig") or {}, c.get("Config") or {}
    if prop == "cap_drop_all":
        return None if "ALL" in [x.upper() for x in hc.get("CapDrop") or []] else "CapDrop lacks ALL"
    if prop == "no_new_privileges":
        return None if any(o.startswith("no-new-privileges") for o in hc.get("SecurityOpt") or []) else "no NNP"
    if prop == "not_privileged":
        return "privileged" if hc.get("Privileged") else None
    if prop == "pids_limit":
        return None if (hc.get("PidsLimit") or 0) > 0 else "no pids limit"
    if prop == "memory_limit":
        return None if (hc.get("Memory") or 0) > 0 else "no memory limit"
    if prop == "read_only_rootfs":
        return None if hc.get("ReadonlyRootfs") else "writable root filesystem"
    if prop == "non_root":
        user = cfg.get("User") or "root"
        return None if user not in ("root", "0", "0:0") else f"user {user}"
    if prop == "healthcheck":
        test = (cfg.get("Healthcheck") or {}).get("Test") or []
        return None if test and test[0] != "NONE" else "no healthcheck"
    if prop == "no_docker_socket":
        socks = [m.get("Source") for m in c.get("Mounts") or [] if str(m.get("Source", "")).endswith(("docker.sock",
                                                                                                  "containerd.sock"))]
        return f"mounts {socks[0]}" if socks else None
    if prop == "no_host_ipc":
        return "host IPC" if hc.get("IpcMode") == "host" else None
    if prop == "no_host_uts":
        return "host UTS" if hc.get("UTSMode") == "host" else None
    if prop == "no_sensitive_mounts":
        rw = [m.get("Source") for m in c.get("Mounts") or [] if m.get("RW") and m.get("Source") in SENSITIVE]
        return f"mounts {rw[0]} writable" if rw else None
    if prop == "restart_policy":
        rp = hc.get("RestartPolicy") or {}
        return None if rp.get("Name") in ("unless-stopped", "always", "no", "") or (
            rp.get("Name") == "on-failure" and 0 < (rp.get("MaximumRetryCount") or 0) <= 5) else f"restart {rp}"
    raise ValueError(prop)


def j_container(ctx: CheckContext, c: Control) -> Outcome:
    found = containers(ctx)
    if not found:
        return not_applicable("no running container on this host")
    waived = ctx.cache.get("sec:waivers") or {}
    bad_ones = []
    for cont in found:
        name = cont.get("Name", "").lstrip("/")
        service = (cont.get("Config", {}).get("Labels") or {}).get("com.docker.compose.service", name)
        if waived.get(f"{c.id}:{service}"):
            continue
        why = container_violation(c.params["property"], cont)
        if why:
            bad_ones.append(f"{name}: {why}")
    return (bad if bad_ones else ok)("; ".join(bad_ones) or f"{len(found)} container(s) comply", len(bad_ones), 0,
                                     violations=bad_ones)


JUDGES = {"sysctl": j_sysctl, "sshd": j_sshd, "sshd_algos": j_sshd_algos, "moduli": j_moduli, "login": j_login,
          "audit": j_audit, "file": j_file, "module": j_module, "module_allowed": j_module_allowed,
          "absent": j_absent, "present": j_present, "aging": j_aging, "line": j_line, "service": j_service,
          "jail": j_jail, "container": j_container}


def run_control(ctx: CheckContext, c: Control) -> Outcome:
    if "sec:waivers" not in ctx.cache:
        ctx.cache["sec:waivers"] = load_waivers(getattr(ctx.inventory, "project_dir", None))
    reason = waiver_of(c.id, ctx.cache["sec:waivers"])
    outcome = JUDGES[c.family](ctx, c)
    if reason and outcome.status != "pass":
        return Outcome("not_applicable", f"waived: {reason} (observed: {outcome.message})", outcome.value,
                       outcome.threshold, details={"waived": True, "reason": reason, "ref": c.ref})
    outcome.details = {**(outcome.details or {}), "ref": c.ref}
    return outcome


def register_controls(controls: list[Control]) -> None:
    for c in controls:
        if c.id in REGISTRY:
            continue
        REGISTRY[c.id] = Check(c.id, c.title, "security", ChecklistLine(c.ref, f"{c.ref}: {c.title}", "llmrack"),
                               lambda ctx, c=c: run_control(ctx, c))
