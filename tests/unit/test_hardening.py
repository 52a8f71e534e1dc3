"""Hardening role: rendered files checked with the real tools (sshd -t, nft -c, apt-config), and the
lock-out guards."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from llmrack.config import load_tier
from llmrack.settings.hardening import HardeningSettings
from roles import hardening as hr

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None)
NFT = shutil.which("nft") or ("/usr/sbin/nft" if Path("/usr/sbin/nft").exists() else None)


def require_nft() -> str:
    assert NFT is not None, "nft is needed to check the rendered ruleset: apt-get install nftables"
    return NFT


def nft_check(path: Path) -> subprocess.CompletedProcess:
    """``nft -c -f path`` with CAP_NET_ADMIN: inside a new user + network namespace (``unshare -rn``), so it runs
    without root and checks against an empty ruleset. A missing capability fails the test, never skips it."""
    done = subprocess.run(["unshare", "-rn", require_nft(), "-c", "-f", str(path)], capture_output=True, text=True)
    assert "Operation not permitted" not in done.stderr, \
        f"nft -c had no CAP_NET_ADMIN (user namespaces disabled?): {done.stderr}"
    return done


@pytest.fixture(scope="module")
def host_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert SSHD is not None, "sshd is needed to check the rendered drop-in: apt-get install openssh-server"
    privsep = Path("/run/sshd")  # sshd -t insists on its privilege separation directory
    if not privsep.is_dir():
        privsep.mkdir(mode=0o755)
    key = tmp_path_factory.mktemp("hostkey") / "ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def sshd_effective(text: str, tmp_path: Path, host_key: Path) -> dict[str, list[str]]:
    """``sshd -t`` then ``sshd -T`` of a rendered drop-in (as a root login from an outside address)."""
    conf = tmp_path / "50-llmrack.conf"
    conf.write_text(text)
    check = subprocess.run([SSHD, "-t", "-f", str(conf), "-h", str(host_key)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    dump = subprocess.run(
        [SSHD, "-T", "-f", str(conf), "-h", str(host_key), "-C", "user=root,host=client,addr=203.0.113.9"],
        capture_output=True, text=True, check=True,
    )
    return hr.parse_sshd_t(dump.stdout.splitlines())


# ---------------------------------------------------------------------------------------------- sshd


def test_sshd_dropin_passes_sshd_t_with_dev_sec_controls(tmp_path: Path, host_key: Path) -> None:
    text = hr.render_sshd_dropin(HardeningSettings())
    assert text.startswith("# managed by llmrack")
    eff = sshd_effective(text, tmp_path, host_key)
    assert eff["passwordauthentication"] == ["no"]
    assert eff["kbdinteractiveauthentication"] == ["no"]
    assert eff["permitrootlogin"] == ["no"]  # auto, with no root connection
    assert eff["x11forwarding"] == ["no"]
    for key in ("allowagentforwarding", "permittunnel", "gatewayports", "allowstreamlocalforwarding",
                "permituserenvironment", "ignorerhosts", "hostbasedauthentication"):
        assert eff[key] in (["no"], ["yes"]) and eff[key] == (["yes"] if key == "ignorerhosts" else ["no"]), key
    assert eff["hostkeyalgorithms"][0].split(",")[:2] == ["ssh-ed25519-cert-v01@openssh.com", "ssh-ed25519"]
    rooted = hr.render_sshd_dropin(HardeningSettings().model_copy(
        update={"ssh_permit_root_login": HardeningSettings().root_login_for("root")}))
    assert sshd_effective(rooted, tmp_path, host_key)["permitrootlogin"] == ["without-password"]

    assert eff["maxauthtries"] == ["3"]
    assert eff["loglevel"] == ["VERBOSE"]
    assert eff["clientaliveinterval"] == ["300"]
    assert eff["permitemptypasswords"] == ["no"]
    assert eff["banner"] == ["/etc/issue.net"]
    ciphers = eff["ciphers"][0].split(",")
    assert ciphers[0] == "chacha20-poly1305@openssh.com"
    assert not [c for c in ciphers if "cbc" in c or "3des" in c]
    assert not [m for m in eff["macs"][0].split(",") if "sha1" in m or "md5" in m]
    kex = eff["kexalgorithms"][0].split(",")
    assert kex[0] == "sntrup761x25519-sha512@openssh.com"
    assert not [k for k in kex if "sha1" in k or k.startswith("ecdh-sha2-nistp")]


def test_root_login_is_no_unless_the_deploying_user_is_root() -> None:
    assert HardeningSettings().root_login_for("deploy") == "no"
    assert HardeningSettings().root_login_for("root") == "prohibit-password"
    assert HardeningSettings(ssh_permit_root_login="yes").root_login_for("deploy") == "yes"


def test_sshd_dropin_follows_settings(tmp_path: Path, host_key: Path) -> None:
    settings = HardeningSettings(ssh_password_authentication=True, ssh_permit_root_login="no",
                                 ssh_max_auth_tries=5, ssh_allow_tcp_forwarding="no", banner="")
    eff = sshd_effective(hr.render_sshd_dropin(settings), tmp_path, host_key)
    assert eff["passwordauthentication"] == ["yes"]
    assert eff["permitrootlogin"] == ["no"]
    assert eff["maxauthtries"] == ["5"]
    assert eff["allowtcpforwarding"] == ["no"]
    assert eff["banner"] == ["none"]


def test_sshd_t_rejects_an_unknown_algorithm(tmp_path: Path, host_key: Path) -> None:
    """The host-side check is real: a cipher sshd does not know fails ``sshd -t``."""
    text = hr.render_sshd_dropin(HardeningSettings(ssh_ciphers=["aes256-ctr", "rot13-ctr"]))
    conf = tmp_path / "bad.conf"
    conf.write_text(text)
    check = subprocess.run([SSHD, "-t", "-f", str(conf), "-h", str(host_key)], capture_output=True, text=True)
    assert check.returncode != 0
    assert "rot13-ctr" in check.stderr or "Bad SSH2 cipher" in check.stderr


def test_settings_reject_bad_values() -> None:
    with pytest.raises(ValidationError):
        HardeningSettings(ssh_permit_root_login="maybe")
    with pytest.raises(ValidationError, match="not an IPv4/IPv6"):
        HardeningSettings(admin_networks=["10.0.0.0/33"])
    with pytest.raises(ValidationError, match="one algorithm name per item"):
        HardeningSettings(ssh_ciphers=["aes256-ctr,aes128-ctr"])


# ---------------------------------------------------------------------------------------------- lock-out guards


def test_no_authorized_keys_refuses_to_disable_passwords() -> None:
    problems = hr.lockout_problems(HardeningSettings(), {"user": "deploy", "keys": 0})
    assert len(problems) == 1 and "authorized_keys" in problems[0] and "deploy" in problems[0]
    assert hr.lockout_problems(HardeningSettings(), {"user": "deploy", "keys": 2}) == []
    assert hr.lockout_problems(HardeningSettings(ssh_password_authentication=True),
                               {"user": "deploy", "keys": 0}) == []


def test_root_connection_keeps_root_login() -> None:
    assert hr.lockout_problems(HardeningSettings(), {"user": "root", "keys": 1}) == []
    problems = hr.lockout_problems(HardeningSettings(ssh_permit_root_login="no"), {"user": "root", "keys": 1})
    assert problems and "ssh_permit_root_login" in problems[0]
    assert hr.lockout_problems(HardeningSettings(ssh_permit_root_login="no"), {"user": "deploy", "keys": 1}) == []


def test_login_keys_fact_parses_output() -> None:
    fact = hr.LoginUserKeys()
    assert fact.process(["user=deploy", "keys=3"]) == {"user": "deploy", "keys": 3}
    assert fact.process([]) == {"user": "", "keys": 0}


def test_login_keys_fact_command_counts_keys(tmp_path: Path) -> None:
    """The fact's shell command, run here against a fake home: comments and blank lines do not count."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh/authorized_keys").write_text("# a comment\n\nssh-ed25519 AAAA one\nssh-rsa AAAA two\n")
    command = hr.LoginUserKeys().command().replace('"$(getent passwd "$u" | cut -d: -f6)"', f'"{home}"')
    out = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True)
    assert hr.LoginUserKeys().process(out.stdout.splitlines())["keys"] == 2
    (home / ".ssh/authorized_keys").write_text("# only a comment\n")
    out = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True)
    assert hr.LoginUserKeys().process(out.stdout.splitlines())["keys"] == 0


