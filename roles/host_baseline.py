"""The CIS Ubuntu 24.04 Level 1 baseline past ``host_security``: AppArmor installed (1.3.1.1), journald as the
one logging system (6.1.x), ufw out of the way of llmrack's nftables firewall (4.1.1, 4.3.2), pam_unix without
``nullok`` and a password history (5.3.2.4, 5.3.3.3.x, 5.3.3.4.1), interactive users' homes at most 750 (7.2.9),
the audit tools under AIDE (6.3.3), and where cron or at is installed (Ubuntu installs cron), their files closed
and their use allowed to root only (2.4.x).

PAM changes go through ``pam-auth-update`` only: llmrack's own profile replaces the distribution's ``unix``
one (the distribution's file stays untouched, so a libpam upgrade never brings ``nullok`` back). Nothing here
can lock the deploying user out: it logs in by key, and its sudo needs no password.
"""

from __future__ import annotations

import shlex

from pyinfra import host, logger
from pyinfra.api import FactBase
from pyinfra.facts.deb import DebPackages
from pyinfra.facts.files import FindInFile
from pyinfra.operations import apt, files, server, systemd
from pyinfra.operations.util import any_changed

from llmrack.facts.system import UnitState
from llmrack.ops import APT_RETRIES, FollowUp, put_text, render_template
from llmrack.packages import APPARMOR
from llmrack.settings.hardening import HardeningSettings

JOURNALD_CIS = "/etc/systemd/journald.conf.d/61-llmrack-cis.conf"
AIDE_AUDIT_TOOLS = "/etc/aide/aide.conf.d/70_llmrack_audit_tools"  # run-parts style name: no dot
AUDIT_TOOLS = ["auditctl", "auditd", "ausearch", "aureport", "autrace", "augenrules"]
PAM_UNIX = "llmrack-unix"
PAM_HISTORY = "llmrack-pwhistory"
CRON_DIRS = ["/etc/cron.hourly", "/etc/cron.daily", "/etc/cron.weekly", "/etc/cron.monthly", "/etc/cron.d"]


class InteractiveHomes(FactBase):
    """Users with a login shell of /etc/shells and UID 1000-65533: user -> (home, mode, owner) of homes that
    exist."""

    def command(self) -> str:
        return ("awk -F: 'NR==FNR { if ($0 ~ /^\\// && $0 !~ /(nologin|false)$/) ok[$0] = 1; next } "
                "($7 in ok) && $3 >= 1000 && $3 < 65534 { print $1 \":\" $6 }' /etc/shells /etc/passwd | "
                "while IFS=: read -r u h; do [ -d \"$h\" ] && stat -c \"%a %U $u %n\" -- \"$h\"; done; true")

    @staticmethod
    def default() -> dict[str, tuple[str, int, str]]:
        return {}

    def process(self, output: list[str]) -> dict[str, tuple[str, int, str]]:
        out = {}
        for line in output:
            parts = line.split(" ", 3)
            if len(parts) == 4 and parts[0].isdigit():
                out[parts[2]] = (parts[3], int(parts[0], 8), parts[1])
        return out


def host_baseline(hardening: HardeningSettings) -> None:
    s = hardening.host
    if not (hardening.enabled and s.enabled):
        logger.info(f"{host.print_prefix}the CIS baseline is disabled for this tier")
        return

    apt.packages(name="Install AppArmor and its tools (CIS 1.3.1.1)", packages=APPARMOR, no_recommends=True,
                 **APT_RETRIES)

    # ---- logging: journald persistent and compressed, the one logging system (CIS 6.1.1.x, 6.1.2.2-4)
    restart = FollowUp("journald-cis-restart", "journald's restart for the CIS drop-in")
    restart.put(f"Write {JOURNALD_CIS} (CIS 6.1.2.2-4: persistent, compressed, not forwarded to syslog)",
                render_template("host_baseline", JOURNALD_CIS), JOURNALD_CIS)
    restart.run(systemd.service, name="Restart journald after its settings changed", service="systemd-journald",
                restarted=True)
    for unit, why in (("rsyslog.service", "CIS 6.1.1.4: journald is the one logging system"),
                      ("ufw.service", "CIS 4.1.1, 4.3.2: nftables is the one firewall utility")):
        if host.get_fact(UnitState, unit=unit) not in ("not-found", "masked", "disabled"):
            systemd.service(name=f"Stop and disable {unit} ({why})", service=unit, running=False, enabled=False)

    # ---- PAM: no empty passwords, a password history (CIS 5.3.2.4, 5.3.3.3.1-3, 5.3.3.4.1)
    profiles = [put_text(f"Write /usr/share/pam-configs/{name} (CIS 5.3.2.4, 5.3.3.3, 5.3.3.4.1)",
                         render_template("host_baseline", f"/usr/share/pam-configs/{name}",
                                         remember=s.password_history), f"/usr/share/pam-configs/{name}")
                for name in (PAM_UNIX, PAM_HISTORY)]
    off = (host.get_fact(FindInFile, path="/etc/pam.d/common-auth", pattern="pam_unix.so.*nullok")
           or not host.get_fact(FindInFile, path="/etc/pam.d/common-password", pattern="pam_pwhistory"))
    server.shell(name="Use llmrack's pam_unix and pam_pwhistory profiles (pam-auth-update)",
                 commands=["DEBIAN_FRONTEND=noninteractive pam-auth-update --disable unix",
                           f"DEBIAN_FRONTEND=noninteractive pam-auth-update --enable {PAM_UNIX} {PAM_HISTORY}"],
                 **({} if off else {"_if": any_changed(*profiles)}))

    # ---- AIDE (installed by host_security) guards the audit tools (CIS 6.3.3)
    put_text(f"Write {AIDE_AUDIT_TOOLS} (CIS 6.3.3: the audit tools under AIDE)",
             render_template("host_baseline", AIDE_AUDIT_TOOLS, tools=AUDIT_TOOLS), AIDE_AUDIT_TOOLS)

    # ---- homes of interactive users: theirs, at most 750 (CIS 7.2.9)
    for user, (home, mode, owner) in sorted(host.get_fact(InteractiveHomes).items()):
        if owner == user and mode & 0o027:
            server.shell(name=f"Close {home} to other users (mode {mode & ~0o027:o}, CIS 7.2.9)",
                         commands=[f"chmod g-w,o-rwx -- {shlex.quote(home)}"])

    # ---- cron and at, where installed: root's only (CIS 2.4.1.x, 2.4.2.1)
    installed = host.get_fact(DebPackages)
    if "cron" in installed:
        systemd.service(name="Start and enable cron (CIS 2.4.1.1)", service="cron", running=True, enabled=True)
        files.file(name="Own /etc/crontab root:root mode 600 (CIS 2.4.1.2)", path="/etc/crontab", user="root",
                   group="root", mode="600")
        for d in CRON_DIRS:
            files.directory(name=f"Own {d} root:root mode 700 (CIS 2.4.1.3-7)", path=d, user="root", group="root",
                            mode="700")
        put_text("Write /etc/cron.allow: root only (CIS 2.4.1.8)", "root\n", "/etc/cron.allow", mode="640",
                 user="root", group="root")
    if "at" in installed:
        put_text("Write /etc/at.allow: root only (CIS 2.4.2.1)", "root\n", "/etc/at.allow", mode="640",
                 user="root", group="root")
