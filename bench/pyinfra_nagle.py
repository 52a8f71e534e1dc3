"""pyinfra as before llmrack turned Nagle's algorithm off on its SSH socket (``llmrack/ssh_latency.py``):
the "before" of the no-op figures, measured beside the "after" in one run. Benchmarks only.

    .venv/bin/python bench/pyinfra_nagle.py -y inventories/sandbox.py deploys/full_stack.py
"""

from __future__ import annotations

import sys

from llmrack import ssh_latency

ssh_latency.no_delay = lambda host: False  # deploys/stages.py imports it after this line

from pyinfra_cli.main import main  # noqa: E402

if __name__ == "__main__":
    sys.argv[0] = "pyinfra"
    sys.exit(main())