def test_earlier_dropin_that_overrides_is_reported() -> None:
    output = [
        "@@ /etc/ssh/sshd_config.d/50-cloud-init.conf", "PasswordAuthentication yes", "",
        "@@ /etc/ssh/sshd_config.d/50-llmrack-sandbox.conf", "PermitRootLogin without-password",
        "PasswordAuthentication no", "",
        "@@ /etc/ssh/sshd_config.d/90-late.conf", "PasswordAuthentication yes", "",
        "@@ /etc/ssh/sshd_config.d/10-match.conf", "Match User backup", "  PasswordAuthentication yes",
    ]
    dropins = hr.parse_dropins(output)
    problems = hr.overriding_dropins(dropins, HardeningSettings(ssh_permit_root_login="prohibit-password"))
    assert problems == ["/etc/ssh/sshd_config.d/50-cloud-init.conf sets passwordauthentication yes (llmrack: no)"]


# ---------------------------------------------------------------------------------------------- firewall


def test_firewall_never_flushes_and_keeps_ssh_open() -> None:
    text = hr.render_firewall(HardeningSettings(), ssh_ports=[22], open_ports=[443, 80])
    assert text.startswith("#!/usr/sbin/nft -f\n# managed by llmrack")
    rules = [ln.strip() for ln in text.splitlines() if not ln.strip().startswith("#")]
    assert not [ln for ln in rules if "flush" in ln]
    assert "delete table inet llmrack" in rules
    assert not [ln for ln in rules if "hook prerouting" in ln]
    assert 'tcp dport { 22 } accept comment "SSH"' in rules
    assert 'tcp dport { 80, 443 } accept comment "gateway"' in rules
    assert 'ct status dnat meta l4proto tcp ct original proto-dst { 80, 443 } accept comment "gateway"' in rules
    forward = rules.index("type filter hook forward priority filter - 10; policy accept;")
    output = rules.index("type filter hook output priority filter; policy accept;")
    last_forward = [ln for ln in rules[forward:output] if ln not in ("", "}", "chain output {")][-1]
    assert last_forward == 'counter drop comment "published port dropped by llmrack"'
    lo = rules.index('iifname "lo" accept')  # loopback addresses only on lo (CIS 4.3.6), after lo's accept
    assert rules[lo + 1].startswith("ip saddr 127.0.0.0/8 counter drop")
    assert rules[lo + 2].startswith("ip6 saddr ::1 counter drop")
    assert 'iifname "docker0" accept comment "Docker bridge"' in rules
    assert 'iifname "br-*" accept comment "Docker bridge"' in rules
    ssh_rule = rules.index('tcp dport { 22 } accept comment "SSH"')
    assert rules.index("ct state { established, related } accept") < ssh_rule


