"""Write docs/cis-ubuntu-24.04-level1.md: each CIS Ubuntu 24.04 Level 1 Server id -> its controls or waiver.

    .venv/bin/python scripts/cis_table.py

An id is "implemented" when a control of the suite cites it, "waived" when WAIVED below gives the reason
llmrack does not apply it, "not covered" otherwise.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from llmrack.verify.security.controls import CONTROLS  # noqa: E402

IDS = PROJECT / "llmrack" / "verify" / "security" / "cis_ubuntu2404_level1.yaml"
OUT = PROJECT / "docs" / "cis-ubuntu-24.04-level1.md"
WAIVED = {
    "1.1.1.10": "overlay (Docker's storage driver) and squashfs/vfat stay available; the unused ones are disabled",
    "3.3.1": "IPv4 forwarding is what Docker routes container traffic with (sec.kernel.ip_forward asserts it is on)",
    "1.4.1": "a boot loader password stops an unattended reboot of a remote server; the rack is physically locked",
    "1.4.2": "boot loader configuration belongs to the machine's installer image",
    "5.1.4": "AllowUsers/AllowGroups depend on the site's admins; keys-only login and MaxAuthTries apply to all",
    "2.1.21": "no mail transfer agent is installed: alerts leave through Alertmanager",
    "5.2.6": "the deploy user has NOPASSWD sudo for unattended deploys; its access is by SSH key only",
    "5.2.5": "the deploy user has NOPASSWD sudo for unattended deploys; its access is by SSH key only",
    "5.2.4": "the deploy user has NOPASSWD sudo for unattended deploys; its access is by SSH key only",
}
PARTITION = "separate partitions are the installer's choice; llmrack never repartitions a running server"
RSYSLOG = ("journald is the one logging system (CIS 6.1.1.4 asks for one of the two): rsyslog is stopped and "
           "disabled (`sec.service.rsyslog_not_in_use`), so its own recommendations do not apply")
WAIVED.update({
    "4.3.3": "Docker programs its NAT and isolation chains through iptables-nft: flushing them cuts every container "
             "off; llmrack's nftables table sits beside them",
    "4.3.8": "input drops by default; forward is Docker's (published ports are filtered by llmrack's forward hook) "
             "and output stays open, since a server reaches its site's mirrors, NAS and time servers",
    "1.2.1.1": "APT sources and their keys are the site's (a mirror, or the offline bundle, whose packages are "
               "pinned by sha256)",
    "1.2.1.2": "APT sources and their keys are the site's (a mirror, or the offline bundle, whose packages are "
               "pinned by sha256)",
    "1.2.2.1": "security updates are installed by unattended-upgrades (`sec.conf.unattended_security`); a full "
               "upgrade waits for the operator's maintenance window, never a deploy",
    "5.3.1.1": "the distribution's current libpam is installed; Debian 12's (1.5.2) is older than the version the "
               "benchmark names for Ubuntu 24.04",
    "3.1.1": "a manual recommendation: IPv6 stays as the installer left it, and llmrack's firewall table is of the "
             "inet family, filtering IPv4 and IPv6 alike",
    "2.3.2.1": "chrony is the time daemon (CIS 2.3.1.1 asks for one): timesyncd's recommendations apply to hosts "
               "that use it instead",
    "2.3.2.2": "chrony is the time daemon (CIS 2.3.1.1 asks for one): timesyncd's recommendations apply to hosts "
               "that use it instead",
    "6.1.4.1": "dpkg and apt create their logs 0644 by design (package history, no secrets) and logrotate "
               "recreates them so; the journal's files (`sec.fs.journal_files_private`) and llmrack's own logs are "
               "private",
    **{f"6.1.2.1.{n}": "shipping logs to a central log host is the site's choice; llmrack sends metrics and alerts "
                       "off the host, journald keeps the logs on it" for n in (1, 2, 3)},
    **{f"6.1.3.{n}": RSYSLOG for n in range(1, 9)},  # 6.1.3.8: logrotate of rsyslog's files (journald rotates
    # its own: SystemMaxUse, `sec.conf.journald_rotation`)
})
WAIVED_PREFIX = {
    "4.2.": "ufw is not this host's firewall: nftables is (llmrack-firewall.service, table inet llmrack), and ufw "
            "is stopped and disabled (`sec.service.ufw_not_in_use`)",
    "4.4.": "iptables is not the firewall utility: nftables is; iptables-nft stays installed only because Docker "
            "programs its NAT through it",
}


def cited(cid: str) -> list[str]:
    pat = re.compile(rf"CIS {re.escape(cid)}(?![.\d])")
    return [c.id for c in CONTROLS if pat.search(c.ref)]


def main() -> int:
    items = yaml.safe_load(IDS.read_text(encoding="utf-8"))
    rows, counts = [], {"implemented": 0, "waived": 0, "not covered": 0}
    for it in items:
        cid, title = it["id"], it["title"]
        controls = cited(cid)
        reason = WAIVED.get(cid) or (PARTITION if cid.startswith("1.1.2.") else "") or next(
            (why for prefix, why in WAIVED_PREFIX.items() if cid.startswith(prefix)), "")
        state = "implemented" if controls and cid not in WAIVED else "waived" if reason else "not covered"
        counts[state] += 1
        what = ", ".join(f"`{c}`" for c in controls) if state == "implemented" else reason
        rows.append(f"| {cid} | {title.replace('|', '/')} | {state} | {what} |")
    text = "\n".join([
        "# CIS Ubuntu Linux 24.04 LTS Benchmark v1.0.0, Level 1 Server: coverage",
        "",
        "Generated by `scripts/cis_table.py`. Ids and titles from ansible-lockdown/UBUNTU24-CIS (commit d836ca2, "
        "MIT License). A control id is run by `llmrack verify --only security`.",
        "",
        f"**{len(items)} recommendations: {counts['implemented']} implemented and verified by a control, "
        f"{counts['waived']} waived with the reason, {counts['not covered']} not covered yet.**",
        "",
        "| CIS id | recommendation | state | control(s) or reason |",
        "|---|---|---|---|",
        *rows, "",
    ])
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    print(f"{OUT}: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
