#!/usr/bin/env bash
# Set up this machine to run llmrack and its tests: system packages, a Docker engine, the Python environment.
# Safe to re-run. Needs root on Debian/Ubuntu.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(docker.io debootstrap zstd python3-venv nginx-light prometheus prometheus-alertmanager
              chromium openssh-client openssh-server nftables unattended-upgrades openssl
              rsync curl ca-certificates stress-ng memtester fio iperf3)
PY=${PYTHON:-python3}
pip_install() { .venv/bin/pip install -q --disable-pip-version-check -e '.[dev]'; }
# The tool's own Python environment goes in beside the system packages when this Python can already make a
# venv (else after them: python3-venv is one of them).
venv_pid=
if [ -x .venv/bin/python ] || "$PY" -m venv .venv >/dev/null 2>&1; then
    pip_install & venv_pid=$!
else
    rm -rf .venv
fi
wait_venv() {
    if [ -n "$venv_pid" ]; then
        wait "$venv_pid" || { echo "llmrack: pip install into .venv failed" >&2; exit 1; }
    else
        "$PY" -m venv .venv
        pip_install
    fi
}
missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "llmrack: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Debian's prometheus and openssh-server packages start services at install; only their check tools
    # (promtool, amtool, sshd -t) are needed here.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    rm -f /usr/sbin/policy-rc.d
fi
mkdir -p /run/sshd

# A Docker engine: the distro's dockerd, started in the background when none answers.
if ! docker info >/dev/null 2>&1; then
    echo "llmrack: starting dockerd"
    mkdir -p /var/log
    nohup dockerd >/var/log/llmrack-dockerd.log 2>&1 &
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/llmrack-dockerd.log" >&2; exit 1; }
fi

# The tool's own Python environment (light: the heavy vLLM environment lives in the image build cache).
wait_venv

# docker compose v2 for checking rendered compose files here (the engine on this machine may be 20.10 without
# the plugin): Debian trixie's package, the same one the offline bundle carries to hosts.
if [ ! -x .llmrack/tools/docker-compose ]; then
    deb=$(.venv/bin/python -c "from llmrack.bundle import fetch_compose_deb; from llmrack.images import cache_dir
print(fetch_compose_deb(cache_dir() / 'debs', log=lambda m: None))")
    tmp=$(mktemp -d)
    dpkg -x "$deb" "$tmp"
    mkdir -p .llmrack/tools
    cp "$tmp/usr/libexec/docker/cli-plugins/docker-compose" .llmrack/tools/docker-compose
    rm -rf "$tmp"
fi
# fail2ban's own config test and regex tool for the jails' unit tests, unpacked from Debian's package (not
# installed: the machine gets no fail2ban service).
if [ ! -x .llmrack/tools/fail2ban/usr/bin/fail2ban-regex ]; then
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get download -qq fail2ban >/dev/null 2>&1) || { apt-get update -qq && (cd "$tmp" && apt-get download -qq fail2ban); }
    mkdir -p .llmrack/tools/fail2ban
    dpkg -x "$tmp"/fail2ban_*.deb .llmrack/tools/fail2ban
    rm -rf "$tmp"
fi
echo "llmrack: ready (.venv/bin/llmrack)"
