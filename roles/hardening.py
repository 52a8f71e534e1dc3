"""Hardening: sshd (dev-sec ssh-hardening baseline), security-only unattended upgrades, a login banner,
core dumps off and, when the tier asks for it, an nftables input firewall.

Safety first, because a wrong sshd or firewall locks the admin out:

* password logins are disabled only when the connecting user has authorized keys, and root logins are
  kept when the admin connects as root; otherwise the host is stopped with a message saying what to fix;
* a drop-in read before llmrack's (sshd keeps the first value) that sets a managed key differently stops
  the host instead of being silently ignored;
* every configuration goes through ``*.new`` → check with the real tool (``sshd -t -f``, ``nft -c -f``) →
  move, only when the host's file differs; sshd reloads and the firewall reloads only after such a move.

The firewall is llmrack's own table ``inet llmrack``, loaded by its own unit: it never flushes the ruleset, so
Docker's tables stay Docker's. It filters the input hook and, because ports Docker publishes are forwarded to
containers without ever reaching input, new connections forwarded into a Docker bridge as well: each port
opens only to the sources ``llmrack.exposure`` allows (SSH from the admin networks, the gateway to all,
exporters and published models to the inventory's monitoring and gateway hosts).
"""

from __future__ import annotations

import ipaddress
import shlex
from typing import Any

from pyinfra import host, logger
from pyinfra.api import FactBase, deploy
from pyinfra.facts.server import LinuxDistribution
from pyinfra.operations import apt, files, systemd

from llmrack.config import HostSpec
from llmrack.exposure import Opening
from llmrack.exposure import gateway_ports as _gateway_ports
from llmrack.facts.system import distribution_id
from llmrack.ops import (
    APT_CACHE_MAX_AGE_S,
    APT_RETRIES,
    FollowUp,
    install_checked,
    put_text,
    render_template,
    stop_host,
)
from llmrack.packages import NFTABLES, SSH_SERVER, UNATTENDED_UPGRADES
from llmrack.settings.hardening import HardeningSettings

SSHD = "/usr/sbin/sshd"
NFT = "/usr/sbin/nft"
SSHD_DROPIN = "/etc/ssh/sshd_config.d/50-llmrack.conf"
BANNER = "/etc/issue.net"
UNATTENDED_CONF = "/etc/apt/apt.conf.d/52llmrack-unattended-upgrades"
LIMITS_CONF = "/etc/security/limits.d/60-llmrack-coredump.conf"
COREDUMP_CONF = "/etc/systemd/coredump.conf.d/60-llmrack.conf"
FIREWALL_RULESET = "/etc/llmrack/firewall.nft"
FIREWALL_UNIT = "llmrack-firewall.service"
DOCKER_BRIDGES = ["docker0", "br-*"]
# unattended-upgrades origins of the security archives (Origins-Pattern syntax)
SECURITY_ORIGINS: dict[str, list[str]] = {
    "debian": ["origin=Debian,codename=${distro_codename}-security,label=Debian-Security"],
    "ubuntu": [
        "origin=Ubuntu,archive=${distro_codename}-security",
        "origin=UbuntuESMApps,archive=${distro_codename}-apps-security",
        "origin=UbuntuESM,archive=${distro_codename}-infra-security",
    ],
}


# -------------------------------------------------------------------------------------------------- facts


class LoginUserKeys(FactBase):
    """The user pyinfra logged in as (``SUDO_USER`` under sudo) and how many keys its authorized_keys hold.

    ``{"user": "deploy", "keys": 1}``.
    """

    def command(self) -> str:
        return (
            'u="${SUDO_USER:-$(id -un)}"; h="$(getent passwd "$u" | cut -d: -f6)"; n=0; '
            'for f in "$h/.ssh/authorized_keys" "$h/.ssh/authorized_keys2"; do '
            'if [ -r "$f" ]; then n=$((n + $(grep -cE "^[^#[:space:]]" "$f" || true))); fi; done; '
            'echo "user=$u"; echo "keys=$n"'
        )

    @staticmethod
    def default() -> dict[str, Any]:
        return {"user": "", "keys": 0}

    def process(self, output: list[str]) -> dict[str, Any]:
        out = self.default()
        for line in output:
            key, _, value = line.strip().partition("=")
            if key == "user":
                out["user"] = value
            elif key == "keys" and value.isdigit():
                out["keys"] = int(value)
        return out


