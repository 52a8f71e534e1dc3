"""Pure parts of the base and docker_engine roles: /etc/hosts block, apt sources, templates, .deb control."""

from __future__ import annotations

import io
import lzma
import tarfile
from pathlib import Path

from roles.base import apt_sources, render_template, with_hosts_block
from roles.docker_engine import deb_control, docker_ce_version

DOCKER_HOSTS = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost", "172.17.0.2\thost1"]


def test_hosts_block_added_then_replaced_not_duplicated() -> None:
    first = with_hosts_block(DOCKER_HOSTS, {"host2": "172.17.0.3", "host1": "172.17.0.2"})
    assert first.splitlines()[-4:] == ["# BEGIN llmrack hosts", "172.17.0.2 host1", "172.17.0.3 host2",
                                       "# END llmrack hosts"]
    assert first.startswith("127.0.0.1\tlocalhost\n")
    again = with_hosts_block(first.splitlines(), {"host1": "172.17.0.2", "host2": "172.17.0.3"})
    assert again == first
    shrunk = with_hosts_block(first.splitlines(), {"host1": "172.17.0.9"})
    assert "host2" not in shrunk and "172.17.0.9 host1" in shrunk
    assert with_hosts_block(first.splitlines(), {}) == "\n".join(DOCKER_HOSTS) + "\n"


def test_apt_sources_for_ubuntu_and_debian_mirrors() -> None:
    ubuntu = apt_sources("ubuntu", "noble", "https://mirrors.tuna.tsinghua.edu.cn/ubuntu/")
    assert ubuntu.startswith("# managed by llmrack")
    assert "URIs: https://mirrors.tuna.tsinghua.edu.cn/ubuntu\n" in ubuntu
    assert "Suites: noble noble-updates noble-backports noble-security\n" in ubuntu
    assert "Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg" in ubuntu
    debian = apt_sources("debian", "bookworm", "http://m/debian")
    assert "URIs: http://m/debian-security\nSuites: bookworm-security\n" in debian
    assert "Components: main contrib non-free non-free-firmware" in debian


def test_chrony_templates_without_sources_and_clock_control() -> None:
    conf = render_template("base", "/etc/chrony/chrony.conf", servers=[], control_clock=False)
    assert "server " not in conf and "pool " not in conf and "makestep" not in conf
    default = render_template("base", "/etc/default/chrony", control_clock=False)
    assert 'DAEMON_OPTS="-F 1 -x"' in default
    conf = render_template("base", "/etc/chrony/chrony.conf", servers=["ntp.aliyun.com"], control_clock=True)
    assert "server ntp.aliyun.com iburst\n" in conf and "makestep 1 3" in conf
    assert 'DAEMON_OPTS="-F 1"' in render_template("base", "/etc/default/chrony", control_clock=True)


def test_sysctl_template_is_sorted_key_value_lines() -> None:
    text = render_template("base", "/etc/sysctl.d/60-llmrack.conf",
                           sysctl=sorted({"vm.swappiness": "10", "fs.file-max": "2097152"}.items()))
    assert text.splitlines()[1:] == ["fs.file-max = 2097152", "vm.swappiness = 10"]


def test_docker_ce_apt_version() -> None:
    assert docker_ce_version("27.5.1", "ubuntu", "24.04", "noble") == "5:27.5.1-1~ubuntu.24.04~noble"


def _ar_member(name: str, data: bytes) -> bytes:
    header = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode()
    return header + data + (b"\n" if len(data) % 2 else b"")


def test_deb_control_read_without_dpkg(tmp_path: Path) -> None:
    control = b"Package: docker-compose\nVersion: 2.26.1-4\nDepends: libc6 (>= 2.34)\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("./control")
        info.size = len(control)
        tf.addfile(info, io.BytesIO(control))
    deb = b"!<arch>\n" + _ar_member("debian-binary", b"2.0\n") + \
        _ar_member("control.tar.xz", lzma.compress(buf.getvalue()))
    path = tmp_path / "docker-compose_2.26.1-4_amd64.deb"
    path.write_bytes(deb)
    fields = deb_control(path)
    assert (fields["Package"], fields["Version"]) == ("docker-compose", "2.26.1-4")
