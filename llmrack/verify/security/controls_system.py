"""Security controls as data, second part: accounts and groups, file system scans, logging, PAM and packages of
CIS Ubuntu 24.04 sections 1.6-1.7, 3.1, 4.1, 5.3-5.4, 6.1 and 7.1-7.2. Plain tables (``controls.build`` makes
the controls): each line is (id suffix, what the probe looks at, benchmark line)."""

from __future__ import annotations

# (id suffix, rule of the account judge, title, benchmark line): /etc/passwd, /etc/group, /etc/shadow read once
ACCOUNTS: list[tuple[str, str, str, str]] = [
    ("shadowed", "shadowed", "every account in /etc/passwd uses a shadowed password ('x')", "CIS 7.2.1"),
    ("shadow_not_empty", "shadow_not_empty", "no password field in /etc/shadow is empty", "CIS 7.2.2"),
    ("groups_exist", "groups_exist", "every primary group in /etc/passwd exists in /etc/group", "CIS 7.2.3"),
    ("shadow_group_empty", "shadow_group_empty", "the shadow group has no member", "CIS 7.2.4"),
    ("unique_uids", "unique_uids", "no two accounts share a UID", "CIS 7.2.5"),
    ("unique_gids", "unique_gids", "no two groups share a GID", "CIS 7.2.6"),
    ("unique_user_names", "unique_user_names", "no two accounts share a name", "CIS 7.2.7"),
    ("unique_group_names", "unique_group_names", "no two groups share a name", "CIS 7.2.8"),
    ("uid0_root_only", "uid0_root_only", "root is the only UID 0 account", "CIS 5.4.2.1"),
    ("gid0_root_only", "gid0_root_only", "root is the only account with primary GID 0", "CIS 5.4.2.2"),
    ("gid0_group_root_only", "gid0_group_root_only", "group root is the only GID 0 group", "CIS 5.4.2.3"),
    ("root_access", "root_access", "root has a password hash or is locked", "CIS 5.4.2.4"),
    ("system_no_shell", "system_no_shell", "system accounts (UID < 1000) have no login shell", "CIS 5.4.2.7"),
    ("no_shell_locked", "no_shell_locked", "accounts without a login shell are locked", "CIS 5.4.2.8"),
    ("last_change_past", "last_change_past", "every last password change lies in the past", "CIS 5.4.1.6"),
    ("root_path", "root_path", "root's PATH: no empty or relative entry, each directory root's and not writable "
     "by others", "CIS 5.4.2.5"),
    ("root_umask", "root_umask", "root's shell startup files set no umask weaker than 027", "CIS 5.4.2.6"),
    ("homes", "homes", "each interactive user's home exists, is theirs and at most 750", "CIS 7.2.9"),
    ("dot_files", "dot_files", "no .forward/.netrc/.rhosts, no dot file writable by group or others, "
     ".bash_history at most 600", "CIS 7.2.10"),
]

# (id suffix, tag of the file system scan, title, benchmark line): one ``find / -xdev`` for all four
SCANS: list[tuple[str, str, str, str]] = [
    ("no_world_writable_files", "ww", "no world-writable file", "CIS 7.1.11"),
    ("sticky_world_writable_dirs", "wwdir", "every world-writable directory has the sticky bit", "CIS 7.1.11"),
    ("no_unowned_files", "unowned", "no file without a known owner and group", "CIS 7.1.12"),
    ("suid_sgid_packaged", "suid", "every SUID/SGID program belongs to an installed package (none was planted)",
     "CIS 7.1.13"),
    ("no_wireless", "wireless", "no wireless network interface", "CIS 3.1.2"),
    ("journal_files_private", "journal", "the persistent journal exists and its files are at most 640",
     "CIS 6.1.1.2"),
]
# never scanned: kernel file systems, container layers and the stack's data (owned by container users)
SCAN_PRUNE = ("/proc", "/sys", "/dev", "/run", "/var/lib/docker", "/var/lib/containerd", "/opt/llmrack/data")

# (id suffix, file glob, extended regex no line may match, benchmark line)
NO_LINES: list[tuple[str, str, str, str]] = [
    ("motd_no_os_details", "/etc/motd", r"(\\[mrsv]|[Uu]buntu|[Dd]ebian)", "CIS 1.6.1"),
    ("pam_unix_no_nullok", "/etc/pam.d/common-*", r"^[^#]*pam_unix\.so.*\bnullok", "CIS 5.3.3.4.1"),
    ("pam_unix_no_remember", "/etc/pam.d/common-*", r"^[^#]*pam_unix\.so.*\bremember=", "CIS 5.3.3.4.2"),
    ("pwquality_enforcing", "/etc/security/pwquality.conf /etc/security/pwquality.conf.d/*.conf",
     r"^\s*enforcing\s*=\s*0", "CIS 5.3.3.2.7"),
]

