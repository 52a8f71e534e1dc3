"""Probes of the controls in ``controls_system``: accounts and groups (one read of passwd, group, shadow and
shells), one file system scan, lines that must not be there, and unit states. Judging is done by pure functions
of what was read, so that each rule is unit-tested on crafted files."""

from __future__ import annotations

import re
import shlex
from collections import Counter
from dataclasses import dataclass

from llmrack.verify.checks import CheckContext, Outcome, bad, not_applicable, ok
from llmrack.verify.security.controls import Control
from llmrack.verify.security.controls_system import SCAN_PRUNE
from llmrack.verify.security.probes import JUDGES, cached, installed_packages, shared_kernel, stat_of

SPLIT = "@@llmrack-split@@"
UID_MIN = 1000
NO_SHELL_EXEMPT = {"root", "sync", "shutdown", "halt", "nfsnobody"}  # CIS 5.4.2.7's own exceptions


@dataclass
class Accounts:
    passwd: list[list[str]]
    group: list[list[str]]
    shadow: list[list[str]]
    shells: set[str]
    today: int  # days since the epoch

    @classmethod
    def parse(cls, text: str) -> Accounts:
        parts = (text.split(SPLIT) + [""] * 5)[:5]
        rows = [[line.split(":") for line in p.splitlines() if line.strip()] for p in parts[:3]]
        shells = {s.strip() for s in parts[3].splitlines()
                  if s.strip().startswith("/") and not s.strip().endswith(("nologin", "false"))}
        today = int(parts[4].strip()) if parts[4].strip().isdigit() else 0
        return cls(*rows, shells=shells, today=today)

    def interactive(self) -> list[list[str]]:
        """Accounts whose shell is a login shell of /etc/shells (root included)."""
        return [p for p in self.passwd if len(p) >= 7 and p[6] in self.shells]


def _dupes(values: list[str]) -> list[str]:
    return sorted(v for v, n in Counter(values).items() if n > 1)


def account_problems(rule: str, a: Accounts) -> list[str]:
    """What breaks ``rule`` in the account files (empty: nothing)."""
    pw = [p for p in a.passwd if len(p) >= 7]
    gr = [g for g in a.group if len(g) >= 3]
    sh = {s[0]: s for s in a.shadow if len(s) >= 3}
    gids = {g[2] for g in gr}
    if rule == "shadowed":
        return [f"{p[0]}: password field {p[1]!r}" for p in pw if p[1] != "x"]
    if rule == "shadow_not_empty":
        return [f"{name}: empty password" for name, s in sh.items() if s[1] == ""]
    if rule == "groups_exist":
        return [f"{p[0]}: group {p[3]} missing" for p in pw if p[3] not in gids]
    if rule == "shadow_group_empty":
        shadow = [g for g in gr if g[0] == "shadow"]
        members = [m for g in shadow for m in (g[3].split(",") if len(g) > 3 else []) if m]
        primary = [p[0] for p in pw if shadow and p[3] == shadow[0][2]]
        return [f"member {m}" for m in members] + [f"{u}: primary group shadow" for u in primary]
    if rule in ("unique_uids", "unique_gids", "unique_user_names", "unique_group_names"):
        column = {"unique_uids": [p[2] for p in pw], "unique_gids": [g[2] for g in gr],
                  "unique_user_names": [p[0] for p in pw], "unique_group_names": [g[0] for g in gr]}[rule]
        return [f"{v} more than once" for v in _dupes(column)]
    if rule == "uid0_root_only":
        return [f"{p[0]}: UID 0" for p in pw if p[2] == "0" and p[0] != "root"]
    if rule == "gid0_root_only":
        return [f"{p[0]}: GID 0" for p in pw if p[3] == "0" and p[0] not in NO_SHELL_EXEMPT | {"operator"}]
    if rule == "gid0_group_root_only":
        return [f"group {g[0]}: GID 0" for g in gr if g[2] == "0" and g[0] != "root"]
    if rule == "root_access":
        field = sh.get("root", ["root", ""])[1]
        return [] if field.startswith(("$", "!", "*")) else [f"root: password field {field[:3]!r}"]
    if rule == "system_no_shell":
        return [f"{p[0]} (UID {p[2]}): {p[6]}" for p in pw if p[2].isdigit() and int(p[2]) < UID_MIN
                and p[0] not in NO_SHELL_EXEMPT and p[6] in a.shells]
    if rule == "no_shell_locked":
        return [f"{p[0]}: not locked ({sh[p[0]][1][:3]!r})" for p in pw if p[0] != "root"
                and p[6] not in a.shells and p[0] in sh and not sh[p[0]][1].startswith(("!", "*"))]
    if rule == "last_change_past":
        return [f"{name}: last change {s[2]} > today {a.today}" for name, s in sh.items()
                if s[2].isdigit() and a.today and int(s[2]) > a.today]
    raise KeyError(rule)


