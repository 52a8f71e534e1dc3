"""One result class for verify's checklist lines and the stack's smoke checks: what each caller reads of it."""

from __future__ import annotations

from llmrack.checkresult import CheckResult
from llmrack.stack import smoke
from llmrack.verify import suite


def test_smoke_and_verify_share_the_class() -> None:
    assert smoke.CheckResult is suite.CheckResult is CheckResult


def test_a_smoke_result_reads_as_before() -> None:
    r = CheckResult.measured("chat completion", False, "HTTP 503", 0.25)
    assert (r.name, r.ok, r.detail, r.seconds) == ("chat completion", False, "HTTP 503", 0.25)
    assert r.line() == "FAIL  chat completion         250 ms  HTTP 503"
    assert CheckResult.measured("models", True, "2 models", 0.0).line().startswith("PASS  models ")


def test_a_verify_line_fails_only_when_failing_or_broken() -> None:
    def line(status: str) -> CheckResult:
        return CheckResult(id="x", title="x", category="software", checklist_zh="", checklist_en="",
                           checklist_source="llmrack", status=status, message="", value=(1,))

    assert [line(s).ok for s in ("pass", "not_applicable", "manual", "fail", "error")] == [
        True, True, True, False, False]
    assert line("pass").to_dict()["value"] == [1]
