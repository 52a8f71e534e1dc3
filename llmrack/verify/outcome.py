"""What a check returns: an ``Outcome`` of one status, with its value, threshold and reason.

Every check ends in exactly one of these statuses, and each means one thing:

``pass``
    measured on the host, and within the tier's threshold.
``fail``
    measured and outside the threshold, **or** expected by the inventory (the host's tier and roles deploy
    it) and absent: "expected by the inventory, not deployed".
``not_applicable``
    the host's tier and roles do not call for it (no GPU in the tier, no gateway role, no vector store ...).
    ``message`` says why. Only a fact of the inventory or of the machine's make-up is a reason.
``manual``
    no machine can measure it from here (a 2-hour burn-in run elsewhere, disks behind a controller that does
    not pass SMART through, an outside view of the ports when verify runs on the host itself). ``how`` says
    what a person runs or looks at to sign the line off.
``error``
    the check itself broke (a command it needs failed in an unexpected way): nothing was proved.

Nothing else skips. The verdict follows: any ``fail`` or ``error`` fails the host (exit code 1); ``manual``
lines do not fail it but are counted and listed as open sign-offs in every report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmrack.checkresult import STATUSES, Status

NOT_DEPLOYED = "expected by the inventory, not deployed"


@dataclass
class Outcome:
    """The result of one check. ``how`` is set for ``manual`` only: what a person does to sign the line off."""

    status: Status
    message: str
    value: Any = None
    threshold: Any = None
    how: str | None = None
    details: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown check status {self.status!r} (one of {', '.join(STATUSES)})")
        if self.status == "manual" and not self.how:
            raise ValueError("a manual outcome says how a person checks it (how=...)")
        if self.status != "pass" and not self.message:
            raise ValueError(f"a {self.status} outcome says why (message)")


def ok(message: str, value: Any = None, threshold: Any = None, **details: Any) -> Outcome:
    return Outcome("pass", message, value, threshold, details=details or None)


def bad(message: str, value: Any = None, threshold: Any = None, **details: Any) -> Outcome:
    return Outcome("fail", message, value, threshold, details=details or None)


def judge(passed: bool, message: str, value: Any = None, threshold: Any = None, **details: Any) -> Outcome:
    return Outcome("pass" if passed else "fail", message, value, threshold, details=details or None)


def not_applicable(why: str, threshold: Any = None) -> Outcome:
    """The host's tier/roles (or the machine's make-up) do not call for this line; ``why`` says which."""
    return Outcome("not_applicable", why, None, threshold)


def manual(why: str, how: str, threshold: Any = None, value: Any = None, **details: Any) -> Outcome:
    """No machine can measure this here (``why``); ``how``: the command or inspection a person does."""
    return Outcome("manual", why, value, threshold, how=how, details=details or None)


def expected_absent(what: str, threshold: Any = None) -> Outcome:
    """A failure: the inventory deploys ``what`` on this host, and it is not there."""
    return Outcome("fail", f"{NOT_DEPLOYED}: {what}", None, threshold)