def test_firewall_admin_networks_restrict_ssh() -> None:
    settings = HardeningSettings(admin_networks=["10.1.0.0/16", "10.1.2.3", "fd00::/8"])
    text = hr.render_firewall(settings, ssh_ports=[2222], open_ports=[443])
    assert "elements = { 10.1.0.0/16, 10.1.2.3/32 }" in text
    assert "elements = { fd00::/8 }" in text
    assert 'ip saddr @admin_v4 tcp dport { 2222 } accept' in text
    assert 'ip6 saddr @admin_v6 tcp dport { 2222 } accept' in text
    assert 'tcp dport { 2222 } accept comment "SSH"\n' not in text


@pytest.mark.parametrize("admin", [[], ["10.0.0.0/8", "192.168.1.7"], ["fd00::/8"], ["10.0.0.0/8", "10.1.0.0/16"]])
def test_firewall_passes_nft_check(tmp_path: Path, admin: list[str]) -> None:
    text = hr.render_firewall(HardeningSettings(admin_networks=admin), ssh_ports=[22], open_ports=[443, 80])
    path = tmp_path / "firewall.nft"
    path.write_text(text)
    done = nft_check(path)
    assert done.returncode == 0, done.stderr


def test_nft_check_rejects_a_broken_ruleset(tmp_path: Path) -> None:
    """The same check, with the capability, refuses the ruleset for its syntax: the error names the bad word."""
    good = hr.render_firewall(HardeningSettings(), ssh_ports=[22], open_ports=[443])
    path = tmp_path / "good.nft"
    path.write_text(good)
    assert nft_check(path).returncode == 0  # the capability is there: a refusal below is the syntax
    path.write_text(good.replace("policy drop", "policy maybe"))
    done = nft_check(path)
    assert done.returncode != 0
    assert "Error: syntax error" in done.stderr and "policy maybe" in done.stderr, done.stderr


