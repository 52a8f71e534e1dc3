"""One test per host x check: passes; fails with the check's message (measured outside the threshold, or
expected by the inventory and not deployed); is skipped only as not_applicable (with why) or manual (with how a
person checks it)."""

from __future__ import annotations

import pytest

from llmrack.verify import checks


def test_checklist(host_check, acceptance_hosts) -> None:
    host, check_id = host_check
    check = checks.REGISTRY[check_id]
    ctx = acceptance_hosts.context(host)
    outcome = check.func(ctx)
    line = f"[{check.checklist.zh} / {check.checklist.en}]"
    # not_applicable and manual are the two outcomes no machine here can turn into pass or fail; each must say
    # why (and, for manual, how a person signs it off) or the line fails
    if outcome.status == "not_applicable":
        assert outcome.message, f"{check_id} {line}: not applicable without saying why"
        pytest.skip(f"not applicable: {outcome.message}")
    if outcome.status == "manual":
        assert outcome.message and outcome.how, f"{check_id} {line}: manual without saying how to check by hand"
        pytest.skip(f"manual: {outcome.message}; how: {outcome.how}")
    assert outcome.status == "pass", (
        f"{check_id} {line}: {outcome.message} (value {outcome.value!r}, threshold {outcome.threshold!r})"
    )
