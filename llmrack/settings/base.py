"""Settings of the base role: apt sources, time, kernel and limits tuning, journald, data disk."""

from __future__ import annotations

from pydantic import Field

from llmrack.settings._model import Settings
from llmrack.settings.types import Address, ConfigWord, TimeZone


class AptSettings(Settings):
    mirror: str = Field(
        "",
        description="Base URL of a Debian/Ubuntu mirror (e.g. https://mirrors.tuna.tsinghua.edu.cn/ubuntu); "
        "empty keeps the distribution's upstream.",
    )
    manage_sources: bool = Field(True, description="Write the distribution's apt sources (deb822).")
    offline: bool = Field(
        False, description="Air-gapped site: apt uses only the offline bundle's local repository (apt/<codename>, "
        "uploaded to stack.bundle.remote_dir) and no other source; the deploy stops before any change when a "
        "package the tier needs is neither installed nor in the bundle.",
    )


class TimeSettings(Settings):
    timezone: TimeZone = Field("Asia/Shanghai", description="IANA time zone of the host.")
    ntp_servers: list[Address] = Field(
        ["ntp.aliyun.com", "ntp.tencent.com", "cn.pool.ntp.org"], description="chrony sources."
    )
    control_clock: bool = Field(
        True, description="Let chrony step and slew the clock; off in the sandbox (shared kernel clock)."
    )


class BaseSettings(Settings):
    apt: AptSettings = AptSettings()
    time: TimeSettings = TimeSettings()
    packages: list[ConfigWord] = Field(
        ["ca-certificates", "curl", "gnupg", "jq", "htop", "pciutils", "smartmontools", "chrony",
         "stress-ng", "memtester", "fio", "iperf3"],
        description="Essential packages installed on every host (the last four: tools of the acceptance checklist).",
    )
    sysctl: dict[str, str] = Field(
        {
            "fs.file-max": "2097152",
            "net.core.somaxconn": "65535",
            "net.ipv4.tcp_max_syn_backlog": "65535",
            "net.ipv4.ip_local_port_range": "10240 65535",
            "vm.swappiness": "10",
            "vm.max_map_count": "1048576",
        },
        description="Kernel settings written to /etc/sysctl.d/60-llmrack.conf.",
    )
    apply_sysctl: bool = Field(True, description="Apply sysctl at once (off where the kernel is shared).")
    nofile_limit: int = Field(1048576, ge=1024, description="Open-file limit for all users and systemd units.")
    journald_max_use: ConfigWord = Field("2G", description="journald SystemMaxUse cap.")