def path_problems(text: str) -> list[str]:
    """Root's PATH (a ``PATH=`` line) and ``stat -L -c '%a %U %n'`` of each entry (or ``missing DIR``)."""
    lines = text.splitlines()
    path = next((ln[5:] for ln in lines if ln.startswith("PATH=")), None)
    if path is None:
        return ["root's PATH could not be read"]
    out = []
    entries = path.split(":")
    out += ["an empty entry" for e in entries if e == ""][:1]
    out += [f"relative entry {e!r}" for e in entries if e and not e.startswith("/")]
    for ln in lines:
        if ln.startswith("missing "):
            out.append(f"{ln[8:]} does not exist")
            continue
        parts = ln.split(" ", 2)
        if len(parts) == 3 and parts[0].isdigit():
            mode, owner, name = int(parts[0], 8), parts[1], parts[2]
            if owner != "root":
                out.append(f"{name} owned by {owner}")
            if mode & 0o022:
                out.append(f"{name} mode {mode:o} writable by group or others")
    return out


def umask_problems(text: str) -> list[str]:
    """``umask NNN`` lines of root's startup files: each must mask at least 027."""
    out = []
    for ln in text.splitlines():
        words = ln.split()
        if len(words) >= 2 and words[0] == "umask" and words[1].isdigit() and int(words[1], 8) & 0o027 != 0o027:
            out.append(f"umask {words[1]}")
    return out


def home_problems(user: str, stat_line: str, dots: list[str], *, rule: str) -> list[str]:
    """``stat -c '%a %U'`` of a user's home and ``find -printf '%m %f'`` of its dot files."""
    parts = stat_line.split()
    if rule == "homes":
        if len(parts) < 2 or not parts[0].isdigit():
            return [f"{user}: home missing"]
        mode, owner = int(parts[0], 8), parts[1]
        return ([f"{user}: home owned by {owner}"] if owner != user else []) + \
               ([f"{user}: home mode {mode:o}"] if mode & 0o027 else [])
    out = []
    for d in dots:
        m, _, name = d.partition(" ")
        if not m.isdigit():
            continue
        mode = int(m, 8)
        if name in (".forward", ".rhosts", ".netrc"):
            out.append(f"{user}: {name} present")
        elif name == ".bash_history" and mode & 0o177:
            out.append(f"{user}: .bash_history mode {mode:o}")
        elif mode & 0o022:
            out.append(f"{user}: {name} mode {mode:o}")
    return out


def unit_problem(out: str, active: tuple[str, ...], enabled: tuple[str, ...]) -> str | None:
    """``systemctl is-active`` then ``is-enabled`` (nothing for a unit that does not exist)."""
    words = out.split()
    state, on = (words + ["unknown"])[0], (words[1:] + ["not-found"])[0]
    if state in active and on in enabled:
        return None
    return f"{state}, {on}"


# ---------------------------------------------------------------------------------------------- reads


