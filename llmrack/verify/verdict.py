"""The result model of a verify run: a ``HostResult`` per host (its checks, benchmark and burn-in), a
``VerifyResult`` over them with the run's verdict and exit code, and ``report.json``'s document
(:meth:`VerifyResult.to_dict`). The suite fills it in; the reports read it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from llmrack import __version__ as LLMRACK_VERSION
from llmrack.checkresult import FAILING, STATUSES, CheckResult, jsonable


@dataclass
class HostResult:
    name: str
    address: str
    tier: str
    roles: list[str]
    reachable: bool
    connection: str
    error: str = ""
    checks: list[CheckResult] = field(default_factory=list)
    bench: dict[str, Any] | None = None
    burnin: dict[str, Any] | None = None
    duration_s: float = 0.0

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for c in self.checks:
            out[c.status] += 1
        return out

    @property
    def status(self) -> str:
        if not self.reachable:
            return "unreachable"
        return "fail" if any(c.status in FAILING for c in self.checks) else "pass"


@dataclass
class VerifyResult:
    inventory: str
    hosts: list[HostResult]
    started_at: float
    duration_s: float
    only: list[str] | None = None
    local: bool = False
    report_files: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if any(not h.reachable for h in self.hosts):
            return 2
        if any(h.status == "fail" for h in self.hosts):
            return 1
        return 0

    def summary(self) -> dict[str, Any]:
        totals = dict.fromkeys(STATUSES, 0)
        for h in self.hosts:
            for k, v in h.counts().items():
                totals[k] += v
        return {
            "hosts": len(self.hosts), "hosts_passed": sum(h.status == "pass" for h in self.hosts),
            "hosts_unreachable": sum(not h.reachable for h in self.hosts), "checks": sum(totals.values()),
            **totals, "exit_code": self.exit_code,
            "verdict": {0: "pass", 1: "fail", 2: "incomplete"}[self.exit_code],
        }

    @property
    def generated_at(self) -> str:
        """When the run ended, in UTC (ISO 8601)."""
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started_at + self.duration_s))

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": 2,
            "tool": {"name": "llmrack", "version": LLMRACK_VERSION},
            "generated_at": self.generated_at,
            "inventory": self.inventory,
            "only": self.only,
            "local": self.local,
            "duration_s": round(self.duration_s, 2),
            "summary": self.summary(),
            "hosts": [
                {
                    "name": h.name, "address": h.address, "tier": h.tier, "roles": h.roles,
                    "reachable": h.reachable, "connection": h.connection, "error": h.error,
                    "status": h.status, "summary": h.counts(), "duration_s": round(h.duration_s, 2),
                    "checks": [c.to_dict() for c in h.checks],
                    "bench": jsonable(h.bench), "burnin": jsonable(h.burnin),
                }
                for h in self.hosts
            ],
        }
