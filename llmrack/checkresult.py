"""The result of one check, whoever ran it: ``llmrack verify``'s checklist lines (:mod:`llmrack.verify`) and the
smoke checks of a deployed stack (:mod:`llmrack.stack.smoke`, built with :meth:`CheckResult.measured`).

The statuses and the categories are written here once; :mod:`llmrack.verify.result` says what each status means.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, get_args

Category = Literal["software", "hardware", "security", "performance"]  # in run and report order
Status = Literal["pass", "fail", "not_applicable", "manual", "error"]
STATUSES: tuple[Status, ...] = ("pass", "fail", "not_applicable", "manual", "error")
FAILING: frozenset[str] = frozenset({"fail", "error"})
CATEGORIES: tuple[Category, ...] = get_args(Category)


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data (anything else written as its ``str``); None stays None."""
    return json.loads(json.dumps(value, default=str)) if value is not None else None


@dataclass
class CheckResult:
    id: str
    title: str
    category: str
    checklist_zh: str
    checklist_en: str
    checklist_source: str
    status: str
    message: str
    value: Any = None
    threshold: Any = None
    how: str | None = None
    duration_s: float = 0.0
    details: dict[str, Any] | None = None

    @classmethod
    def measured(cls, name: str, ok: bool, detail: str, seconds: float) -> CheckResult:
        """A smoke check: passed or failed, ``detail`` saying what was seen; no checklist line behind it."""
        return cls(id=name, title=name, category="software", checklist_zh="", checklist_en="", checklist_source="",
                   status="pass" if ok else "fail", message=detail, duration_s=seconds)

    @property
    def name(self) -> str:
        return self.title

    @property
    def ok(self) -> bool:
        return self.status not in FAILING

    @property
    def detail(self) -> str:
        return self.message

    @property
    def seconds(self) -> float:
        return self.duration_s

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'}  {self.name:<18} {self.seconds * 1000:8.0f} ms  {self.detail}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "title": self.title, "category": self.category,
            "checklist": {"zh": self.checklist_zh, "en": self.checklist_en, "source": self.checklist_source},
            "status": self.status, "how": self.how, "value": jsonable(self.value),
            "threshold": jsonable(self.threshold), "message": self.message,
            "duration_s": round(self.duration_s, 3), "details": jsonable(self.details),
        }