class SshdEffectiveConfig(FactBase):
    """``sshd -T``: the running configuration's keys (lower case) and their values, in order."""

    def command(self) -> str:
        return f"{SSHD} -T 2>/dev/null || true"

    def requires_command(self) -> str:
        return SSHD

    @staticmethod
    def default() -> dict[str, list[str]]:
        return {}

    def process(self, output: list[str]) -> dict[str, list[str]]:
        return parse_sshd_t(output)


class SshdDropins(FactBase):
    """Directives of the other files in /etc/ssh/sshd_config.d: ``{path: {key (lower case): value}}``.

    Only the first value of a key before any ``Match`` block counts (sshd keeps the first one it reads).
    """

    def command(self, exclude: str = SSHD_DROPIN) -> str:
        return (
            "for f in /etc/ssh/sshd_config.d/*.conf; do "
            f'[ -f "$f" ] && [ "$f" != {shlex.quote(exclude)} ] || continue; '
            'echo "@@ $f"; cat "$f"; echo; done'
        )

    @staticmethod
    def default() -> dict[str, dict[str, str]]:
        return {}

    def process(self, output: list[str]) -> dict[str, dict[str, str]]:
        return parse_dropins(output)


# -------------------------------------------------------------------------------------------------- pure logic


def parse_sshd_t(lines: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in lines:
        key, _, value = line.strip().partition(" ")
        if key:
            out.setdefault(key.lower(), []).append(value.strip())
    return out


def parse_dropins(lines: list[str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    in_match = False
    for raw in lines:
        if raw.startswith("@@ "):
            current = out.setdefault(raw[3:].strip(), {})
            in_match = False
            continue
        line = raw.split("#", 1)[0].strip()
        if current is None or not line:
            continue
        key, _, value = line.replace("=", " ", 1).partition(" ")
        key = key.lower()
        if key == "match":
            in_match = True
        if in_match:
            continue
        current.setdefault(key, value.strip())
    return out


def sshd_directives(settings: HardeningSettings) -> dict[str, str]:
    """The keys llmrack's drop-in sets whose value matters for access (lower case, as ``sshd -T`` prints)."""
    return {
        "passwordauthentication": "yes" if settings.ssh_password_authentication else "no",
        "kbdinteractiveauthentication": "no",
        "challengeresponseauthentication": "no",
        "permitrootlogin": settings.root_login_for(""),
        "permitemptypasswords": "no",
        "pubkeyauthentication": "yes",
        "x11forwarding": "no",
        "maxauthtries": str(settings.ssh_max_auth_tries),
    }


def overriding_dropins(dropins: dict[str, dict[str, str]], settings: HardeningSettings,
                       ours: str = SSHD_DROPIN) -> list[str]:
    """Files read before ours (sshd sorts the glob) that set a managed key to another value."""
    wanted = sshd_directives(settings)
    aliases = {"without-password": "prohibit-password"}
    problems = []
    for path in sorted(dropins):
        if path >= ours:
            continue
        for key, value in dropins[path].items():
            if key in wanted and aliases.get(value.lower(), value.lower()) != wanted[key].lower():
                problems.append(f"{path} sets {key} {value} (llmrack: {wanted[key]})")
    return problems


def lockout_problems(settings: HardeningSettings, login: dict[str, Any]) -> list[str]:
    """Reasons the planned sshd settings would lock the connecting admin out."""
    problems = []
    user, keys = login.get("user") or "?", int(login.get("keys") or 0)
    if not settings.ssh_password_authentication and keys == 0:
        problems.append(
            f"password logins would be disabled but {user!r} (the user llmrack connects as) has no key in "
            f"~{user}/.ssh/authorized_keys: add your public key there (ssh-copy-id), or set "
            "hardening.ssh_password_authentication: true"
        )
    if user == "root":
        root_mode = settings.ssh_permit_root_login
        if root_mode in ("no", "forced-commands-only"):
            problems.append(
                f"llmrack connects as root but hardening.ssh_permit_root_login is {root_mode!r}: connect as "
                "a sudo user (ssh_user + _sudo in the inventory) or keep 'prohibit-password'"
            )
        elif root_mode == "prohibit-password" and keys == 0:
            problems.append("root may log in with keys only, but root has no authorized key")
    return problems


def render_sshd_dropin(settings: HardeningSettings) -> str:
    return render_template(
        "hardening", SSHD_DROPIN,
        password_authentication=settings.ssh_password_authentication,
        permit_root_login=settings.root_login_for(""),
        max_auth_tries=settings.ssh_max_auth_tries,
        client_alive_interval=settings.ssh_client_alive_interval,
        client_alive_count_max=settings.ssh_client_alive_count_max,
        max_sessions=settings.ssh_max_sessions,
        allow_tcp_forwarding=settings.ssh_allow_tcp_forwarding,
        banner=BANNER if settings.banner.strip() else "",
        ciphers=settings.ssh_ciphers, macs=settings.ssh_macs, kex_algorithms=settings.ssh_kex_algorithms,
        host_keys=settings.ssh_host_keys, host_key_algorithms=settings.ssh_host_key_algorithms,
    )


def render_unattended(settings: HardeningSettings, distro_id: str) -> str:
    return render_template("hardening", UNATTENDED_CONF, enabled=settings.unattended_security_upgrades,
                           origins=SECURITY_ORIGINS.get(distro_id, SECURITY_ORIGINS["debian"]))


def split_networks(cidrs: list[str]) -> tuple[list[str], list[str]]:
    v4: list[str] = []
    v6: list[str] = []
    for cidr in cidrs:
        net = ipaddress.ip_network(cidr, strict=False)
        (v4 if net.version == 4 else v6).append(str(net))
    return sorted(set(v4)), sorted(set(v6))


def firewall_rules(openings: list[Opening], ssh_ports: list[int]) -> list[dict[str, Any]]:
    """Template rows of the openings besides SSH: ports, and every address or the IPv4/IPv6 sources."""
    rows = []
    for o in openings:
        ports = sorted({p for p in o.ports if p and p not in ssh_ports})
        if not ports or (o.sources is not None and not o.sources):
            continue
        v4, v6 = o.split()
        rows.append({"what": o.what.replace('"', "'"), "ports": ports, "any": o.sources is None, "v4": v4, "v6": v6})
    return rows


def render_firewall(settings: HardeningSettings, *, ssh_ports: list[int], open_ports: list[int] = (),
                    openings: list[Opening] = ()) -> str:
    """The ruleset; ``open_ports`` are open to every address, ``openings`` to their own sources."""
    admin_v4, admin_v6 = split_networks(settings.admin_networks)
    ssh = sorted(set(ssh_ports)) or [22]
    everyone = [Opening("gateway", tuple(open_ports), None)] if open_ports else []
    return render_template(
        "hardening", FIREWALL_RULESET,
        admin_v4=admin_v4, admin_v6=admin_v6, restricted=bool(settings.admin_networks),
        ssh_ports=ssh, rules=firewall_rules([*everyone, *openings], ssh), bridges=DOCKER_BRIDGES,
    )


def gateway_ports(spec: HostSpec) -> list[int]:
    """The TCP ports a host serves to clients: the gateway's HTTPS (and HTTP redirect) ports."""
    return _gateway_ports(spec)


def _stop(message: str, name: str) -> None:
    logger.error(f"{host.print_prefix}hardening: {message}")
    stop_host(f"hardening: {message}", name=name)


# -------------------------------------------------------------------------------------------------- deploy


@deploy("Hardening")
def hardening(settings: HardeningSettings, *, open_ports: list[int] | None = None,
              openings: list[Opening] | None = None) -> None:
    """Harden the host. ``open_ports``: TCP ports open to every address; ``openings``: ports open to their
    sources (``llmrack.exposure.service_openings``: the gateway, exporters, published models)."""
    if not settings.enabled:
        logger.info(f"{host.print_prefix}hardening is disabled for this tier")
        return

    # ---- refuse what would lock the admin out, before anything changes
    login = host.get_fact(LoginUserKeys)
    settings = settings.model_copy(update={"ssh_permit_root_login": settings.root_login_for(login.get("user", ""))})
    problems = lockout_problems(settings, login)
    problems += overriding_dropins(host.get_fact(SshdDropins), settings)
    if problems:
        _stop(" | ".join(problems), name="Stop this host: the SSH hardening would lock the admin out or be ignored")
        return

    distro_id = distribution_id(host.get_fact(LinuxDistribution))
    apt.update(name="Update the apt cache when older than a day", cache_time=APT_CACHE_MAX_AGE_S, **APT_RETRIES)

    # ---- sshd
    apt.packages(name="Install openssh-server", packages=[SSH_SERVER], no_recommends=True, **APT_RETRIES)
    put_text("Write the login banner /etc/issue.net (CIS 1.7: warning banner)",
             render_template("hardening", BANNER, banner=settings.banner.strip()) if settings.banner.strip()
             else "", BANNER)
    pw = "no" if not settings.ssh_password_authentication else "yes"
    sshd_reload = FollowUp("sshd-reload", "sshd's reload")
    install_checked(
        f"Install {SSHD_DROPIN} checked by sshd -t (dev-sec ssh-hardening: PasswordAuthentication {pw}, "
        f"PermitRootLogin {settings.ssh_permit_root_login}, MaxAuthTries {settings.ssh_max_auth_tries}, "
        "X11Forwarding no, LogLevel VERBOSE, strong Ciphers/MACs/KexAlgorithms)",
        render_sshd_dropin(settings), SSHD_DROPIN, f"{SSHD} -t -f {{}}", after=f"{SSHD} -t", follow_up=sshd_reload,
    )
    sshd_reload.run(systemd.service, name="Reload sshd after its configuration changed", service="ssh",
                    reloaded=True)

    # ---- unattended security upgrades
    if settings.unattended_security_upgrades:
        apt.packages(name="Install unattended-upgrades (dev-sec os-hardening: security updates)",
                     packages=[UNATTENDED_UPGRADES], no_recommends=True, **APT_RETRIES)
    put_text(
        f"Write {UNATTENDED_CONF} (security updates only: "
        f"{'on' if settings.unattended_security_upgrades else 'off'})",
        render_unattended(settings, distro_id), UNATTENDED_CONF,
    )

    # ---- core dumps
    state = "allowed" if settings.core_dumps else "off"
    put_text(f"Write {LIMITS_CONF} (dev-sec os-hardening: core dumps {state} for logins)",
             render_template("hardening", LIMITS_CONF, core_dumps=settings.core_dumps), LIMITS_CONF)
    files.directory(name="Create /etc/systemd/coredump.conf.d", path="/etc/systemd/coredump.conf.d", mode="755")
    put_text(f"Write {COREDUMP_CONF} (dev-sec os-hardening: systemd-coredump stores nothing)",
             render_template("hardening", COREDUMP_CONF, core_dumps=settings.core_dumps), COREDUMP_CONF)

    # ---- firewall
    if settings.firewall:
        _firewall(settings, open_ports or [], openings or [])


def _firewall(settings: HardeningSettings, open_ports: list[int], openings: list[Opening]) -> None:
    sshd = host.get_fact(SshdEffectiveConfig) or {}
    ssh_ports = sorted({int(p) for p in sshd.get("port", []) if p.isdigit()}) or [22]
    apt.packages(name="Install nftables", packages=[NFTABLES], no_recommends=True, **APT_RETRIES)
    files.directory(name="Create /etc/llmrack", path="/etc/llmrack", mode="755")
    where = ", ".join(settings.admin_networks) or "any address"
    opened = sorted({*open_ports, *(p for o in openings for p in o.ports)})
    firewall_reload = FollowUp("firewall-reload", "the firewall's reload")
    install_checked(
        f"Install {FIREWALL_RULESET} checked by nft -c (default deny inbound and to published container ports; "
        f"SSH {ssh_ports} from {where}; ports {opened} to their allowed sources; loopback, established and "
        "Docker bridges allowed)",
        render_firewall(settings, ssh_ports=ssh_ports, open_ports=open_ports, openings=openings), FIREWALL_RULESET,
        f"{NFT} -c -f {{}}", mode="600", follow_up=firewall_reload,
    )
    unit = put_text(
        f"Write /etc/systemd/system/{FIREWALL_UNIT}",
        render_template("hardening", f"/etc/systemd/system/{FIREWALL_UNIT}", ruleset=FIREWALL_RULESET),
        f"/etc/systemd/system/{FIREWALL_UNIT}",
    )
    systemd.daemon_reload(name=f"Reload systemd units after {FIREWALL_UNIT} changed", _if=unit.did_change)
    started = systemd.service(name=f"Start and enable {FIREWALL_UNIT} (default deny inbound)",
                              service=FIREWALL_UNIT, running=True, enabled=True)
    firewall_reload.run(systemd.service, name="Reload the firewall after its ruleset changed", service=FIREWALL_UNIT,
                        reloaded=True, unless=started.did_change)