def accounts(ctx: CheckContext) -> Accounts:
    _, out = cached(ctx, "accounts", f"cat /etc/passwd; echo {SPLIT}; cat /etc/group; echo {SPLIT}; "
                                     f"cat /etc/shadow; echo {SPLIT}; cat /etc/shells; echo {SPLIT}; "
                                     "echo $(( $(date +%s) / 86400 ))")
    return Accounts.parse(out)


def scan(ctx: CheckContext) -> list[str]:
    """One pass over every local file system: ``TAG PATH`` lines (ww, wwdir, unowned, suid, unpackaged,
    wireless, journal)."""
    skip = " ".join(shlex.quote(p) for p in SCAN_PRUNE)
    prune = " -o ".join(f"-path {shlex.quote(p)}" for p in SCAN_PRUNE)
    cmd = (f"t=$(mktemp) && {{ for m in $(df --local --output=target 2>/dev/null | tail -n +2 | sort -u); do "
           f"skip=; for p in {skip}; do case \"$m\" in \"$p\"|\"$p\"/*) skip=1;; esac; done; [ -n \"$skip\" ] || "
           f"find \"$m\" -xdev \\( {prune} \\) -prune -o \\( -type f -perm -0002 -printf 'ww %p\\n' , "
           "-type d -perm -0002 ! -perm -1000 -printf 'wwdir %p\\n' , \\( -nouser -o -nogroup \\) "
           "-printf 'unowned %p\\n' , -type f -perm /6000 -printf 'suid %p\\n' \\) 2>/dev/null; done "
           "| sort -u > \"$t\"; cat \"$t\"; sed -n 's/^suid //p' \"$t\" | "
           "while read -r f; do dpkg-query -S \"$f\" >/dev/null 2>&1 || dpkg-query -S \"${f#/usr}\" >/dev/null "
           "2>&1 || echo \"unpackaged $f\"; done; rm -f \"$t\"; echo 'done scan'; }; "
           "for i in /sys/class/net/*; do [ -d \"$i/wireless\" ] && echo \"wireless $i\"; done; "
           "if [ -d /var/log/journal ]; then find /var/log/journal -type f -name '*.journal*' -perm /0137 "
           "-printf 'journal %p %m\\n'; else echo 'journal /var/log/journal missing (not persistent)'; fi; true")
    _, out = cached(ctx, "fs-scan", cmd)
    return out.splitlines()


# ---------------------------------------------------------------------------------------------- judges


def _verdict(problems: list[str], fine: str) -> Outcome:
    return (bad if problems else ok)("; ".join(problems[:8]) + (f" (+{len(problems) - 8} more)"
                                     if len(problems) > 8 else "") or fine, len(problems), 0, violations=problems)


def j_accounts(ctx: CheckContext, c: Control) -> Outcome:
    rule, a = c.params["rule"], accounts(ctx)
    if rule == "root_path":
        _, out = cached(ctx, "root-path", "p=$(env -i HOME=/root USER=root LOGNAME=root bash -lc 'printf %s "
                                          "\"$PATH\"' 2>/dev/null); printf 'PATH=%s\\n' \"$p\"; IFS=:; "
                                          "for d in $p; do [ -z \"$d\" ] || stat -L -c '%a %U %n' -- \"$d\" "
                                          "2>/dev/null || echo \"missing $d\"; done")
        return _verdict(path_problems(out), "root's PATH is clean")
    if rule == "root_umask":
        _, out = cached(ctx, "root-umask", "cat /root/.bash_profile /root/.bashrc /root/.profile 2>/dev/null | "
                                           "sed -n 's/^[[:space:]]*\\(umask[[:space:]].*\\)/\\1/p'")
        return _verdict(umask_problems(out), "no weak umask in root's startup files")
    if rule in ("homes", "dot_files"):
        problems = []
        for p in a.interactive():
            user, home = p[0], p[5]
            _, out = cached(ctx, f"home:{user}", f"stat -c '%a %U' -- {shlex.quote(home)} 2>/dev/null; echo {SPLIT}; "
                                                 f"find {shlex.quote(home)} -maxdepth 1 -name '.*' ! -type l "
                                                 "-printf '%m %f\\n' 2>/dev/null")
            head, _, dots = out.partition(SPLIT)
            problems += home_problems(user, head.strip(), dots.split("\n"), rule=rule)
        return _verdict(problems, f"{len(a.interactive())} interactive account(s) checked")
    return _verdict(account_problems(rule, a), f"{len(a.passwd)} accounts, {len(a.group)} groups checked")


