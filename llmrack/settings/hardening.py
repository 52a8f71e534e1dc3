"""Settings of the hardening role (controls follow dev-sec's SSH and OS baselines)."""

from __future__ import annotations

from pydantic import Field

from llmrack.settings._model import Settings


class HardeningSettings(Settings):
    enabled: bool = True
    ssh_password_authentication: bool = Field(False, description="SSH password logins (off: keys only).")
    ssh_permit_root_login: str = Field("prohibit-password", description="sshd PermitRootLogin.")
    firewall: bool = Field(True, description="Allow only SSH and the gateway's ports from outside.")
    admin_networks: list[str] = Field([], description="CIDRs allowed to reach SSH and monitoring; empty: any.")
    unattended_security_upgrades: bool = Field(True, description="Security updates only; driver packages held.")
