"""One test per host x check: passes, fails with the check's message, or is skipped with its reason."""

from __future__ import annotations

import pytest

from llmrack.verify import checks


def test_checklist(host_check, acceptance_hosts) -> None:
    host, check_id = host_check
    check = checks.REGISTRY[check_id]
    ctx = acceptance_hosts.context(host)
    outcome = check.func(ctx)
    line = f"[{check.checklist.zh} / {check.checklist.en}]"
    if outcome.status == "skip":
        pytest.skip(f"{outcome.skip_reason}: {outcome.message}")
    assert outcome.status == "pass", (
        f"{check_id} {line}: {outcome.message} (value {outcome.value!r}, threshold {outcome.threshold!r})"
    )
