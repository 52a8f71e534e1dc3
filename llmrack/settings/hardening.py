"""Settings of the hardening role (controls follow dev-sec's SSH and OS baselines)."""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import Field, field_validator

from llmrack.settings._model import Settings

# dev-sec ssh-hardening's defaults for OpenSSH >= 8.5 (Ubuntu 22.04: 8.9, Ubuntu 24.04: 9.6, Debian 12: 9.2)
DEVSEC_CIPHERS = [
    "chacha20-poly1305@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
]
DEVSEC_MACS = [
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha2-256-etm@openssh.com",
    "umac-128-etm@openssh.com",
    "hmac-sha2-512",
    "hmac-sha2-256",
]
DEVSEC_KEX = [
    "sntrup761x25519-sha512@openssh.com",
    "curve25519-sha256@libssh.org",
    "diffie-hellman-group-exchange-sha256",
]
DEVSEC_HOST_KEY_ALGORITHMS = [
    "ssh-ed25519-cert-v01@openssh.com",
    "ssh-ed25519",
    "rsa-sha2-512-cert-v01@openssh.com",
    "rsa-sha2-256-cert-v01@openssh.com",
    "rsa-sha2-512",
    "rsa-sha2-256",
]
HOST_KEYS = ["/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_rsa_key"]
DEFAULT_BANNER = (
    "Authorized access only. This system is monitored and audited; every session is recorded.\n"
    "Unauthorized use is prohibited and may be prosecuted: disconnect now if you are not authorized.\n"
    "仅限授权人员访问。本系统受监控和审计，所有会话均被记录；禁止未经授权的使用，违者可能被追究法律责任。"
)


