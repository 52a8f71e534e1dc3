"""managed by llmrack: ask Linux for the AMX tile state when any Python of this environment starts.

vLLM's CPU attention kernels use AMX instructions on CPUs that have them (Sapphire Rapids and later), and Linux
lets a process run them only once it asked with arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA). vLLM's
worker processes never ask, so on such a CPU the first request kills the worker with SIGILL. Loaded from
llmrack_amx.pth; on a CPU without AMX the call fails and nothing changes.
"""

import contextlib
import ctypes
import platform

SYS_ARCH_PRCTL = 158
ARCH_REQ_XCOMP_PERM = 0x1023
XFEATURE_XTILEDATA = 18

if platform.machine() == "x86_64":
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).syscall(SYS_ARCH_PRCTL, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)
