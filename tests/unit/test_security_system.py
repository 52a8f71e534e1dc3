"""The account, path, umask, home and unit rules of the CIS controls in ``controls_system``, judged on crafted
account files: each rule passes on a clean set and fails on the one line that breaks it. (On a real host the
families run in tests/integration/test_security_host.py.)"""

from __future__ import annotations

import pytest

from llmrack.verify.security import CONTROLS
from llmrack.verify.security import probes_system as ps
from llmrack.verify.security.probes import JUDGES

PASSWD = """root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
sync:x:4:65534:sync:/bin:/bin/sync
sshd:x:100:65534::/run/sshd:/usr/sbin/nologin
deploy:x:1000:1000::/home/deploy:/bin/bash"""
GROUP = """root:x:0:
daemon:x:1:
shadow:x:42:
nogroup:x:65534:
deploy:x:1000:"""
SHADOW = """root:*:20000:0:99999:7:::
daemon:*:20000:0:99999:7:::
sync:*:20000:0:99999:7:::
sshd:!:20000::::::
deploy:!:20000:1:365:7:::"""
SHELLS = "# /etc/shells\n/bin/sh\n/bin/bash\n/usr/bin/bash\n"
TODAY = 20400


def accounts(passwd: str = PASSWD, group: str = GROUP, shadow: str = SHADOW) -> ps.Accounts:
    return ps.Accounts.parse(ps.SPLIT.join([passwd, group, shadow, SHELLS, str(TODAY)]))


RULES = sorted({c.params["rule"] for c in CONTROLS if c.family == "accounts"}
               - {"root_path", "root_umask", "homes", "dot_files"})
# rule -> (file, text replaced, its replacement) that breaks it; an empty text: the line is appended
BREAKS = {
    "shadowed": ("passwd", "", "eve:$6$abc:1001:1000::/home/eve:/bin/bash"),
    "shadow_not_empty": ("shadow", "sshd:!:", "sshd::"),
    "groups_exist": ("passwd", "", "eve:x:1001:4242::/home/eve:/usr/sbin/nologin"),
    "shadow_group_empty": ("group", "shadow:x:42:", "shadow:x:42:eve"),
    "unique_uids": ("passwd", "", "twin:x:1000:1000::/home/twin:/usr/sbin/nologin"),
    "unique_gids": ("group", "", "twins:x:1000:"),
    "unique_user_names": ("passwd", "", "deploy:x:1002:1000::/home/d2:/usr/sbin/nologin"),
    "unique_group_names": ("group", "", "deploy:x:1003:"),
    "uid0_root_only": ("passwd", "", "toor:x:0:1000::/root:/usr/sbin/nologin"),
    "gid0_root_only": ("passwd", "", "eve:x:1001:0::/home/eve:/usr/sbin/nologin"),
    "gid0_group_root_only": ("group", "", "wheel:x:0:"),
    "root_access": ("shadow", "root:*:", "root::"),
    "system_no_shell": ("passwd", "daemon:/usr/sbin:/usr/sbin/nologin", "daemon:/usr/sbin:/bin/bash"),
    "no_shell_locked": ("shadow", "daemon:*:", "daemon:$6$hash:"),
    "last_change_past": ("shadow", "deploy:!:20000:", "deploy:!:30000:"),
}


@pytest.mark.parametrize("rule", RULES)
def test_each_account_rule_passes_on_clean_files_and_fails_on_its_line(rule: str) -> None:
    assert ps.account_problems(rule, accounts()) == []
    where, old, new = BREAKS[rule]
    files = {"passwd": PASSWD, "group": GROUP, "shadow": SHADOW}
    assert not old or old in files[where]
    files[where] = files[where].replace(old, new) if old else f"{files[where]}\n{new}"
    assert ps.account_problems(rule, accounts(**files)), (rule, files[where])


def test_the_root_path_rule_finds_empty_relative_and_writable_entries() -> None:
    clean = "PATH=/usr/sbin:/usr/bin\n755 root /usr/sbin\n755 root /usr/bin\n"
    assert ps.path_problems(clean) == []
    assert ps.path_problems("PATH=/usr/bin::.\n755 root /usr/bin\n") == ["an empty entry", "relative entry '.'"]
    assert ps.path_problems("PATH=/opt/x\n777 root /opt/x\n") == ["/opt/x mode 777 writable by group or others"]
    assert ps.path_problems("PATH=/opt/x\n755 eve /opt/x\n") == ["/opt/x owned by eve"]
    assert ps.path_problems("PATH=/nope\nmissing /nope\n") == ["/nope does not exist"]
    assert ps.path_problems("") == ["root's PATH could not be read"]


