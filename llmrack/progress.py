"""Progress lines for long transfers inside a pyinfra run (image streams): size, rate, what is left; and the
callback type of long work on the admin machine (:data:`Step`).

A deploy makes a :class:`Progress` only for work that will happen (an image the engine lacks), so a converged
host prints none; the operation doing the work calls :meth:`Progress.reporter`'s callback when a step is done.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyinfra import logger

Step = Callable[[str, int, int], object]
"""Progress of long work on the admin machine (verify, bench, image builds): ``(what, done, total)``, ``done``
of ``total`` units finished, ``what`` the one running or just finished (the CLI draws it as a bar)."""


class Progress:
    """``total`` bytes of ``what`` in ``count`` steps."""

    def __init__(self, what: str, total: int, count: int):
        self.what, self.total, self.count = what, total, count
        self.done_bytes, self.done_count = 0, 0

    def reporter(self, label: str, size: int) -> Callable[[Any, float], None]:
        """The callback ``(host, seconds)`` that logs step ``label`` of ``size`` bytes as done."""
        def _done(host: Any, seconds: float) -> None:
            elapsed = max(seconds, 1e-3)
            self.done_bytes += size
            self.done_count += 1
            left = self.total - self.done_bytes
            host.log_styled(f"{self.what} {self.done_count}/{self.count} {label}: {size / 2**20:.0f} MiB in "
                            f"{elapsed:.1f} s ({size / 2**20 / elapsed:.0f} MiB/s); {left / 2**20:.0f} MiB and "
                            f"{self.count - self.done_count} left", log_func=logger.info)
        return _done
