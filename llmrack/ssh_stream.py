"""Feed a local file to a command on the host in one pass: no staged copy on the host, no second read there.

:func:`stream_file` is a pyinfra operation: at execution it runs ``command`` on the host (through ``sudo``
when the run uses it, as pyinfra's own commands do) and writes the file to its standard input while hashing
what it sends. An image load is one pass of ``docker save``'s tar through SSH into ``docker load``, instead
of an upload to disk, a ``sha256sum`` over that copy and a ``docker load -i`` reading it a third time; the
SSH channel's MAC guards the bytes on the way and the command can check what it made (an image's id).

The operation fails when the command fails, when the bytes sent do not have the expected sha256 (the local
file changed or rotted since its manifest was written), or when the host closes the stream early. A host
reached without an SSH client of pyinfra's (the local or docker connector) gets the file uploaded to a
private temporary path (``mktemp``) and fed from there, then removed; its sha256 is checked first, so a wrong
file never reaches the command on that path.
"""

from __future__ import annotations

import hashlib
import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyinfra import logger
from pyinfra.api import StringCommand, operation
from pyinfra.api.command import PyinfraCommand
from pyinfra.connectors.util import make_unix_command_for_host

from llmrack.manifest import sha256_file

CHUNK = 1 << 20
OUTPUT_TAIL = 4000
# arguments pyinfra's SSH connector takes for itself before building a command (connectors/ssh.py)
CONNECTOR_CONTROL = ("_success_exit_codes", "_timeout", "_get_pty", "_stdin")


class StreamFile(PyinfraCommand):
    """The command object pyinfra executes for :func:`stream_file`."""

    def __init__(self, src: Path, command: str, sha256: str, label: str, done: Callable[[Any, float], None] | None):
        super().__init__()
        self.src, self.command, self.sha256, self.label, self.done = src, command, sha256, label, done

    def __repr__(self) -> str:
        return f"StreamFile({self.src} | {self.command})"

    def execute(self, state: Any, host: Any, connector_arguments: dict) -> bool:
        t0 = time.monotonic()
        client = getattr(host.connector, "client", None)
        if client is not None and client.get_transport() is not None:
            ok, digest, output = _over_ssh(client, self._unix(state, host, self.command, connector_arguments),
                                           self.src)
        else:
            ok, digest, output = self._staged(state, host, connector_arguments)
        if digest != self.sha256:
            host.log_styled(f"{self.label}: {self.src} has sha256 {digest[:16]}..., its manifest says "
                            f"{self.sha256[:16]}... (rebuild the bundle)", fg="red", log_func=logger.error)
            return False
        if not ok:
            host.log_styled(f"{self.label}: `{self.command}` failed: {output.strip()[-OUTPUT_TAIL:]}", fg="red",
                            log_func=logger.error)
            return False
        if self.done is not None:
            self.done(host, time.monotonic() - t0)
        return True

    @staticmethod
    def _unix(state: Any, host: Any, command: str, arguments: dict) -> str:
        """The command as pyinfra's connector would run it (sudo, su, env, chdir from the run's arguments)."""
        wrap = {k: v for k, v in arguments.items() if k not in CONNECTOR_CONTROL}
        return make_unix_command_for_host(state, host, StringCommand(command), **wrap).get_raw_value()

    def _staged(self, state: Any, host: Any, arguments: dict) -> tuple[bool, str, str]:
        digest = sha256_file(self.src)
        if digest != self.sha256:  # known before anything is sent: the command is not run
            return False, digest, ""
        ok, out = host.run_shell_command(StringCommand("mktemp"), **arguments)
        if not ok:
            return False, digest, out.output
        tmp = out.stdout_lines[0].strip()
        try:
            if not host.put_file(str(self.src), tmp, **arguments):
                return False, digest, f"upload to {tmp} failed"
            ok, out = host.run_shell_command(
                StringCommand(f"{self.command} < {shlex.quote(tmp)}"), **arguments)
            return ok, digest, out.output
        finally:
            host.run_shell_command(StringCommand(f"rm -f {shlex.quote(tmp)}"), **arguments)


def _over_ssh(client: Any, command: str, src: Path) -> tuple[bool, str, str]:
    """Run ``command`` on a new channel and send ``src`` to its stdin; (exit 0, sha256 sent, output)."""
    h = hashlib.sha256()
    output = bytearray()
    chan = client.get_transport().open_session()
    try:
        chan.set_combine_stderr(True)
        chan.exec_command(command)
        closed_early = False
        with src.open("rb") as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
                while chan.recv_ready():  # the command's output never backs up behind the stream
                    output += chan.recv(65536)
                try:
                    chan.sendall(chunk)
                except OSError:  # the command exited before reading everything
                    closed_early = True
                    break
        if closed_early:  # the whole file's sum anyway: a failing command is reported, not a wrong sum
            digest = sha256_file(src)
        else:
            chan.shutdown_write()
            digest = h.hexdigest()
        while data := chan.recv(65536):
            output += data
        status = chan.recv_exit_status()
    finally:
        chan.close()
    text = output.decode(errors="replace")
    if closed_early and status == 0:
        return False, digest, f"the command closed its input early\n{text}"
    return status == 0, digest, text


@operation(is_idempotent=False)
def stream_file(src: str | Path, command: str, sha256: str,
                done: Callable[[Any, float], None] | None = None):
    """Feed the local file ``src`` to ``command`` on the host (see the module); ``sha256``: what the file must
    hash to; ``done(host, seconds)`` runs after a success (a progress line)."""
    path = Path(src)
    yield StreamFile(path, command, sha256, path.name, done)
