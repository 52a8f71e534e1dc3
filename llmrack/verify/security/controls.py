"""Security controls as data: id, title, benchmark line, family and the expectation the family's probe judges."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmrack.verify.security import controls_system as more

# ---------------------------------------------------------------------------------------------- tables
# (id suffix, key, expected values, benchmark line)
SYSCTL: list[tuple[str, str, tuple[str, ...], str]] = [
    ("aslr", "kernel.randomize_va_space", ("2",), "CIS 1.5.1"),
    ("ptrace", "kernel.yama.ptrace_scope", ("1", "2", "3"), "CIS 1.5.2"),
    ("suid_dumpable", "fs.suid_dumpable", ("0",), "CIS 1.5.3"),
    ("send_redirects_all", "net.ipv4.conf.all.send_redirects", ("0",), "CIS 3.3.2"),
    ("send_redirects_default", "net.ipv4.conf.default.send_redirects", ("0",), "CIS 3.3.2"),
    ("bogus_icmp", "net.ipv4.icmp_ignore_bogus_error_responses", ("1",), "CIS 3.3.3"),
    ("broadcast_icmp", "net.ipv4.icmp_echo_ignore_broadcasts", ("1",), "CIS 3.3.4"),
    ("accept_redirects_all", "net.ipv4.conf.all.accept_redirects", ("0",), "CIS 3.3.5"),
    ("accept_redirects_default", "net.ipv4.conf.default.accept_redirects", ("0",), "CIS 3.3.5"),
    ("accept_redirects6_all", "net.ipv6.conf.all.accept_redirects", ("0",), "CIS 3.3.5"),
    ("accept_redirects6_default", "net.ipv6.conf.default.accept_redirects", ("0",), "CIS 3.3.5"),
    ("secure_redirects_all", "net.ipv4.conf.all.secure_redirects", ("0",), "CIS 3.3.6"),
    ("secure_redirects_default", "net.ipv4.conf.default.secure_redirects", ("0",), "CIS 3.3.6"),
    ("rp_filter_all", "net.ipv4.conf.all.rp_filter", ("1",), "CIS 3.3.7"),
    ("rp_filter_default", "net.ipv4.conf.default.rp_filter", ("1",), "CIS 3.3.7"),
    ("source_route_all", "net.ipv4.conf.all.accept_source_route", ("0",), "CIS 3.3.8"),
    ("source_route_default", "net.ipv4.conf.default.accept_source_route", ("0",), "CIS 3.3.8"),
    ("source_route6_all", "net.ipv6.conf.all.accept_source_route", ("0",), "CIS 3.3.8"),
    ("source_route6_default", "net.ipv6.conf.default.accept_source_route", ("0",), "CIS 3.3.8"),
    ("log_martians_all", "net.ipv4.conf.all.log_martians", ("1",), "CIS 3.3.9"),
    ("log_martians_default", "net.ipv4.conf.default.log_martians", ("1",), "CIS 3.3.9"),
    ("syncookies", "net.ipv4.tcp_syncookies", ("1",), "CIS 3.3.10"),
    ("accept_ra_all", "net.ipv6.conf.all.accept_ra", ("0",), "CIS 3.3.11"),
    ("accept_ra_default", "net.ipv6.conf.default.accept_ra", ("0",), "CIS 3.3.11"),
    ("ip_forward", "net.ipv4.ip_forward", ("1",), "llmrack: Docker routes container traffic (CIS 3.3.1 waived)"),
    ("dmesg_restrict", "kernel.dmesg_restrict", ("1",), "dev-sec os-10 / Lynis KRNL-6000"),
    ("kptr_restrict", "kernel.kptr_restrict", ("1", "2"), "dev-sec os-10 / Lynis KRNL-6000"),
    ("sysrq", "kernel.sysrq", ("0",), "dev-sec os-10 / Lynis KRNL-6000"),
    ("perf_event_paranoid", "kernel.perf_event_paranoid", ("2", "3"), "Lynis KRNL-6000"),
    ("unprivileged_bpf", "kernel.unprivileged_bpf_disabled", ("1", "2"), "Lynis KRNL-6000"),
    ("bpf_jit_harden", "net.core.bpf_jit_harden", ("2",), "Lynis KRNL-6000"),
    ("protected_fifos", "fs.protected_fifos", ("2",), "Lynis KRNL-6000"),
    ("protected_regular", "fs.protected_regular", ("2",), "Lynis KRNL-6000"),
    ("protected_hardlinks", "fs.protected_hardlinks", ("1",), "dev-sec os-09"),
    ("protected_symlinks", "fs.protected_symlinks", ("1",), "dev-sec os-09"),
    ("ldisc_autoload", "dev.tty.ldisc_autoload", ("0",), "Lynis KRNL-6000"),
    ("core_uses_pid", "kernel.core_uses_pid", ("1",), "Lynis KRNL-6000"),
    ("ctrl_alt_del", "kernel.ctrl-alt-del", ("0",), "Lynis KRNL-6000"),
]

# (id suffix, sshd -T key, accepted values (lower case), benchmark line)
SSHD: list[tuple[str, str, tuple[str, ...], str]] = [
    ("banner", "banner", ("/etc/issue.net",), "CIS 5.1.5"),
    ("client_alive_interval", "clientaliveinterval", ("!0",), "CIS 5.1.7"),
    ("client_alive_count", "clientalivecountmax", ("!0",), "CIS 5.1.7"),
    ("x11_forwarding", "x11forwarding", ("no",), "CIS 5.1.8 / dev-sec sshd-41"),
    ("agent_forwarding", "allowagentforwarding", ("no",), "CIS 5.1.8 / dev-sec ssh-hardening"),
    ("stream_forwarding", "allowstreamlocalforwarding", ("no",), "CIS 5.1.8 / dev-sec ssh-hardening"),
    ("tcp_forwarding", "allowtcpforwarding", ("no", "local"), "CIS 5.1.8 (local kept for dashboard tunnels)"),
    ("permit_tunnel", "permittunnel", ("no",), "dev-sec ssh-hardening: no tunnels"),
    ("gateway_ports", "gatewayports", ("no",), "dev-sec ssh-hardening"),
    ("gssapi", "gssapiauthentication", ("no",), "CIS 5.1.9"),
    ("kerberos", "kerberosauthentication", ("no",), "dev-sec ssh-hardening"),
    ("hostbased", "hostbasedauthentication", ("no",), "CIS 5.1.10"),
    ("ignore_rhosts", "ignorerhosts", ("yes",), "CIS 5.1.11"),
    ("ignore_user_known_hosts", "ignoreuserknownhosts", ("yes",), "dev-sec ssh-hardening"),
    ("login_grace", "logingracetime", ("<=60",), "CIS 5.1.13"),
    ("log_level", "loglevel", ("verbose", "info"), "CIS 5.1.14"),
    ("max_auth_tries", "maxauthtries", ("<=4",), "CIS 5.1.16"),
    ("max_sessions", "maxsessions", ("<=10",), "CIS 5.1.17"),
    ("max_startups", "maxstartups", ("10:30:60",), "CIS 5.1.18"),
    ("empty_passwords", "permitemptypasswords", ("no",), "CIS 5.1.19"),
    ("root_login", "permitrootlogin", ("no", "without-password", "prohibit-password"), "CIS 5.1.20 / seed 003"),
    ("user_environment", "permituserenvironment", ("no",), "CIS 5.1.21"),
    ("use_pam", "usepam", ("yes",), "CIS 5.1.22"),
    ("password_auth", "passwordauthentication", ("no",), "dev-sec ssh-hardening / seed 003"),
    ("kbd_interactive", "kbdinteractiveauthentication", ("no",), "dev-sec ssh-hardening"),
    ("pubkey", "pubkeyauthentication", ("yes",), "dev-sec ssh-hardening"),
    ("strict_modes", "strictmodes", ("yes",), "dev-sec ssh-hardening"),
    ("compression", "compression", ("no",), "dev-sec ssh-hardening"),
    ("use_dns", "usedns", ("no",), "dev-sec ssh-hardening"),
    ("tcp_keepalive", "tcpkeepalive", ("no",), "dev-sec ssh-hardening"),
    ("user_rc", "permituserrc", ("no",), "dev-sec ssh-hardening"),
    ("print_motd", "printmotd", ("no",), "dev-sec ssh-hardening"),
    ("print_last_log", "printlastlog", ("yes",), "dev-sec ssh-hardening"),
    ("syslog_facility", "syslogfacility", ("auth", "authpriv"), "dev-sec ssh-hardening"),
    ("debian_banner", "debianbanner", ("no",), "Lynis SSH-7408 (no OS version in the SSH banner)"),
]
WEAK_CIPHER = ("cbc", "3des", "arcfour", "blowfish", "cast128", "rijndael")
WEAK_MAC = ("md5", "sha1", "umac-64", "ripemd")  # hmac-sha1 / -etm, umac-64
WEAK_KEX = ("sha1", "ecdh-sha2-nistp", "diffie-hellman-group14-sha256", "diffie-hellman-group16-sha512",
            "diffie-hellman-group18-sha512")
WEAK_HOSTKEY = ("ssh-dss", "ecdsa-sha2-nistp", "ssh-rsa")

# (id suffix, audit path or syscall word, benchmark line)
AUDIT: list[tuple[str, str, str]] = [
    ("group", "/etc/group", "CIS 6.2.3.8"), ("passwd", "/etc/passwd", "CIS 6.2.3.8"),
    ("gshadow", "/etc/gshadow", "CIS 6.2.3.8"), ("shadow", "/etc/shadow", "CIS 6.2.3.8"),
    ("opasswd", "/etc/security/opasswd", "CIS 6.2.3.8"), ("nsswitch", "/etc/nsswitch.conf", "CIS 6.2.3.8"),
    ("pam_d", "/etc/pam.d", "CIS 6.2.3.8"),
    ("sudoers", "/etc/sudoers", "CIS 6.2.3.1"), ("sudoers_d", "/etc/sudoers.d", "CIS 6.2.3.1"),
    ("sudo_log", "/var/log/sudo.log", "CIS 6.2.3.3"), ("user_emulation", "user_emulation", "CIS 6.2.3.2"),
    ("time_change", "adjtimex", "CIS 6.2.3.4"), ("localtime", "/etc/localtime", "CIS 6.2.3.4"),
    ("hostname_syscalls", "sethostname", "CIS 6.2.3.5"), ("issue", "/etc/issue", "CIS 6.2.3.5"),
    ("issue_net", "/etc/issue.net", "CIS 6.2.3.5"), ("hosts", "/etc/hosts", "CIS 6.2.3.5"),
    ("hostname", "/etc/hostname", "CIS 6.2.3.5"), ("apparmor", "/etc/apparmor.d", "CIS 6.2.3.14"),
    ("lastlog", "/var/log/lastlog", "CIS 6.2.3.12"), ("faillock", "/var/run/faillock", "CIS 6.2.3.12"),
    ("delete", "unlinkat", "CIS 6.2.3.13"), ("modules", "finit_module", "CIS 6.2.3.19"),
    ("dockerd", "/usr/bin/dockerd", "CIS Docker 1.1.3"), ("containerd", "/usr/bin/containerd", "CIS Docker 1.1.12"),
    ("runc", "/usr/bin/runc", "CIS Docker 1.1.14"), ("docker_lib", "/var/lib/docker", "CIS Docker 1.1.4"),
    ("docker_etc", "/etc/docker", "CIS Docker 1.1.5"), ("docker_service", "/lib/systemd/system/docker.service",
                                                       "CIS Docker 1.1.6"),
    ("docker_socket_unit", "/lib/systemd/system/docker.socket", "CIS Docker 1.1.8"),
    ("docker_sock", "/run/docker.sock", "CIS Docker 1.1.7"),
    ("daemon_json", "/etc/docker/daemon.json", "CIS Docker 1.1.9"),
    ("llmrack_secrets", "/opt/llmrack/stack/secrets", "seed 003: secrets access audited"),
    ("sshd_config", "/etc/ssh/sshd_config", "llmrack: sshd configuration changes"),
    ("sshd_config_d", "/etc/ssh/sshd_config.d", "llmrack: sshd configuration changes"),
]

# (id suffix, path, most permissive mode (octal), owner, groups accepted, benchmark line)
FILES: list[tuple[str, str, int, str, tuple[str, ...], str]] = [
    ("passwd", "/etc/passwd", 0o644, "root", ("root",), "CIS 7.1.1"),
    ("passwd_backup", "/etc/passwd-", 0o644, "root", ("root",), "CIS 7.1.2"),
    ("group", "/etc/group", 0o644, "root", ("root",), "CIS 7.1.3"),
    ("group_backup", "/etc/group-", 0o644, "root", ("root",), "CIS 7.1.4"),
    ("shadow", "/etc/shadow", 0o640, "root", ("root", "shadow"), "CIS 7.1.5"),
    ("shadow_backup", "/etc/shadow-", 0o640, "root", ("root", "shadow"), "CIS 7.1.6"),
    ("gshadow", "/etc/gshadow", 0o640, "root", ("root", "shadow"), "CIS 7.1.7"),
    ("gshadow_backup", "/etc/gshadow-", 0o640, "root", ("root", "shadow"), "CIS 7.1.8"),
    ("shells", "/etc/shells", 0o644, "root", ("root",), "CIS 7.1.9"),
    ("opasswd", "/etc/security/opasswd", 0o600, "root", ("root",), "CIS 7.1.10"),
    ("sshd_config", "/etc/ssh/sshd_config", 0o600, "root", ("root",), "CIS 5.1.1"),
    ("sshd_dropin", "/etc/ssh/sshd_config.d/50-llmrack.conf", 0o644, "root", ("root",), "CIS 5.1.1"),
    ("ssh_host_ed25519", "/etc/ssh/ssh_host_ed25519_key", 0o600, "root", ("root",), "CIS 5.1.2"),
    ("ssh_host_rsa", "/etc/ssh/ssh_host_rsa_key", 0o600, "root", ("root",), "CIS 5.1.2"),
    ("ssh_host_ed25519_pub", "/etc/ssh/ssh_host_ed25519_key.pub", 0o644, "root", ("root",), "CIS 5.1.3"),
    ("ssh_host_rsa_pub", "/etc/ssh/ssh_host_rsa_key.pub", 0o644, "root", ("root",), "CIS 5.1.3"),
    ("issue", "/etc/issue", 0o644, "root", ("root",), "CIS 1.6.5"),
    ("issue_net", "/etc/issue.net", 0o644, "root", ("root",), "CIS 1.6.6"),
    ("motd", "/etc/motd", 0o644, "root", ("root",), "CIS 1.6.4"),
    ("audit_rules", "/etc/audit/rules.d/60-llmrack.rules", 0o640, "root", ("root",),
     "CIS 6.2.4.5 / CIS 6.2.4.6 / CIS 6.2.4.7"),
    ("auditd_conf", "/etc/audit/auditd.conf", 0o640, "root", ("root",), "CIS 6.2.4.5 / CIS 6.2.4.6 / CIS 6.2.4.7"),
    ("audit_log", "/var/log/audit/audit.log", 0o640, "root", ("root", "adm"),
     "CIS 6.2.4.1 / CIS 6.2.4.2 / CIS 6.2.4.3"),
    ("audit_log_dir", "/var/log/audit", 0o750, "root", ("root", "adm"), "CIS 6.2.4.4"),
    *[(f"audit_tool_{tool}", f"/sbin/{tool}", 0o755, "root", ("root",), "CIS 6.2.4.8 / CIS 6.2.4.9 / CIS 6.2.4.10")
      for tool in ("auditctl", "aureport", "ausearch", "autrace", "auditd", "augenrules")],
    ("sudoers", "/etc/sudoers", 0o440, "root", ("root",), "llmrack: sudo policy private"),
    ("stack_secrets", "/opt/llmrack/stack/secrets", 0o700, "root", ("root",), "seed 003 / llmrack secrets policy"),
    ("daemon_json", "/etc/docker/daemon.json", 0o644, "root", ("root",), "CIS Docker 3.17"),
    ("docker_sock", "/run/docker.sock", 0o660, "root", ("docker", "root"), "CIS Docker 3.15/3.16"),
    ("docker_service", "/lib/systemd/system/docker.service", 0o644, "root", ("root",), "CIS Docker 3.1/3.2"),
]

MODULES: list[tuple[str, str]] = [
    ("cramfs", "CIS 1.1.1.1"), ("freevxfs", "CIS 1.1.1.2"), ("hfs", "CIS 1.1.1.3"), ("hfsplus", "CIS 1.1.1.4"),
    ("jffs2", "CIS 1.1.1.5"), ("udf", "CIS 1.1.1.10"), ("usb-storage", "CIS 1.1.1.9"), ("dccp", "CIS 3.2.1"),
    ("tipc", "CIS 3.2.2"), ("rds", "CIS 3.2.3"), ("sctp", "CIS 3.2.4"),
    ("firewire-core", "Lynis STRG-1846"), ("firewire-ohci", "Lynis STRG-1846"), ("firewire-sbp2", "Lynis STRG-1846"),
]

# packages a hardened server carries (integrity, accounting, malware and USB tools)
PRESENT_PACKAGES: list[tuple[str, str]] = [
    ("aide", "CIS 6.3.1 / Lynis FINT-4350"), ("libpam-tmpdir", "Lynis DEB-0280"), ("apt-listchanges", "Lynis DEB-0811"),
    ("debsums", "Lynis PKGS-7370"), ("acct", "Lynis ACCT-9622"), ("chkrootkit", "Lynis HRDN-7230"),
    ("usbguard", "Lynis USB-3000"), ("sudo", "CIS 5.2.1"), ("libpam-modules", "CIS 5.3.1.2"),
    ("libpam-pwquality", "CIS 5.3.1.3"), ("nftables", "CIS 4.3.1"),
]

# packages a server must not carry (CIS 2.1.x server services, 2.2.x clients)
ABSENT_PACKAGES: list[tuple[str, str]] = [
    ("autofs", "CIS 2.1.1"), ("avahi-daemon", "CIS 2.1.2"), ("isc-dhcp-server", "CIS 2.1.3"), ("bind9", "CIS 2.1.4"),
    ("dnsmasq", "CIS 2.1.5"), ("vsftpd", "CIS 2.1.6"), ("slapd", "CIS 2.1.7"), ("dovecot-imapd", "CIS 2.1.8"),
    ("nfs-kernel-server", "CIS 2.1.9"), ("ypserv", "CIS 2.1.10"), ("cups", "CIS 2.1.11"), ("rpcbind", "CIS 2.1.12"),
    ("rsync", "CIS 2.1.13"), ("samba", "CIS 2.1.14"), ("snmpd", "CIS 2.1.15"), ("tftpd-hpa", "CIS 2.1.16"),
    ("squid", "CIS 2.1.17"), ("apache2", "CIS 2.1.18"), ("xinetd", "CIS 2.1.19"), ("xserver-common", "CIS 2.1.20"),
    ("nis", "CIS 2.2.1"), ("rsh-client", "CIS 2.2.2"), ("talk", "CIS 2.2.3"), ("telnet", "CIS 2.2.4"),
    ("inetutils-telnet", "CIS 2.2.4"), ("ldap-utils", "CIS 2.2.5"), ("ftp", "CIS 2.2.6"), ("tnftp", "CIS 2.2.6"),
    ("prelink", "CIS 1.5.4"), ("apport", "CIS 1.5.5"),
]

# (id suffix, file glob, extended regex a line must match, benchmark line)
LINES: list[tuple[str, str, str, str]] = [
    ("pass_max_days", "/etc/login.defs", r"^PASS_MAX_DAYS\s+([1-9][0-9]?|[1-2][0-9]{2}|3[0-5][0-9]|36[0-5])$",
     "CIS 5.4.1.1"),
    ("pass_min_days", "/etc/login.defs", r"^PASS_MIN_DAYS\s+[1-9][0-9]*$", "CIS 5.4.1.2"),
    ("pass_warn_age", "/etc/login.defs", r"^PASS_WARN_AGE\s+([7-9]|[1-9][0-9]+)$", "CIS 5.4.1.3"),
    ("encrypt_method", "/etc/login.defs", r"^ENCRYPT_METHOD\s+(SHA512|YESCRYPT)$", "CIS 5.4.1.4"),
    ("inactive", "/etc/default/useradd", r"^INACTIVE=([1-9]|[1-3][0-9]|4[0-5])$", "CIS 5.4.1.5"),
    ("umask_login_defs", "/etc/login.defs", r"^UMASK\s+0?27$", "CIS 5.4.3.3"),
    ("umask_profile", "/etc/profile.d/*.sh", r"^\s*umask\s+0?27\b", "CIS 5.4.3.3"),
    ("tmout", "/etc/profile.d/*.sh", r"^\s*(readonly\s+)?TMOUT=([1-9][0-9]{0,2})$", "CIS 5.4.3.2"),
    ("faillock_deny", "/etc/security/faillock.conf", r"^\s*deny\s*=\s*[1-5]$", "CIS 5.3.3.1.1"),
    ("faillock_unlock", "/etc/security/faillock.conf", r"^\s*unlock_time\s*=\s*(0|9[0-9]{2}|[1-9][0-9]{3,})$",
     "CIS 5.3.3.1.2"),
    ("pam_faillock_auth", "/etc/pam.d/common-auth", r"pam_faillock\.so\s+(preauth|authfail)", "CIS 5.3.2.2"),
    ("pam_faillock_account", "/etc/pam.d/common-account", r"pam_faillock\.so", "CIS 5.3.2.2"),
    ("pam_pwquality", "/etc/pam.d/common-password", r"pam_pwquality\.so", "CIS 5.3.2.3"),
    ("pwquality_minlen", "/etc/security/pwquality.conf.d/*.conf", r"^\s*minlen\s*=\s*(1[4-9]|[2-9][0-9])$",
     "CIS 5.3.3.2.2"),
    ("pwquality_difok", "/etc/security/pwquality.conf.d/*.conf", r"^\s*difok\s*=\s*([2-9]|[1-9][0-9])$",
     "CIS 5.3.3.2.1"),
    ("pwquality_maxrepeat", "/etc/security/pwquality.conf.d/*.conf", r"^\s*maxrepeat\s*=\s*[1-3]$", "CIS 5.3.3.2.4"),
    ("pwquality_maxsequence", "/etc/security/pwquality.conf.d/*.conf", r"^\s*maxsequence\s*=\s*[1-3]$",
     "CIS 5.3.3.2.5"),
    ("pwquality_minclass", "/etc/security/pwquality.conf.d/*.conf", r"^\s*minclass\s*=\s*[34]$", "CIS 5.3.3.2.3"),
    ("pwquality_dictcheck", "/etc/security/pwquality.conf.d/*.conf", r"^\s*dictcheck\s*=\s*1$", "CIS 5.3.3.2.6"),
    ("pwquality_root", "/etc/security/pwquality.conf.d/*.conf", r"^\s*enforce_for_root", "CIS 5.3.3.2.8"),
    ("su_restricted", "/etc/pam.d/su", r"^auth\s+required\s+pam_wheel\.so.*use_uid.*group=", "CIS 5.2.7"),
    ("sudo_use_pty", "/etc/sudoers.d/*", r"^\s*Defaults\s+use_pty", "CIS 5.2.2"),
    ("sudo_logfile", "/etc/sudoers.d/*", r"^\s*Defaults\s+logfile=", "CIS 5.2.3"),
    ("core_limits", "/etc/security/limits.d/*.conf", r"^\*\s+hard\s+core\s+0$", "CIS 1.5.3 / dev-sec os-hardening"),
    ("coredump_storage", "/etc/systemd/coredump.conf.d/*.conf", r"^Storage=none$", "CIS 1.5.3"),
    ("coredump_size", "/etc/systemd/coredump.conf.d/*.conf", r"^ProcessSizeMax=0$", "CIS 1.5.3"),
    ("audit_backlog", "/etc/audit/rules.d/*.rules", r"^-b\s+[0-9]{4,}", "CIS 6.2.1.4"),
    ("ssh_warning_text", "/etc/issue.net", r"[Aa]uthori[sz]ed", "CIS 1.6.3"),
    ("local_warning_text", "/etc/issue", r"[Aa]uthori[sz]ed", "CIS 1.6.2"),
    ("unattended_security", "/etc/apt/apt.conf.d/*unattended*", r"-security", "dev-sec os-hardening / seed 003"),
    ("sha_crypt_min_rounds", "/etc/login.defs", r"^SHA_CRYPT_MIN_ROUNDS\s+([5-9][0-9]{3}|[1-9][0-9]{4,})$",
     "Lynis AUTH-9230"),
    ("sha_crypt_max_rounds", "/etc/login.defs", r"^SHA_CRYPT_MAX_ROUNDS\s+([5-9][0-9]{3}|[1-9][0-9]{4,})$",
     "Lynis AUTH-9230"),
    ("core_ulimit_profile", "/etc/profile.d/*.sh", r"^\s*ulimit\s+-c\s+0\b", "Lynis KRNL-5820 / CIS 1.5.3"),
    ("pam_tmpdir", "/etc/pam.d/common-session", r"pam_tmpdir\.so", "Lynis DEB-0280"),
    ("fail2ban_jail_local", "/etc/fail2ban/jail.local", r"^\[sshd\]$", "Lynis DEB-0880"),
    ("ssh_warning_legal", "/etc/issue.net", r"[Pp]rosecut", "Lynis BANN-7130"),
    ("local_warning_legal", "/etc/issue", r"[Pp]rosecut", "Lynis BANN-7126"),
    ("usbguard_implicit_block", "/etc/usbguard/usbguard-daemon.conf", r"^ImplicitPolicyTarget=block$",
     "Lynis USB-3000"),
    ("usbguard_inserted_policy", "/etc/usbguard/usbguard-daemon.conf", r"^InsertedDevicePolicy=(apply-policy|block)$",
     "Lynis USB-3000"),
    ("usbguard_present_policy", "/etc/usbguard/usbguard-daemon.conf",
     r"^PresentControllerPolicy=(apply-policy|keep)$", "Lynis USB-3000"),
]

# Docker: each property of every running container (CIS Docker Benchmark 1.6 section 5 / 4, seed 003)
CONTAINER: list[tuple[str, str, str]] = [
    ("cap_drop_all", "every capability dropped, only the needed ones added (CIS Docker 5.4)", "CIS Docker 5.4"),
    ("no_new_privileges", "no-new-privileges on (CIS Docker 5.26)", "CIS Docker 5.26"),
    ("not_privileged", "not privileged (CIS Docker 5.5)", "CIS Docker 5.5"),
    ("pids_limit", "a pids limit (CIS Docker 5.29)", "CIS Docker 5.29"),
    ("memory_limit", "a memory limit (CIS Docker 5.11)", "CIS Docker 5.11"),
    ("read_only_rootfs", "a read-only root filesystem (CIS Docker 5.13)", "CIS Docker 5.13"),
    ("non_root", "a non-root user (CIS Docker 4.1)", "CIS Docker 4.1 / seed 003"),
    ("healthcheck", "a healthcheck (CIS Docker 4.6)", "CIS Docker 4.6"),
    ("no_docker_socket", "no Docker socket mounted (CIS Docker 5.32)", "CIS Docker 5.32"),
    ("no_host_ipc", "the host IPC namespace not shared (CIS Docker 5.17)", "CIS Docker 5.17"),
    ("no_host_uts", "the host UTS namespace not shared (CIS Docker 5.21)", "CIS Docker 5.21"),
    ("no_sensitive_mounts", "no host system directory mounted writable (CIS Docker 5.6)", "CIS Docker 5.6"),
    ("restart_policy", "a bounded restart policy (CIS Docker 5.15)", "CIS Docker 5.15"),
]

# (id suffix, /etc/shadow field, bound, benchmark line): every human account with a password
AGING: list[tuple[str, str, str, str]] = [
    ("pass_max_days", "max", "<=365", "CIS 5.4.1.1"),
    ("pass_min_days", "min", ">=1", "CIS 5.4.1.2"),
    ("pass_warn_age", "warn", ">=7", "CIS 5.4.1.3"),
]

SERVICES: list[tuple[str, str, str]] = [
    ("auditd_active", "auditd", "CIS 6.2.1.2"),
    ("fail2ban_active", "fail2ban", "llmrack / seed 003: brute-force bans"),
]


@dataclass(frozen=True)
class Control:
    id: str
    title: str
    ref: str
    family: str
    params: dict[str, Any] = field(default_factory=dict)


def build() -> list[Control]:
    out: list[Control] = []
    for sfx, key, want, ref in SYSCTL:
        out.append(Control(f"sec.kernel.{sfx}", f"{key} = {'|'.join(want)}", ref, "sysctl", {"key": key, "want": want}))
    for sfx, key, want, ref in SSHD:
        out.append(Control(f"sec.ssh.{sfx}", f"sshd {key} {'|'.join(want)}", ref, "sshd", {"key": key, "want": want}))
    for sfx, key, weak, ref in (("ciphers", "ciphers", WEAK_CIPHER, "CIS 5.1.6"),
                                ("macs", "macs", WEAK_MAC, "CIS 5.1.15"),
                                ("kex", "kexalgorithms", WEAK_KEX, "CIS 5.1.12"),
                                ("host_key_algorithms", "hostkeyalgorithms", WEAK_HOSTKEY, "dev-sec ssh-hardening")):
        out.append(Control(f"sec.ssh.{sfx}", f"sshd {key}: no weak algorithm", ref, "sshd_algos",
                           {"key": key, "weak": weak}))
    out.append(Control("sec.ssh.moduli", "no Diffie-Hellman group under 3072 bits in /etc/ssh/moduli",
                       "dev-sec ssh-hardening (moduli)", "moduli"))
    out.append(Control("sec.ssh.deploy_user_login", "the deploying user logs in over SSH and runs sudo",
                       "llmrack: never lock out the admin", "login"))
    for sfx, word, ref in AUDIT:
        out.append(Control(f"sec.audit.{sfx}", f"audit rule for {word}", ref, "audit", {"word": word}))
    for sfx, path, mode, owner, groups, ref in FILES:
        out.append(Control(f"sec.file.{sfx}", f"{path} at most {mode:o}, {owner}:{'|'.join(groups)}", ref, "file",
                           {"path": path, "mode": mode, "owner": owner, "groups": groups}))
    for mod, ref in MODULES:
        out.append(Control(f"sec.module.{mod.replace('-', '_')}", f"kernel module {mod} cannot load", ref, "module",
                           {"module": mod}))
    out.append(Control("sec.module.overlay_allowed", "overlay is not disabled (Docker's storage driver)",
                       "llmrack (CIS 1.1.1.x blacklists elsewhere break Docker)", "module_allowed",
                       {"module": "overlay"}))
    for pkg, ref in ABSENT_PACKAGES:
        out.append(Control(f"sec.pkg.{pkg.replace('-', '_')}_absent", f"{pkg} not installed", ref, "absent",
                           {"package": pkg}))
    for pkg, ref in PRESENT_PACKAGES:
        out.append(Control(f"sec.pkg.{pkg.replace('-', '_')}_present", f"{pkg} installed", ref, "present",
                           {"package": pkg}))
    for sfx, path, regex, ref in LINES:
        out.append(Control(f"sec.conf.{sfx}", f"{path}: {regex}", ref, "line", {"path": path, "regex": regex}))
    for sfx, fld, bound, ref in AGING:
        out.append(Control(f"sec.account.{sfx}", f"every account with a password: {fld} {bound} (chage)", ref,
                           "aging", {"field": fld, "bound": bound}))
    for sfx, svc, ref in SERVICES:
        out.append(Control(f"sec.service.{sfx}", f"{svc} active and enabled", ref, "service", {"service": svc}))
    out.append(Control("sec.service.fail2ban_sshd_jail", "fail2ban's sshd jail is running", "llmrack / seed 003",
                       "jail", {"jail": "sshd"}))
    for sfx, rule, title, ref in more.ACCOUNTS:
        out.append(Control(f"sec.account.{sfx}", title, ref, "accounts", {"rule": rule}))
    for sfx, tag, title, ref in more.SCANS:
        out.append(Control(f"sec.fs.{sfx}", title, ref, "scan", {"tag": tag}))
    for sfx, path, regex, ref in more.NO_LINES:
        out.append(Control(f"sec.conf.{sfx}", f"{path}: no line matches {regex}", ref, "noline",
                           {"path": path, "regex": regex}))
    for sfx, path, regex, ref in more.MORE_LINES:
        out.append(Control(f"sec.conf.{sfx}", f"{path}: {regex}", ref, "line", {"path": path, "regex": regex}))
    for sfx, unit, active, enabled, ref in more.UNITS:
        out.append(Control(f"sec.service.{sfx}", f"{unit}: {'|'.join(active)}, {'|'.join(enabled)}", ref, "unit",
                           {"unit": unit, "active": active, "enabled": enabled}))
    for sfx, regexes, title, ref in more.NFT:
        out.append(Control(f"sec.firewall.{sfx}", title, ref, "nft", {"regexes": regexes}))
    for sfx, proc, user, ref in more.PROCESSES:
        out.append(Control(f"sec.service.{sfx}", f"every {proc} runs as {user}", ref, "process",
                           {"process": proc, "user": user}))
    for sfx, pkg, family, params, ref in more.IF_INSTALLED:
        what = params.get("path") or params.get("unit")
        out.append(Control(f"sec.cron.{sfx}", f"{what} (when {pkg} is installed)", ref, "if_installed",
                           {**params, "package": pkg, "family": family}))
    for sfx, what, title, ref in more.APPARMOR:
        out.append(Control(f"sec.apparmor.{sfx}", title, ref, "apparmor", {"what": what}))
    for pkg, ref in more.MORE_PRESENT:
        out.append(Control(f"sec.pkg.{pkg.replace('-', '_')}_present", f"{pkg} installed", ref, "present",
                           {"package": pkg}))
    out.append(Control("sec.service.approved_listeners", "only approved programs listen on addresses other than "
                       f"loopback ({', '.join(more.APPROVED_LISTENERS)})", "CIS 2.1.22", "listeners",
                       {"approved": more.APPROVED_LISTENERS}))
    out.append(Control("sec.service.chrony_sources", "chrony's sources are time servers the tier names",
                       "CIS 2.3.3.1", "chrony_sources"))
    for pkg, ref in more.MORE_ABSENT:
        out.append(Control(f"sec.pkg.{pkg.replace('-', '_')}_absent", f"{pkg} not installed", ref, "absent",
                           {"package": pkg}))
    for sfx, title, ref in CONTAINER:
        out.append(Control(f"sec.container.{sfx}", f"every stack container has {title}", ref, "container",
                           {"property": sfx}))
    return out


CONTROLS: list[Control] = build()