AUDIT_TOOLS = ("auditctl", "auditd", "ausearch", "aureport", "autrace", "augenrules")  # CIS 6.3.3: AIDE guards them

# (id suffix, file glob, extended regex a line must match, benchmark line): as controls.LINES
MORE_LINES: list[tuple[str, str, str, str]] = [
    *[(f"pam_unix_{kind}", f"/etc/pam.d/common-{kind}", rf"^{kind}\s.*pam_unix\.so", "CIS 5.3.2.1")
      for kind in ("auth", "account", "password", "session")],
    ("pam_unix_strong_hash", "/etc/pam.d/common-password", r"^password\s.*pam_unix\.so.*\b(yescrypt|sha512)\b",
     "CIS 5.3.3.4.3"),
    ("pam_unix_use_authtok", "/etc/pam.d/common-password", r"^password\s.*pam_unix\.so.*\buse_authtok\b",
     "CIS 5.3.3.4.4"),
    ("pam_pwhistory", "/etc/pam.d/common-password", r"^password\s.*pam_pwhistory\.so", "CIS 5.3.2.4"),
    ("pwhistory_remember", "/etc/pam.d/common-password",
     r"^password\s.*pam_pwhistory\.so.*\bremember=(2[4-9]|[3-9][0-9]|[1-9][0-9]{2,})\b", "CIS 5.3.3.3.1"),
    ("pwhistory_root", "/etc/pam.d/common-password", r"^password\s.*pam_pwhistory\.so.*\benforce_for_root\b",
     "CIS 5.3.3.3.2"),
    ("pwhistory_use_authtok", "/etc/pam.d/common-password", r"^password\s.*pam_pwhistory\.so.*\buse_authtok\b",
     "CIS 5.3.3.3.3"),
    *[(f"aide_{tool}", "/etc/aide/aide.conf.d/*", rf"^/usr/sbin/{tool}\s+\S*sha512", "CIS 6.3.3")
      for tool in AUDIT_TOOLS],
    ("journald_storage", "/etc/systemd/journald.conf.d/*.conf", r"^Storage=persistent$", "CIS 6.1.2.4"),
    ("journald_compress", "/etc/systemd/journald.conf.d/*.conf", r"^Compress=yes$", "CIS 6.1.2.3"),
    ("journald_no_forward_syslog", "/etc/systemd/journald.conf.d/*.conf", r"^ForwardToSyslog=no$", "CIS 6.1.2.2"),
    ("journald_rotation", "/etc/systemd/journald.conf.d/*.conf",
     r"^(SystemMaxUse|SystemKeepFree|SystemMaxFileSize|MaxRetentionSec)=[0-9]", "CIS 6.1.1.3"),
]

# (id suffix, unit, accepted ``is-active`` states, accepted ``is-enabled`` states, benchmark line); a unit that
# does not exist reads as "inactive" / "not-found"
UNITS: list[tuple[str, str, tuple[str, ...], tuple[str, ...], str]] = [
    ("journald_active", "systemd-journald.service", ("active",), ("static", "enabled"), "CIS 6.1.1.1"),
    ("rsyslog_not_in_use", "rsyslog.service", ("inactive", "failed"),
     ("disabled", "masked", "not-found"), "CIS 6.1.1.4 (journald is the one logging system)"),
    ("ufw_not_in_use", "ufw.service", ("inactive", "failed"), ("disabled", "masked", "not-found"),
     "CIS 4.1.1 / CIS 4.3.2 (nftables is the one firewall utility)"),
    ("chrony_active", "chrony.service", ("active",), ("enabled",), "CIS 2.3.1.1 / CIS 2.3.3.3"),
    ("timesyncd_not_in_use", "systemd-timesyncd.service", ("inactive", "failed"), ("disabled", "masked", "not-found"),
     "CIS 2.3.1.1 (chrony is the one time daemon)"),
    ("firewall_enabled", "llmrack-firewall.service", ("active",), ("enabled",),
     "CIS 4.3.9 / CIS 4.3.10 (the unit loading llmrack's nftables rules at boot)"),
    ("aide_check_scheduled", "dailyaidecheck.timer", ("active",), ("enabled",), "CIS 6.3.2"),
    ("journal_remote_not_in_use", "systemd-journal-remote.socket", ("inactive", "failed"),
     ("disabled", "masked", "not-found"), "CIS 6.1.2.1.4"),
]

