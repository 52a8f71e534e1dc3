"""The acceptance checklist as a registry of checks, run over a testinfra host.

Each check proves one line of seed 000's 验收测试清单 (or a line llmrack adds: gateway, time, security),
reads its thresholds from the tier (``profile.hardware``, ``profile.acceptance``) and returns an ``Outcome``
whose status is one of pass / fail / not_applicable / manual / error, defined in ``llmrack.verify.outcome``.

This module is the one place that loads every check module (so that they register) and re-exports the
names other code uses. The checks live by concern: ``checks_software``, ``checks_hardware``,
``checks_security``, ``checks_performance``, ``checks_rag``; the context they share is ``context``.
"""

from __future__ import annotations

from collections.abc import Iterator

# isort: off
# the check modules register on import, in run order within each category
from llmrack.verify import checks_software as _software  # noqa: F401
from llmrack.verify import checks_hardware as _hardware  # noqa: F401
from llmrack.verify import checks_disks as _disks  # noqa: F401
from llmrack.verify import checks_security as _security  # noqa: F401
from llmrack.verify import checks_performance as _performance  # noqa: F401
from llmrack.verify import checks_rag as _rag  # noqa: F401
# isort: on
from llmrack.verify.checks_disks import hw_data_free, hw_smart, raid_controller, smart_verdict
from llmrack.verify.checks_hardware import (
    burnin_temperatures,
    hw_burnin,
    hw_cpu,
    hw_gpu_count,
    hw_gpu_errors,
    hw_gpu_idle,
    hw_gpu_memory,
    hw_gpu_model,
    hw_pcie,
    hw_ram,
)
from llmrack.verify.checks_performance import (
    bench_result,
    perf_concurrency,
    perf_multi_gpu,
    perf_single_stream,
    perf_streaming,
    perf_throughput,
    perf_tpot,
    perf_ttft,
)
from llmrack.verify.checks_rag import perf_rag
from llmrack.verify.checks_security import sec_gateway_auth, sec_ssh_password, tcp_open
from llmrack.verify.checks_software import (
    sw_compose,
    sw_cuda_container,
    sw_docker,
    sw_driver,
    sw_gateway_tls,
    sw_grafana,
    sw_nvidia_runtime,
    sw_os,
    sw_prometheus,
    sw_time,
    sw_vector_store,
    sw_vllm,
    tls_probe,
)
from llmrack.verify.context import (
    GPU_FIELDS,
    CheckContext,
    CommandFailed,
    num,
    parse_gpu_csv,
    version_ge,
    version_tuple,
)
from llmrack.verify.result import (
    CATEGORIES,
    FAILING,
    NOT_DEPLOYED,
    REGISTRY,
    STATUSES,
    Category,
    Check,
    ChecklistLine,
    Outcome,
    Status,
    bad,
    check,
    expected_absent,
    judge,
    manual,
    not_applicable,
    ok,
    select,
)


def iter_checks() -> Iterator[Check]:
    yield from select(None)


__all__ = [
    "CATEGORIES", "Category", "Check", "CheckContext", "ChecklistLine", "CommandFailed", "FAILING", "GPU_FIELDS",
    "NOT_DEPLOYED", "Outcome", "REGISTRY", "STATUSES", "Status", "bad", "bench_result", "burnin_temperatures",
    "check", "expected_absent", "hw_burnin", "hw_cpu", "hw_data_free", "hw_gpu_count", "hw_gpu_errors",
    "hw_gpu_idle", "hw_gpu_memory", "hw_gpu_model", "hw_pcie", "hw_ram", "hw_smart", "iter_checks", "judge",
    "manual", "not_applicable", "num", "ok", "parse_gpu_csv", "perf_concurrency", "perf_multi_gpu", "perf_rag",
    "perf_single_stream", "perf_streaming", "perf_throughput", "perf_tpot", "perf_ttft", "raid_controller",
    "sec_gateway_auth", "sec_ssh_password", "select", "smart_verdict", "sw_compose",
    "sw_cuda_container", "sw_docker", "sw_driver", "sw_gateway_tls", "sw_grafana", "sw_nvidia_runtime", "sw_os",
    "sw_prometheus", "sw_time", "sw_vector_store", "sw_vllm", "tcp_open", "tls_probe", "version_ge", "version_tuple",
]