class HardeningSettings(Settings):
    enabled: bool = True
    ssh_password_authentication: bool = Field(False, description="SSH password logins (off: keys only).")
    ssh_permit_root_login: Literal["auto", "yes", "no", "prohibit-password", "forced-commands-only"] = Field(
        "auto", description="sshd PermitRootLogin; auto: 'no', or 'prohibit-password' when llmrack connects as root."
    )
    ssh_max_auth_tries: int = Field(3, ge=1, le=10, description="sshd MaxAuthTries.")
    ssh_client_alive_interval: int = Field(300, ge=0, description="sshd ClientAliveInterval (seconds; 0: off).")
    ssh_client_alive_count_max: int = Field(2, ge=0, description="sshd ClientAliveCountMax.")
    ssh_max_sessions: int = Field(10, ge=1, le=10, description="sshd MaxSessions: sessions multiplexed on one "
                                  "connection (CIS 5.1.17: at most 10; Lynis SSH-7408 asks 2, which breaks "
                                  "pyinfra: its SFTP and command channels share one connection).")
    ssh_allow_tcp_forwarding: Literal["yes", "no", "local", "remote", "all"] = Field(
        "local", description="sshd AllowTcpForwarding; 'local' keeps `ssh -L` tunnels to 127.0.0.1 dashboards."
    )
    ssh_ciphers: list[str] = Field(DEVSEC_CIPHERS, min_length=1, description="sshd Ciphers (dev-sec defaults).")
    ssh_macs: list[str] = Field(DEVSEC_MACS, min_length=1, description="sshd MACs (dev-sec defaults).")
    ssh_kex_algorithms: list[str] = Field(
        DEVSEC_KEX, min_length=1, description="sshd KexAlgorithms (dev-sec defaults for OpenSSH >= 8.5)."
    )
    ssh_host_key_algorithms: list[str] = Field(
        DEVSEC_HOST_KEY_ALGORITHMS, min_length=1, description="sshd HostKeyAlgorithms (dev-sec defaults)."
    )
    ssh_host_keys: list[str] = Field(HOST_KEYS, min_length=1, description="sshd HostKey files (no ECDSA, no DSA).")
    banner: str = Field(DEFAULT_BANNER, description="Text of /etc/issue.net, shown by sshd before login.")
    core_dumps: bool = Field(False, description="Allow core dumps (off: limits and systemd-coredump disable them).")
    firewall: bool = Field(True, description="Allow only SSH and the gateway's ports from outside.")
    admin_networks: list[str] = Field([], description="CIDRs allowed to reach SSH and monitoring; empty: any.")
    unattended_security_upgrades: bool = Field(True, description="Security updates only; driver packages held.")
    host: HostSecuritySettings = Field(default_factory=lambda: HostSecuritySettings(),
                                       description="Kernel, audit, fail2ban and account policy (host_security role).")

    @field_validator("admin_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"{cidr!r} is not an IPv4/IPv6 address or CIDR network") from None
        return value

    def root_login_for(self, user: str) -> str:
        """The PermitRootLogin value for a deploy connecting as ``user`` (``auto`` resolved)."""
        if self.ssh_permit_root_login != "auto":
            return self.ssh_permit_root_login
        return "prohibit-password" if user == "root" else "no"

    @field_validator("ssh_host_keys")
    @classmethod
    def _host_keys(cls, value: list[str]) -> list[str]:
        bad = [k for k in value if not re.match(r"^/etc/ssh/[A-Za-z0-9_.-]+$", k)]
        if bad:
            raise ValueError(f"{bad[0]!r}: a key file directly under /etc/ssh")
        return value

    @field_validator("ssh_ciphers", "ssh_macs", "ssh_kex_algorithms", "ssh_host_key_algorithms")
    @classmethod
    def _algorithms(cls, value: list[str]) -> list[str]:
        bad = [a for a in value if not a or any(c in a for c in " ,\t\n")]
        if bad:
            raise ValueError(f"one algorithm name per item, without spaces or commas: {bad[0]!r}")
        return value


class HostSecuritySettings(Settings):
    """The host beyond SSH: kernel, audit, intrusion bans, accounts (CIS Ubuntu 24.04 Level 1 / dev-sec)."""

    enabled: bool = True
    apply_sysctl: bool = Field(True, description="Load the security sysctls at once (off where the kernel is shared).")
    audit_daemon: bool = Field(True, description="Run auditd and load the rules (off where the kernel is shared).")
    fail2ban: bool = Field(True, description="Ban addresses that fail SSH logins, and on gateway hosts addresses "
                           "that send requests without a valid API key (fail2ban, nftables).")
    ssh_max_retry: int = Field(5, ge=1, le=100, description="fail2ban sshd: failures before a ban.")
    gateway_max_rejected: int = Field(
        20, ge=1, le=10000, description="fail2ban llmrack-gateway: requests without a valid key (401, or 429 of the "
        "unauthenticated limit) from one address within find_time_s before it is banned from every published port.")
    find_time_s: int = Field(600, ge=10, description="fail2ban: window the failures are counted in.")
    ban_time_s: int = Field(900, ge=10, description="fail2ban: how long an address stays banned.")
    ban_ignore: list[str] = Field(["127.0.0.1/8", "::1"], description="Addresses never banned (CIDRs).")
    password_max_days: int = Field(365, ge=1, le=99999, description="login.defs PASS_MAX_DAYS (CIS 5.4.1.1).")
    password_min_days: int = Field(1, ge=0, le=365, description="login.defs PASS_MIN_DAYS (CIS 5.4.1.2).")
    password_warn_age: int = Field(7, ge=0, le=365, description="login.defs PASS_WARN_AGE (CIS 5.4.1.3).")
    inactive_days: int = Field(45, ge=1, le=365, description="useradd INACTIVE (CIS 5.4.1.5).")
    password_min_length: int = Field(14, ge=8, le=128, description="pwquality minlen (CIS 5.3.3.2.2).")
    password_history: int = Field(24, ge=24, le=400, description="pam_pwhistory remember: earlier passwords "
                                  "that cannot be reused (CIS 5.3.3.3.1).")
    faillock_deny: int = Field(5, ge=1, le=20, description="pam_faillock deny (CIS 5.3.3.1.1).")
    faillock_unlock_time_s: int = Field(900, ge=0, description="pam_faillock unlock_time (CIS 5.3.3.1.2).")
    session_timeout_s: int = Field(900, ge=0, description="Shell TMOUT for idle interactive sessions; 0: off.")
    usb_guard: bool = Field(True, description="USBGuard: devices present at deploy time are allowed, any "
                            "device plugged in later is blocked (Lynis USB-3000).")
    usb_guard_daemon: bool = Field(True, description="Run usbguard-daemon (off where the host has no USB bus).")
    ssh_moduli_min_bits: int = Field(3072, ge=2048, description="Drop /etc/ssh/moduli groups smaller than this.")

    @field_validator("ban_ignore")
    @classmethod
    def _ignore(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"{cidr!r} is not an IPv4/IPv6 address or CIDR network") from None
        return value
