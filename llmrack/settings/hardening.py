"""Settings of the hardening role (controls follow dev-sec's SSH and OS baselines)."""

from __future__ import annotations

import ipaddress
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
DEFAULT_BANNER = (
    "Authorized access only. This host is monitored and every session is logged.\n"
    "仅限授权人员访问。本主机受监控，所有会话均被记录。"
)


class HardeningSettings(Settings):
    enabled: bool = True
    ssh_password_authentication: bool = Field(False, description="SSH password logins (off: keys only).")
    ssh_permit_root_login: Literal["yes", "no", "prohibit-password", "forced-commands-only"] = Field(
        "prohibit-password", description="sshd PermitRootLogin."
    )
    ssh_max_auth_tries: int = Field(3, ge=1, le=10, description="sshd MaxAuthTries.")
    ssh_client_alive_interval: int = Field(300, ge=0, description="sshd ClientAliveInterval (seconds; 0: off).")
    ssh_client_alive_count_max: int = Field(2, ge=0, description="sshd ClientAliveCountMax.")
    ssh_allow_tcp_forwarding: Literal["yes", "no", "local", "remote", "all"] = Field(
        "local", description="sshd AllowTcpForwarding; 'local' keeps `ssh -L` tunnels to 127.0.0.1 dashboards."
    )
    ssh_ciphers: list[str] = Field(DEVSEC_CIPHERS, min_length=1, description="sshd Ciphers (dev-sec defaults).")
    ssh_macs: list[str] = Field(DEVSEC_MACS, min_length=1, description="sshd MACs (dev-sec defaults).")
    ssh_kex_algorithms: list[str] = Field(
        DEVSEC_KEX, min_length=1, description="sshd KexAlgorithms (dev-sec defaults for OpenSSH >= 8.5)."
    )
    banner: str = Field(DEFAULT_BANNER, description="Text of /etc/issue.net, shown by sshd before login.")
    core_dumps: bool = Field(False, description="Allow core dumps (off: limits and systemd-coredump disable them).")
    firewall: bool = Field(True, description="Allow only SSH and the gateway's ports from outside.")
    admin_networks: list[str] = Field([], description="CIDRs allowed to reach SSH and monitoring; empty: any.")
    unattended_security_upgrades: bool = Field(True, description="Security updates only; driver packages held.")

    @field_validator("admin_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"{cidr!r} is not an IPv4/IPv6 address or CIDR network") from None
        return value

    @field_validator("ssh_ciphers", "ssh_macs", "ssh_kex_algorithms")
    @classmethod
    def _algorithms(cls, value: list[str]) -> list[str]:
        bad = [a for a in value if not a or any(c in a for c in " ,\t\n")]
        if bad:
            raise ValueError(f"one algorithm name per item, without spaces or commas: {bad[0]!r}")
        return value
