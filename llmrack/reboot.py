"""Reboot a host and continue the same pyinfra run once it has really booted again.

pyinfra's own ``server.reboot`` confirms a reboot from /proc/uptime. That is the kernel's uptime: right on a
machine of its own, wrong where the kernel is shared (a container host, a sandbox host), where it never drops
and the wait runs into its timeout. /run is a tmpfs on every systemd system and starts empty at each boot, so
this operation leaves a marker there before the reboot and waits until SSH answers and the marker is gone:
the same proof on bare metal, in a VM and in a container. The operation otherwise follows ``server.reboot``
(askpass files removed first, the reboot detached from the SSH session, reconnect with retries).
"""

from __future__ import annotations

import shlex
import time

from pyinfra import logger
from pyinfra.api import FunctionCommand, StringCommand, operation
from pyinfra.connectors.util import clear_askpass_cache, remove_any_sudo_askpass_file

from llmrack.ssh_latency import no_delay

MARKER = "/run/llmrack/reboot-pending"


@operation(is_idempotent=False)
def reboot_and_wait(delay: int = 3, interval: int = 2, reboot_timeout: int = 600, marker: str = MARKER):
    """Reboot, wait until SSH answers and ``marker`` (left in /run before the reboot) is gone.

    + delay: seconds to wait before the first reconnect
    + interval: seconds between reconnect attempts
    + reboot_timeout: seconds before giving up (the operation then fails this host)
    """
    quoted = shlex.quote(marker)

    def remove_askpass(state, host) -> None:  # noqa: ANN001 - pyinfra passes its State and Host
        remove_any_sudo_askpass_file(host)

    yield FunctionCommand(remove_askpass, (), {})
    yield StringCommand(f"mkdir -p $(dirname {quoted}) && date +%s > {quoted}")
    # detached, so the SSH channel closes before the host goes down (as server.reboot does)
    yield StringCommand("( sleep 1 && reboot ) </dev/null >/dev/null 2>&1 &")

    def wait_for_boot(state, host) -> bool:  # noqa: ANN001
        time.sleep(delay)
        clear_askpass_cache(host)
        host.disconnect()
        started = time.monotonic()
        while time.monotonic() - started < reboot_timeout:
            host.connect(show_errors=False)
            if host.connected:
                no_delay(host)
                ok, _ = host.run_shell_command(StringCommand(f"test ! -e {quoted}"))
                if ok:
                    logger.info(f"{host.print_prefix}rebooted: back after {time.monotonic() - started + delay:.0f} s")
                    return True
                host.disconnect()  # still the old boot: the reboot has not happened yet
            time.sleep(interval)
        host.log_styled(f"stopped: the host did not come back from the reboot within {reboot_timeout} s",
                        fg="red", log_func=logger.error)
        return False

    yield FunctionCommand(wait_for_boot, (), {})

    def forget_askpass(state, host) -> None:  # noqa: ANN001
        clear_askpass_cache(host)

    yield FunctionCommand(forget_askpass, (), {})
