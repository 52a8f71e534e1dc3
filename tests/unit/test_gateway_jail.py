"""The gateway's fail2ban jail, read by fail2ban itself (Debian's package unpacked by scripts/bootstrap.sh): the
rendered jail.local, filter and action pass `fail2ban-client -t` beside the package's own configuration, and
`fail2ban-regex` on access log lines as the journal backend hands them over counts only the requests without
a valid key."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import roles.host_security as hs
from llmrack.ops import render_template

PROJECT = Path(__file__).resolve().parents[2]
F2B = PROJECT / ".llmrack" / "tools" / "fail2ban"


def fail2ban(tool: str, *args: str) -> subprocess.CompletedProcess:
    if not (F2B / "usr/bin" / tool).exists():
        pytest.fail(f"{F2B} has no {tool}: run scripts/bootstrap.sh (it unpacks Debian's fail2ban there)")
    env = {**os.environ, "PYTHONPATH": str(F2B / "usr/lib/python3/dist-packages")}
    return subprocess.run([sys.executable, str(F2B / "usr/bin" / tool), *args], capture_output=True, text=True,
                          env=env, timeout=120)


def _conf(tmp: Path, *, gateway: bool) -> Path:
    conf = tmp / "fail2ban"
    shutil.copytree(F2B / "etc/fail2ban", conf)
    (conf / "jail.local").write_text(render_template(
        "host_security", hs.JAIL, ignore=["127.0.0.1/8"], find_time=600, ban_time=900, ssh_max_retry=5,
        gateway=gateway, tag="llmrack-gateway" if gateway else None, gateway_max_rejected=20))
    for path in (hs.GATEWAY_FILTER, hs.GATEWAY_ACTION):
        (conf / Path(path).relative_to("/etc/fail2ban")).write_text(
            render_template("host_security", path, script=hs.BAN_METRIC))
    return conf


@pytest.mark.parametrize("gateway", [True, False])
def test_the_jails_pass_fail2bans_own_config_test(tmp_path, gateway) -> None:
    conf = _conf(tmp_path, gateway=gateway)
    done = fail2ban("fail2ban-client", "-c", str(conf), "-t")
    assert done.returncode == 0 and "configuration test is successful" in done.stdout + done.stderr, done.stderr
    dump = fail2ban("fail2ban-client", "-c", str(conf), "-d").stdout
    assert ("['add', 'llmrack-gateway', 'systemd']" in dump) is gateway
    if gateway:
        assert "CONTAINER_TAG=llmrack-gateway" in dump and "['set', 'llmrack-gateway', 'maxretry', 20]" in dump
        assert "f2b-forward \\\\{ type filter hook forward priority -1" in dump  # published ports are forwarded
        assert "/usr/local/sbin/llmrack-ban-metric ban" in dump


def _line(addr: str, client: str, uri: str, status: int) -> str:
    # what fail2ban's journal backend makes of an entry: hostname, SYSLOG_IDENTIFIER[pid]:, MESSAGE
    return (f'2026-12-02 05:40:00 host1 llmrack-gateway[7]: {{"time":"2026-12-02T05:40:00+00:00",'
            f'"remote_addr":"{addr}","client":"{client}","method":"GET","uri":"{uri}","status":{status},'
            '"bytes_sent":12,"request_time":0.000,"upstream":"","upstream_status":""}')


def test_the_filter_counts_only_requests_without_a_valid_key(tmp_path) -> None:
    conf = _conf(tmp_path, gateway=True)
    log = tmp_path / "access.log"
    log.write_text("\n".join([
        _line("10.0.0.66", "", "/v1/models", 401),  # no key or a made-up one
        _line("10.0.0.66", "", "/v1/chat/completions", 429),  # the unauthenticated limit
        _line("10.0.0.7", "tests", "/v1/chat/completions", 429),  # a valid key over its rate: not counted
        _line("10.0.0.7", "tests", "/v1/models", 200),
        _line("10.0.0.8", "", "/health", 200),
    ]) + "\n")
    done = fail2ban("fail2ban-regex", "--print-all-matched", str(log), str(conf / "filter.d/llmrack-gateway.conf"))
    assert done.returncode == 0, done.stderr
    assert re.search(r"Lines: 5 lines, 0 ignored, 2 matched, 3 missed", done.stdout), done.stdout
    matched = done.stdout.split("Matched line(s):")[1].split("Missed")[0]
    assert matched.count("10.0.0.66") == 2 and "10.0.0.7" not in matched