def test_the_umask_rule_takes_027_or_stricter() -> None:
    assert ps.umask_problems("umask 027\numask 077\n") == []
    assert ps.umask_problems("umask 022\n") == ["umask 022"]
    assert ps.umask_problems("umask 007\n") == ["umask 007"]


def test_homes_and_dot_files() -> None:
    assert ps.home_problems("eve", "750 eve", [], rule="homes") == []
    assert ps.home_problems("eve", "755 eve", [], rule="homes") == ["eve: home mode 755"]
    assert ps.home_problems("eve", "700 root", [], rule="homes") == ["eve: home owned by root"]
    assert ps.home_problems("eve", "", [], rule="homes") == ["eve: home missing"]
    dots = ["644 .bashrc", "600 .bash_history", "700 .ssh"]
    assert ps.home_problems("eve", "700 eve", dots, rule="dot_files") == []
    assert ps.home_problems("eve", "700 eve", ["600 .netrc", "664 .profile", "644 .bash_history"],
                            rule="dot_files") == ["eve: .netrc present", "eve: .profile mode 664",
                                                  "eve: .bash_history mode 644"]


def test_unit_states() -> None:
    assert ps.unit_problem("active\nenabled\n", ("active",), ("enabled",)) is None
    assert ps.unit_problem("active\nstatic\n", ("active",), ("static", "enabled")) is None
    assert ps.unit_problem("inactive\n", ("inactive",), ("not-found", "masked")) is None  # no such unit
    assert ps.unit_problem("active\nenabled\n", ("inactive",), ("disabled",)) == "active, enabled"


def test_every_new_family_has_a_judge_and_each_id_is_well_formed() -> None:
    for c in CONTROLS:
        assert c.family in JUDGES, c.id
    ids = [c.id for c in CONTROLS]
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]