def test_firewall_unit_removes_only_its_table() -> None:
    unit = hr.render_template("hardening", "/etc/systemd/system/llmrack-firewall.service",
                              ruleset=hr.FIREWALL_RULESET)
    assert unit.startswith("# managed by llmrack")
    assert "ExecStop=/usr/sbin/nft delete table inet llmrack" in unit
    assert "flush ruleset" not in unit.replace("its stop action flushes the whole ruleset", "")


def test_gateway_ports_only_on_gateway_hosts() -> None:
    from llmrack.config import HostSpec

    profile = load_tier("sandbox")
    gw = HostSpec(name="h", address="10.0.0.1", roles=["gateway"], tier="sandbox", profile=profile)
    inf = HostSpec(name="h", address="10.0.0.1", roles=["inference"], tier="sandbox", profile=profile)
    assert hr.gateway_ports(gw) == [8443]  # the sandbox tier: https 8443, no plain HTTP
    assert hr.gateway_ports(inf) == []


# ---------------------------------------------------------------------------------------------- OS files


@pytest.mark.parametrize("distro", ["debian", "ubuntu"])
def test_unattended_upgrades_security_only(tmp_path: Path, distro: str) -> None:
    text = hr.render_unattended(HardeningSettings(), distro)
    assert text.startswith("// managed by llmrack")
    assert shutil.which("apt-config"), "apt-config (from apt) is needed to read the rendered file back"
    path = tmp_path / "52llmrack-unattended-upgrades"
    path.write_text(text)
    # read after the machine's own apt configuration (50unattended-upgrades included, when installed)
    dump = subprocess.run(["apt-config", "-c", str(path), "dump"], capture_output=True, text=True, check=True).stdout
    lines = dump.splitlines()
    patterns = [ln for ln in lines if ln.startswith("Unattended-Upgrade::Origins-Pattern:: ")]
    assert patterns and all("security" in ln for ln in patterns), patterns
    assert not [ln for ln in lines if ln.startswith("Unattended-Upgrade::Allowed-Origins:: ")]
    assert 'APT::Periodic::Unattended-Upgrade "1";' in lines
    assert 'Unattended-Upgrade::Automatic-Reboot "false";' in lines


def test_unattended_upgrades_off() -> None:
    text = hr.render_unattended(HardeningSettings(unattended_security_upgrades=False), "ubuntu")
    assert 'APT::Periodic::Unattended-Upgrade "0";' in text


