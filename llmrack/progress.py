"""Progress lines for long transfers inside a pyinfra run (bundle uploads, image loads): size, rate, what is left.

Each step is a pair of ``python.call`` functions run at execution, around the operation they measure; a deploy
adds them only for work that will happen (an image the engine lacks), so a converged host gets none.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pyinfra import logger


class Progress:
    """``total`` bytes of ``what`` in steps; ``start(label)`` and ``done(label, size)`` make the callbacks."""

    def __init__(self, what: str, total: int, count: int):
        self.what, self.total, self.count = what, total, count
        self.done_bytes, self.done_count = 0, 0
        self._t0: dict[str, float] = {}

    def start(self, label: str) -> Callable[..., bool]:
        def _start(state: Any, host: Any) -> bool:
            self._t0[label] = time.monotonic()
            return True
        return _start

    def done(self, label: str, size: int) -> Callable[..., bool]:
        def _done(state: Any, host: Any) -> bool:
            elapsed = max(time.monotonic() - self._t0.get(label, time.monotonic()), 1e-3)
            self.done_bytes += size
            self.done_count += 1
            left = self.total - self.done_bytes
            host.log_styled(f"{self.what} {self.done_count}/{self.count} {label}: {size / 2**20:.0f} MiB in "
                            f"{elapsed:.1f} s ({size / 2**20 / elapsed:.0f} MiB/s); {left / 2**20:.0f} MiB and "
                            f"{self.count - self.done_count} left", log_func=logger.info)
            return True
        return _done