class FakeHost:
    """A CheckContext's run() answering by the first word a command starts with (no host here)."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers, self.cache, self.inventory = answers, {}, None

    def run(self, cmd: str) -> tuple[int, str, str]:
        body = cmd.strip("{ ").split("\n")[0]
        for prefix, out in self.answers.items():
            if body.startswith(prefix):
                return 0, f"{out}\n@rc=0", ""
        return 0, "@rc=1", ""


def control(cid: str):
    return next(c for c in CONTROLS if c.id == cid)


RULESET = """table inet llmrack {
        chain input {
                type filter hook input priority filter; policy drop;
                ct state established,related accept
                iifname "lo" accept
                ip saddr 127.0.0.0/8 counter packets 0 bytes 0 drop comment "loopback"
                ip6 saddr ::1 counter packets 0 bytes 0 drop comment "loopback"
        }
        chain forward {
                type filter hook forward priority filter - 10; policy accept;
        }
        chain output {
                type filter hook output priority filter; policy accept;
        }
}"""


def test_firewall_controls_read_the_loaded_table() -> None:
    host = FakeHost({"nft list table": RULESET})
    for sfx in ("table_exists", "base_chains", "loopback", "established", "input_policy_drop"):
        assert JUDGES["nft"](host, control(f"sec.firewall.{sfx}")).status == "pass", sfx
    no_output = FakeHost({"nft list table": RULESET.replace("hook output", "hook postrouting")})
    assert JUDGES["nft"](no_output, control("sec.firewall.base_chains")).status == "fail"
    no_lo = FakeHost({"nft list table": RULESET.replace("ip6 saddr ::1", "ip6 saddr fd00::1")})
    assert JUDGES["nft"](no_lo, control("sec.firewall.loopback")).status == "fail"


def test_cron_controls_apply_only_where_cron_is_installed() -> None:
    crontab = control("sec.cron.crontab")
    without = FakeHost({"dpkg-query": "openssh-server installed"})
    assert JUDGES["if_installed"](without, crontab).status == "pass"
    closed = FakeHost({"dpkg-query": "cron installed", "stat": "600 root root"})
    assert JUDGES["if_installed"](closed, crontab).status == "pass"
    opened = FakeHost({"dpkg-query": "cron installed", "stat": "644 root root"})
    assert JUDGES["if_installed"](opened, crontab).status == "fail"
    missing = FakeHost({"dpkg-query": "cron installed"})
    assert JUDGES["if_installed"](missing, control("sec.cron.cron_allow")).status == "fail"


def test_apparmor_enabled_and_every_profile_enforced_or_complaining() -> None:
    profiles = "/usr/sbin/chronyd (enforce)\nnvidia_modprobe (complain)\n"
    assert ps.apparmor_problem("enabled", "Y\n", "BOOT_IMAGE=/vmlinuz ro quiet", profiles) is None
    assert ps.apparmor_problem("enabled", "N\n", "", profiles) == "AppArmor enabled: N"
    assert ps.apparmor_problem("enabled", "Y", "ro apparmor=0", profiles) == "kernel command line: apparmor=0"
    assert ps.apparmor_problem("profiles", "Y", "", profiles) is None
    assert ps.apparmor_problem("profiles", "Y", "", profiles + "x (kill)\ny (unconfined)\n") == \
        "profiles in mode kill, unconfined"
    assert ps.apparmor_problem("profiles", "Y", "", "") == "no AppArmor profile loaded"


SS = """udp UNCONN 0 0 127.0.0.1:323 0.0.0.0:* users:(("chronyd",pid=1500,fd=5))
tcp LISTEN 0 4096 0.0.0.0:8443 0.0.0.0:* users:(("docker-proxy",pid=32249,fd=4))
tcp LISTEN 0 4096 172.17.0.2:9100 0.0.0.0:* users:(("prometheus-node",pid=26046,fd=3))
tcp LISTEN 0 128 [::]:22 [::]:* users:(("sshd",pid=47,fd=4))
tcp LISTEN 0 4096 127.0.0.53%lo:53 0.0.0.0:* users:(("systemd-resolve",pid=9,fd=14))"""


def test_only_approved_programs_listen_outside_loopback() -> None:
    approved = control("sec.service.approved_listeners").params["approved"]
    assert ps.listener_problems(SS, approved) == []
    extra = SS + '\ntcp LISTEN 0 5 0.0.0.0:8099 0.0.0.0:* users:(("python3",pid=77,fd=3))'
    assert ps.listener_problems(extra, approved) == ["python3 on tcp 0.0.0.0:8099"]


def test_chrony_sources_are_the_tiers() -> None:
    assert ps.chrony_sources("server ntp.aliyun.com iburst\n# server x\npool cn.pool.ntp.org\nkeyfile k\n") == \
        {"ntp.aliyun.com", "cn.pool.ntp.org"}


def test_chrony_sources_control_judges_against_the_tier() -> None:
    from types import SimpleNamespace

    def host(conf: str, named: list[str]) -> FakeHost:
        h = FakeHost({"cat /etc/chrony": conf})
        h.spec = SimpleNamespace(profile=SimpleNamespace(base=SimpleNamespace(time=SimpleNamespace(
            ntp_servers=named))))
        return h

    c = control("sec.service.chrony_sources")
    assert JUDGES["chrony_sources"](host("server ntp.aliyun.com iburst", ["ntp.aliyun.com"]), c).status == "pass"
    assert JUDGES["chrony_sources"](host("server 192.0.2.1 iburst", ["ntp.aliyun.com"]), c).status == "fail"
    assert JUDGES["chrony_sources"](host("keyfile k", ["ntp.aliyun.com"]), c).status == "fail"
    assert JUDGES["chrony_sources"](host("keyfile k", []), c).status == "not_applicable"
    assert JUDGES["chrony_sources"](host("server 192.0.2.1", []), c).status == "fail"


def test_the_scan_controls_fail_when_the_scan_did_not_finish() -> None:
    clean = FakeHost({"t=$(mktemp)": "suid /usr/bin/su\ndone scan"})
    assert JUDGES["scan"](clean, control("sec.fs.no_world_writable_files")).status == "pass"
    assert JUDGES["scan"](clean, control("sec.fs.suid_sgid_packaged")).status == "pass"
    found = FakeHost({"t=$(mktemp)": "ww /srv/x\nunpackaged /usr/local/bin/p\ndone scan"})
    assert JUDGES["scan"](found, control("sec.fs.no_world_writable_files")).status == "fail"
    assert JUDGES["scan"](found, control("sec.fs.suid_sgid_packaged")).status == "fail"
    cut_short = FakeHost({"t=$(mktemp)": ""})
    assert JUDGES["scan"](cut_short, control("sec.fs.no_unowned_files")).status == "fail"
