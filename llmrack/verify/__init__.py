"""``llmrack verify``: the acceptance checklist per host (checks), its runner (suite) and reports (report)."""

from llmrack.verify.checks import REGISTRY, Check, CheckContext, Outcome, select
from llmrack.verify.suite import HostResult, VerifyResult, local_inventory, print_summary, verify

__all__ = ["REGISTRY", "Check", "CheckContext", "HostResult", "Outcome", "VerifyResult", "local_inventory",
           "print_summary", "select", "verify"]