def j_scan(ctx: CheckContext, c: Control) -> Outcome:
    lines = scan(ctx)
    if "done scan" not in lines and c.params["tag"] in ("ww", "wwdir", "unowned", "suid"):
        return bad("the file system scan did not finish (mktemp or find failed)")
    tag = "unpackaged" if c.params["tag"] == "suid" else c.params["tag"]
    found = [ln.split(" ", 1)[1] for ln in lines if ln.startswith(tag + " ")]
    if c.params["tag"] == "suid":
        n = sum(ln.startswith("suid ") for ln in lines)
        return _verdict([f"{f} is in no package" for f in found], f"{n} SUID/SGID programs, each from a package")
    return _verdict(found, "none found")


def j_noline(ctx: CheckContext, c: Control) -> Outcome:
    path, regex = c.params["path"], c.params["regex"]
    _, out = cached(ctx, f"grep-not:{path}:{regex}", f"grep -hE {shlex.quote(regex)} {path} 2>/dev/null; true")
    lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
    return _verdict([f"{path}: {ln}" for ln in lines], f"{path}: no line matches")


def j_unit(ctx: CheckContext, c: Control) -> Outcome:
    unit = c.params["unit"]
    _, out = cached(ctx, f"unit:{unit}", f"systemctl is-active {shlex.quote(unit)} 2>/dev/null; "
                                         f"systemctl is-enabled {shlex.quote(unit)} 2>/dev/null; true")
    problem = unit_problem(out, c.params["active"], c.params["enabled"])
    return (bad if problem else ok)(f"{unit}: {problem or ' '.join(out.split())}")


def j_nft(ctx: CheckContext, c: Control) -> Outcome:
    rc, out = cached(ctx, "nft-llmrack", "nft list table inet llmrack 2>&1")
    if rc != 0:
        return bad(f"table inet llmrack: {out.strip()[:200] or 'not loaded'}")
    missing = [r for r in c.params["regexes"] if not any(re.search(r, ln.strip()) for ln in out.splitlines())]
    return _verdict([f"no rule matches {r}" for r in missing], "every rule is there")


def j_process(ctx: CheckContext, c: Control) -> Outcome:
    proc, user = c.params["process"], c.params["user"]
    _, out = cached(ctx, f"ps:{proc}", f"ps -o user= -C {shlex.quote(proc)} 2>/dev/null; true")
    users = out.split()
    if not users:
        return bad(f"{proc} is not running")
    others = sorted(set(users) - {user})
    return _verdict([f"{proc} runs as {u}" for u in others], f"{len(users)} {proc} process(es) as {user}")


def apparmor_problem(what: str, enabled: str, cmdline: str, profiles: str) -> str | None:
    """``enabled``: /sys/module/apparmor/parameters/enabled; ``profiles``: securityfs's profile list
    (``name (mode)`` lines)."""
    if what == "enabled":
        if enabled.strip() != "Y":
            return f"AppArmor enabled: {enabled.strip() or 'no'}"
        off = [w for w in cmdline.split() if w in ("apparmor=0", "security=selinux", "security=none")]
        return f"kernel command line: {' '.join(off)}" if off else None
    modes = [ln.rsplit("(", 1)[-1].rstrip(") \n") for ln in profiles.splitlines() if "(" in ln]
    if not modes:
        return "no AppArmor profile loaded"
    bad_modes = sorted({m for m in modes if m not in ("enforce", "complain")})
    return f"profiles in mode {', '.join(bad_modes)}" if bad_modes else None


