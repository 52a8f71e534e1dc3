"""Stop one host on purpose, without a traceback: kept for the deploy files; the code is ``llmrack.ops``."""

from llmrack.ops import stop_host

__all__ = ["stop_host"]
