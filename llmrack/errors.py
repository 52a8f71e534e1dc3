"""The project's one exception type for bad input, shown as a clean message (exit code 2)."""

from __future__ import annotations


class LlmrackError(Exception):
    """Bad input or a condition the user must fix.

    ``source`` names the file (inventory, tier, model config) and ``field`` the key at fault,
    so the message always says where to look. The CLI prints ``str(err)`` and exits with
    ``exit_code`` (2: bad input, nothing was changed on any host).
    """

    exit_code = 2

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None):
        self.message = message
        self.source = source
        self.field = field
        super().__init__(message)

    def __str__(self) -> str:
        where = ""
        if self.source and self.field:
            where = f"{self.source}: {self.field}: "
        elif self.source:
            where = f"{self.source}: "
        elif self.field:
            where = f"{self.field}: "
        return f"{where}{self.message}"


class PlanError(LlmrackError):
    """The model does not fit the GPUs with the asked settings; the message says what would."""


class SandboxError(LlmrackError):
    """The local sandbox could not be created or reached."""

    exit_code = 2