def j_apparmor(ctx: CheckContext, c: Control) -> Outcome:
    _, out = cached(ctx, "apparmor", f"cat /sys/module/apparmor/parameters/enabled 2>/dev/null; echo {SPLIT}; "
                                     f"cat /proc/cmdline; echo {SPLIT}; "
                                     "cat /sys/kernel/security/apparmor/profiles 2>/dev/null")
    enabled, cmdline, profiles = (out.split(SPLIT) + ["", "", ""])[:3]
    if not enabled.strip() and shared_kernel(ctx):
        return not_applicable("the kernel is the machine's (a container): it has no AppArmor of this host's")
    problem = apparmor_problem(c.params["what"], enabled, cmdline, profiles)
    n = sum("(" in ln for ln in profiles.splitlines())
    return (bad if problem else ok)(problem or ("AppArmor enabled" if c.params["what"] == "enabled"
                                                else f"{n} profiles, each enforce or complain"))


def listener_problems(ss_output: str, approved: tuple[str, ...]) -> list[str]:
    """``ss -Hltnup`` lines: sockets on an address other than loopback whose program is not approved."""
    out = []
    for line in ss_output.splitlines():
        cols = line.split()
        if len(cols) < 5:
            continue
        local = cols[4]
        if local.startswith(("127.", "[::1]", "[::ffff:127.")) or "%lo:" in local:
            continue
        names = re.findall(r'\("([^"]+)"', " ".join(cols[6:])) or ["(no program shown)"]
        out += [f"{name} on {cols[0]} {local}" for name in names if name not in approved]
    return sorted(set(out))


def j_listeners(ctx: CheckContext, c: Control) -> Outcome:
    rc, out = cached(ctx, "ss-listen", "ss -Hltnup")
    if rc != 0:
        return bad(f"ss failed: {out.strip()[:200]}")
    return _verdict(listener_problems(out, c.params["approved"]), "only approved programs listen outside loopback")


def chrony_sources(conf: str) -> set[str]:
    return {ln.split()[1] for ln in conf.splitlines() if len(ln.split()) >= 2 and ln.split()[0] in
            ("server", "pool", "peer")}


def j_chrony_sources(ctx: CheckContext, c: Control) -> Outcome:
    _, out = cached(ctx, "chrony-sources", "cat /etc/chrony/chrony.conf /etc/chrony/conf.d/*.conf "
                                           "/etc/chrony/sources.d/*.sources 2>/dev/null")
    have, named = chrony_sources(out), set(ctx.spec.profile.base.time.ntp_servers)
    if not named and not have:
        return not_applicable("the tier names no time server (base.time.ntp_servers: []) and chrony has none")
    stray = sorted(have - named)
    if stray or not have:
        return bad(f"sources the tier does not name: {', '.join(stray)}" if stray else "chrony has no source")
    return ok(f"{len(have)} source(s), each named by the tier: {', '.join(sorted(have))}")


def j_if_installed(ctx: CheckContext, c: Control) -> Outcome:
    pkg = c.params["package"]
    if pkg not in installed_packages(ctx):
        return ok(f"{pkg} not installed: nothing to restrict")
    if c.params["family"] == "file" and stat_of(ctx, c.params["path"]) is None:
        return bad(f"{c.params['path']} does not exist")
    return JUDGES[c.params["family"]](ctx, c)


JUDGES.update({"if_installed": j_if_installed, "accounts": j_accounts, "scan": j_scan, "noline": j_noline,
               "unit": j_unit, "nft": j_nft, "process": j_process, "apparmor": j_apparmor,
               "listeners": j_listeners, "chrony_sources": j_chrony_sources})
