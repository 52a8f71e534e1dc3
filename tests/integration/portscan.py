"""A TCP connect() scan of every port of a sandbox host, run from another sandbox host (what the LAN sees)."""

from __future__ import annotations

import json
import subprocess
import textwrap

# A connect() scan of every TCP port, run on a sandbox host with its python3: non-blocking connects in batches,
# an open port completes the handshake, a closed one resets, a filtered one stays silent until the batch's
# deadline. Bounded: 65535 connects, 4000 at a time, 2 s per batch.
SCANNER = textwrap.dedent('''
    import errno, json, resource, selectors, socket, sys, time
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 8192 if hard == resource.RLIM_INFINITY else min(8192, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    addr, batch, found = sys.argv[1], max(100, min(4000, max(soft, want) - 200)), []
    ports = list(range(1, 65536))
    for i in range(0, len(ports), batch):
        sel, pending = selectors.DefaultSelector(), {}
        for port in ports[i:i + batch]:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            if s.connect_ex((addr, port)) in (0, errno.EINPROGRESS):
                sel.register(s, selectors.EVENT_WRITE, port)
                pending[s] = port
            else:
                s.close()
        deadline = time.monotonic() + 2.0
        while pending and (left := deadline - time.monotonic()) > 0:
            for key, _ in sel.select(left):
                s = key.fileobj
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    found.append(key.data)
                sel.unregister(s)
                s.close()
                del pending[s]
        for s in pending:
            s.close()
        sel.close()
    print(json.dumps(sorted(found)))
''')



def scan(state, source: str, target: str) -> list[int]:
    """Open TCP ports of ``target``'s address as seen from sandbox host ``source``."""
    addr = state.host(target).address
    done = subprocess.run(["ssh", "-F", state.ssh_config, source, "python3", "-", addr], input=SCANNER,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])
