"""Stop one host on purpose, without a traceback: the other hosts of the run go on.

pyinfra marks an operation failed when a Python callback taking ``state`` and ``host`` returns False; the
host then gets no further operations and the run ends with "Error: executed 0 commands" for it. Raising an
exception in the callback would do the same but prints a Python traceback for what is an expected stop.
"""

from __future__ import annotations

from typing import Any

from pyinfra import logger
from pyinfra.operations import python


def stop_host(message: str, *, name: str, **op_kwargs: Any) -> None:
    """Add an operation that fails this host with ``message`` (printed once, in red, at execution).

    ``op_kwargs`` are pyinfra's global operation arguments, e.g. ``_if`` to stop only after a change.
    """

    def _fail(state, host) -> bool:  # noqa: ANN001 - pyinfra passes its State and Host
        host.log_styled(f"stopped: {message}", fg="red", log_func=logger.error)
        return False

    python.call(name=name, function=_fail, **op_kwargs)
