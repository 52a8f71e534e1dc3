"""Security options of the stack's containers: what each service may do, derived from what it needs.

Every service drops every Linux capability and gets back only those its entrypoint uses, runs with
``no-new-privileges``, under the tier's pids and memory limits, with a healthcheck, and never sees the
Docker socket. Where the service writes only to its volumes, its root filesystem is read-only and the
few scratch paths are tmpfs.

=============  =======================  ==========================================================
service        user                     capabilities kept (why)
=============  =======================  ==========================================================
vLLM           vllm (image USER, 999)   none
embeddings     embed (image USER, 999)  none
gateway        root master, www-data    NET_BIND_SERVICE (443/80), SETUID/SETGID (workers),
               workers                  CHOWN (nginx owns its temp dirs to the worker user)
postgres       root entrypoint, then    CHOWN, FOWNER, DAC_OVERRIDE (initialise and own $PGDATA),
               postgres via setpriv     SETUID/SETGID (setpriv to the postgres user)
qdrant         root (upstream image)    none (its files are root's own); root filesystem writable
=============  =======================  ==========================================================
"""

from __future__ import annotations

from dataclasses import dataclass

from llmrack.errors import LlmrackError
from llmrack.settings.containers import ServiceLimits
from llmrack.settings.stack import StackSettings
from llmrack.stack.compose_file import Service

NO_NEW_PRIVILEGES = "no-new-privileges:true"
DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock")
SCRATCH = "rw,nosuid,nodev,mode=1777"


@dataclass(frozen=True)
class Profile:
    cap_add: tuple[str, ...] = ()
    read_only: bool = True
    tmpfs: tuple[str, ...] = ()


PROFILES: dict[str, Profile] = {
    "inference": Profile(tmpfs=(f"/tmp:{SCRATCH},exec",)),  # torch/triton build kernels in temp dirs on GPUs
    "embeddings": Profile(tmpfs=(f"/tmp:{SCRATCH}", "/var/cache/embed:rw,nosuid,nodev,uid=999,gid=999,mode=0700")),
    "gateway": Profile(cap_add=("CHOWN", "NET_BIND_SERVICE", "SETGID", "SETUID"),
                       tmpfs=(f"/run:{SCRATCH}", f"/var/lib/nginx:{SCRATCH}", f"/tmp:{SCRATCH}")),
    "postgres": Profile(cap_add=("CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"),
                        tmpfs=(f"/run/postgresql:{SCRATCH}", f"/tmp:{SCRATCH}")),
    "qdrant": Profile(read_only=False),
}


def profile_key(name: str, service: Service) -> str:
    role = (service.labels or {}).get("org.llmrack.role", "")
    if role == "vector-store":
        return "postgres" if name == "postgres" else "qdrant"
    if role not in PROFILES:
        raise LlmrackError(f"service {name!r} has no security profile (role {role!r})", field="stack")
    return role


def limits_of(key: str, stack: StackSettings) -> ServiceLimits:
    lim = stack.limits
    return {"inference": lim.vllm, "embeddings": lim.embeddings, "gateway": lim.gateway}.get(key, lim.vector_store)


def secure(name: str, service: Service, stack: StackSettings) -> Service:
    """``service`` with its capabilities, privileges, filesystem and limits locked down."""
    if service.healthcheck is None:
        raise LlmrackError(f"service {name!r} has no healthcheck", field="stack")
    for volume in service.volumes or []:
        if volume.split(":", 1)[0] in DOCKER_SOCKETS:
            raise LlmrackError(f"service {name!r} must not mount the Docker socket", field="stack")
    key = profile_key(name, service)
    prof, lim = PROFILES[key], limits_of(key, stack)
    opts = sorted({*(service.security_opt or []), NO_NEW_PRIVILEGES})
    return service.model_copy(update={
        "cap_drop": ["ALL"],
        "cap_add": sorted(prof.cap_add) or None,
        "security_opt": opts,
        "read_only": prof.read_only or None,
        "tmpfs": list(prof.tmpfs) or None,
        "pids_limit": lim.pids,
        "mem_limit": lim.memory or None,
    })


def secure_services(services: dict[str, Service], stack: StackSettings) -> dict[str, Service]:
    return {name: secure(name, svc, stack) for name, svc in services.items()}
