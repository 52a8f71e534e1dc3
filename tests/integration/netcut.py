"""Cut a sandbox host's outbound network, and prove the cut from the host itself.

The rules live in the host container's own network namespace (nftables): nothing the host or its nested
containers start leaves it through its outward interface (eth0); replies to connections made to it (the
admin's SSH, the gateway's HTTPS, the checks of ``llmrack verify``) still do. Its loopback and its own bridges
to its nested containers stay open (a port published on 127.0.0.1 is relayed to a container over a bridge).
The proof is a TCP connection from the host to a listener on the machine running the sandbox (the sandbox
network's gateway address, a port of this process): it connects before the cut and fails after it.
"""

from __future__ import annotations

import socket
import subprocess
import threading
from dataclasses import dataclass

from harness import container

CUT = """table inet llmrack_airgap {
  chain output {
    type filter hook output priority 0; policy drop; oifname != "eth0" accept; ct state established,related accept;
  }
  chain forward {
    type filter hook forward priority 0; policy accept; ct state established,related accept; oifname "eth0" drop;
  }
}
"""


@dataclass
class CutProof:
    address: str  # the admin machine's address on the sandbox network
    before_rc: int  # the host's connection to it before the cut (0: connected)
    after_rc: int  # the same connection after the cut (non-zero: refused by the rules)
    after_output: str


def _connect(c, address: str, port: int) -> tuple[int, str]:
    done = c.exec_run(["timeout", "5", "bash", "-c", f"exec 3<>/dev/tcp/{address}/{port}"])
    return done.exit_code, done.output.decode(errors="replace").strip()


def cut_outbound(state, name: str) -> CutProof:
    """Apply :data:`CUT` in host ``name``'s namespace; connect out to this machine before and after."""
    c = container(state, name)
    nets = c.attrs["NetworkSettings"]["Networks"]
    address = next(n["Gateway"] for n in nets.values() if n.get("Gateway"))
    with socket.create_server((address, 0)) as server:
        server.settimeout(20)
        port = server.getsockname()[1]

        def accept() -> None:
            try:
                while True:
                    conn, _ = server.accept()
                    conn.close()
            except OSError:
                return

        threading.Thread(target=accept, daemon=True).start()
        before, _ = _connect(c, address, port)
        subprocess.run(["nsenter", "-t", str(c.attrs["State"]["Pid"]), "-n", "nft", "-f", "-"], input=CUT,
                       text=True, check=True)
        after, out = _connect(c, address, port)
    return CutProof(address=address, before_rc=before, after_rc=after, after_output=out)
