"""``llmrack verify``: the acceptance checklist per host (checks), its runner (suite) and reports (report)."""

from llmrack.verify import checklist as _checklist  # noqa: F401  (registers the checklist lines it adds)
from llmrack.verify import checklist_perf as _checklist_perf  # noqa: F401
from llmrack.verify import exposure as _exposure  # noqa: F401  (registers the port-scan check)
from llmrack.verify import security as _security  # noqa: F401  (registers the security controls)
from llmrack.verify.checks import REGISTRY, Check, CheckContext, Outcome, select
from llmrack.verify.suite import local_inventory, print_summary, verify
from llmrack.verify.verdict import HostResult, VerifyResult

__all__ = ["REGISTRY", "Check", "CheckContext", "HostResult", "Outcome", "VerifyResult", "local_inventory",
           "print_summary", "select", "verify"]