def test_core_dumps_off() -> None:
    limits = hr.render_template("hardening", hr.LIMITS_CONF, core_dumps=False)
    assert limits.startswith("# managed by llmrack")
    assert [ln.split() for ln in limits.splitlines() if not ln.startswith("#")] == [
        ["*", "hard", "core", "0"], ["*", "soft", "core", "0"]]
    coredump = hr.render_template("hardening", hr.COREDUMP_CONF, core_dumps=False)
    assert "Storage=none" in coredump and "ProcessSizeMax=0" in coredump


def test_sandbox_tier_runs_the_firewall_and_passwords_disabled() -> None:
    profile = load_tier("sandbox")
    assert profile.hardening.firewall is True
    assert profile.hardening.ssh_password_authentication is False


def _split_inventory():
    from llmrack.config import HostSpec

    profile = load_tier("sandbox")
    gw = HostSpec(name="gw", address="10.0.0.1", roles=["gateway", "monitoring"], tier="sandbox", profile=profile)
    node = HostSpec(name="node", address="10.0.0.2", roles=["inference"], tier="sandbox", profile=profile)
    return gw, node


def test_inference_node_opens_its_model_and_exporter_only_to_the_monitoring_and_gateway_host() -> None:
    from llmrack.exposure import openings

    gw, node = _split_inventory()
    got = {(o.what, o.ports, o.sources) for o in openings(node, [gw, node])}
    iperf3 = "iperf3, for the acceptance network test from the other hosts"
    assert got == {("SSH", (22,), None), ("models, for the gateway and Prometheus", (18000,), ("10.0.0.1",)),
                   ("exporters, for Prometheus", (9100,), ("10.0.0.1",)), (iperf3, (5201,), ("10.0.0.1",))}
    got = {(o.what, o.ports, o.sources) for o in openings(gw, [gw, node])}
    assert got == {("SSH", (22,), None), ("gateway", (8443,), None),  # it runs Prometheus itself
                   (iperf3, (5201,), ("10.0.0.2",))}


def test_forwarded_published_ports_are_filtered_by_source(tmp_path: Path) -> None:
    from llmrack.exposure import service_openings

    gw, node = _split_inventory()
    text = hr.render_firewall(HardeningSettings(), ssh_ports=[22], openings=service_openings(node, [gw, node]))
    rules = [ln.strip() for ln in text.splitlines()]
    assert "type filter hook forward priority filter - 10; policy accept;" in rules
    assert ('ct status dnat ip saddr { 10.0.0.1/32 } meta l4proto tcp ct original proto-dst { 18000 } accept '
            'comment "models, for the gateway and Prometheus"') in rules
    assert 'ip saddr { 10.0.0.1/32 } tcp dport { 9100 } accept comment "exporters, for Prometheus"' in rules
    assert not [ln for ln in rules if "18000" in ln and "saddr" not in ln]
    forward = rules[rules.index("chain forward {"):]
    assert forward.index('counter drop comment "published port dropped by llmrack"') > forward.index(
        'oifname != "docker0" oifname != "br-*" accept comment "not bound for a container"')
    path = tmp_path / "firewall.nft"
    path.write_text(text)
    done = nft_check(path)
    assert done.returncode == 0, done.stderr


def test_monitoring_uis_on_a_lan_address_open_to_admin_networks_only() -> None:
    from llmrack.config import HostSpec
    from llmrack.exposure import service_openings

    profile = load_tier("sandbox", overrides={"monitoring": {"bind_address": "0.0.0.0"},
                                              "hardening": {"admin_networks": ["10.9.0.0/16"]}})
    mon = HostSpec(name="mon", address="10.0.0.1", roles=["monitoring"], tier="sandbox", profile=profile)
    (ui,) = service_openings(mon, [mon])
    assert ui.ports == (9090, 9093) and ui.sources == ("10.9.0.0/16",)
    open_profile = load_tier("sandbox", overrides={"monitoring": {"bind_address": "0.0.0.0"}})
    mon = HostSpec(name="mon", address="10.0.0.1", roles=["monitoring"], tier="sandbox", profile=open_profile)
    assert service_openings(mon, [mon]) == []  # no admin networks: reach them through an SSH tunnel