# (id suffix, extended regexes that must each match a line of ``nft list table inet llmrack``, title, benchmark
# line): llmrack's table is the host's nftables firewall, loaded by llmrack-firewall.service
NFT: list[tuple[str, tuple[str, ...], str, str]] = [
    ("table_exists", (r"^table inet llmrack",), "the nftables table inet llmrack is loaded", "CIS 4.3.4"),
    ("base_chains", (r"hook input priority", r"hook forward priority", r"hook output priority"),
     "base chains on the input, forward and output hooks", "CIS 4.3.5"),
    ("loopback", (r'iifname "lo" accept', r"ip saddr 127\.0\.0\.0/8 .*drop", r"ip6 saddr ::1 .*drop"),
     "loopback accepted on lo, loopback addresses dropped elsewhere", "CIS 4.3.6"),
    ("established", (r"ct state \{? ?established,? ?related ?\}? accept", r"hook output priority"),
     "established connections accepted, outbound traffic passes the output chain", "CIS 4.3.7"),
    ("input_policy_drop", (r"hook input priority filter; policy drop;",), "input drops what no rule accepts",
     "llmrack (CIS 4.3.8 for input)"),
]

# (id suffix, process name, the user every instance runs as, benchmark line)
PROCESSES: list[tuple[str, str, str, str]] = [
    ("chronyd_user", "chronyd", "_chrony", "CIS 2.3.3.2"),
]

# (id suffix, package, family, its params, benchmark line): judged as that family when the package is installed;
# without the package there is nothing to restrict (the benchmark's own rule for cron and at)
IF_INSTALLED: list[tuple[str, str, str, dict, str]] = [
    ("cron_active", "cron", "unit", {"unit": "cron.service", "active": ("active",), "enabled": ("enabled",)},
     "CIS 2.4.1.1"),
    ("crontab", "cron", "file", {"path": "/etc/crontab", "mode": 0o600, "owner": "root", "groups": ("root",)},
     "CIS 2.4.1.2"),
    *[(f"cron_{d}", "cron", "file", {"path": f"/etc/cron.{d}", "mode": 0o700, "owner": "root", "groups": ("root",)},
       f"CIS 2.4.1.{n}") for n, d in ((3, "hourly"), (4, "daily"), (5, "weekly"), (6, "monthly"), (7, "d"))],
    ("cron_allow", "cron", "file", {"path": "/etc/cron.allow", "mode": 0o640, "owner": "root",
                                    "groups": ("root", "crontab")}, "CIS 2.4.1.8"),
    ("at_allow", "at", "file", {"path": "/etc/at.allow", "mode": 0o640, "owner": "root",
                                "groups": ("root", "daemon")}, "CIS 2.4.2.1"),
]

# (id suffix, what the AppArmor judge reads, title, benchmark line): kernel-wide, like the sysctls
APPARMOR: list[tuple[str, str, str, str]] = [
    ("enabled", "enabled", "AppArmor enabled in the running kernel, not turned off on its command line",
     "CIS 1.3.1.2"),
    ("profiles_enforced", "profiles", "every loaded AppArmor profile in enforce or complain mode", "CIS 1.3.1.3"),
]
MORE_PRESENT: list[tuple[str, str]] = [("apparmor", "CIS 1.3.1.1"), ("apparmor-utils", "CIS 1.3.1.1")]

# programs that may listen on an address other than loopback (CIS 2.1.22): sshd, Docker's port proxy for the
# stack's published ports, and the exporters that run in the host's network (``ss`` shows 15 characters of a name)
APPROVED_LISTENERS = ("sshd", "docker-proxy", "prometheus-node", "node_exporter", "dcgm-exporter", "nv-hostengine")

# packages a server must not carry, beyond controls.ABSENT_PACKAGES
MORE_ABSENT: list[tuple[str, str]] = [
    ("gdm3", "CIS 1.7.2 / CIS 1.7.3 / CIS 1.7.4 / CIS 1.7.5 / CIS 1.7.6 / CIS 1.7.7 / CIS 1.7.8 / CIS 1.7.9 "
     "(no GNOME display manager to configure)"),
    ("lightdm", "CIS 1.7.10 (no display manager: no XDMCP)"), ("sddm", "CIS 1.7.10"), ("xdm", "CIS 1.7.10"),
    ("bluez", "CIS 3.1.3"),
    ("systemd-journal-remote", "CIS 6.1.2.1.4"),
]
