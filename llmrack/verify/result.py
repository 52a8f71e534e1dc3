"""The registry of checks: each proves one checklist line and returns an ``Outcome`` (:mod:`llmrack.verify.outcome`
says what each status means).

To add a check in a new module: decorate a function ``(CheckContext) -> Outcome`` with :func:`check` and return
:func:`ok` / :func:`bad` / :func:`judge` / :func:`not_applicable` / :func:`manual` / :func:`expected_absent`;
then import the module from ``llmrack.verify.checks`` so that it registers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from llmrack.checkresult import CATEGORIES as CATEGORIES  # written once there, re-exported here
from llmrack.checkresult import FAILING as FAILING
from llmrack.checkresult import STATUSES as STATUSES
from llmrack.checkresult import Category as Category
from llmrack.checkresult import Status as Status
from llmrack.verify.context import CheckContext
from llmrack.verify.outcome import NOT_DEPLOYED as NOT_DEPLOYED  # re-exported: the check modules import these here
from llmrack.verify.outcome import Outcome as Outcome
from llmrack.verify.outcome import bad as bad
from llmrack.verify.outcome import expected_absent as expected_absent
from llmrack.verify.outcome import judge as judge
from llmrack.verify.outcome import manual as manual
from llmrack.verify.outcome import not_applicable as not_applicable
from llmrack.verify.outcome import ok as ok


@dataclass(frozen=True)
class ChecklistLine:
    zh: str
    en: str
    source: Literal["seed-000", "llmrack"] = "seed-000"


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    category: Category
    checklist: ChecklistLine
    func: Callable[[CheckContext], Outcome]


REGISTRY: dict[str, Check] = {}


def check(id: str, title: str, category: Category, zh: str, en: str, source: str = "seed-000"):
    """Register a check function under ``id`` (``sw.`` / ``hw.`` / ``perf.`` / ``sec.`` + snake case)."""

    def deco(func: Callable[[CheckContext], Outcome]) -> Callable[[CheckContext], Outcome]:
        if id in REGISTRY:
            raise ValueError(f"duplicate check id {id}")
        REGISTRY[id] = Check(id, title, category, ChecklistLine(zh, en, source), func)  # type: ignore[arg-type]
        return func

    return deco


def select(only: set[str] | None) -> list[Check]:
    """Checks in run order; ``only`` holds categories and/or check ids (or id prefixes such as ``hw.gpu``)."""
    checks = sorted(REGISTRY.values(), key=lambda c: CATEGORIES.index(c.category))
    if not only:
        return checks
    return [c for c in checks if c.category in only or any(c.id == o or c.id.startswith(o + "_")
                                                            or c.id.startswith(o + ".") for o in only)]
