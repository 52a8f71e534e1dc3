"""The stages of a host, in the one order they run: ``deploys/full_stack.py`` runs them all, the smaller deploy
files run a cut of the same list (``run(cut(first, last))``), never a copy of it.

    preflight -> base -> nvidia_driver -> reboot -> cuda -> container_toolkit -> docker -> gpu_check
    -> hardening -> stack -> backup -> monitoring

The driver and reboot stages act where ``nvidia.enabled``; CUDA, the toolkit and the GPU check only on GPU
tiers (``nvidia.enabled`` and ``hardware.gpu.count`` > 0). The nvidia runtime is registered in daemon.json
only once its binary is on the host (installed by the toolkit stage of this run, or already there). With
``base.apt.offline`` every package comes from the bundle's local APT repository, uploaded before base.
A stage that stops a host (preflight,
a driver that cannot be installed) ends that host's list: nothing after it is planned, and the other hosts
go on. This is a module of the deploy files, not one of them: pyinfra never runs it on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyinfra import host, logger
from pyinfra.facts.deb import DebPackages
from pyinfra.facts.files import File
from pyinfra.facts.server import LinuxDistribution, Which

from llmrack import backup as bk
from llmrack import secrets as sec
from llmrack import tls as gateway_tls
from llmrack.bundle import MANIFEST, read_manifest, tier_images
from llmrack.bundle_apt import offline_problems, tier_apt_packages
from llmrack.cluster import check_roles
from llmrack.config import HostSpec, Inventory, find_project_dir
from llmrack.deploy_input import deploy_specs, exit_on_bad_input, inventory_path_from_argv
from llmrack.errors import LlmrackError
from llmrack.exposure import service_openings
from llmrack.ops import FollowUp
from llmrack.packages import debian_driver_packages
from llmrack.ssh_latency import no_delay
from llmrack.stack.compose import StackPaths
from llmrack.stack.facts import HostSecretFiles
from llmrack.stack.hostplan import bundle_images, host_stack, resolve_path
from llmrack.stack.layout import GATEWAY_LOG_TAG
from roles.backup import backup
from roles.base import base, distribution_codename
from roles.container_toolkit import container_toolkit, docker_gpu_check
from roles.cuda import cuda
from roles.docker_engine import docker_engine
from roles.gateway import gateway
from roles.hardening import hardening
from roles.host_baseline import host_baseline
from roles.host_security import host_security
from roles.llm_stack import activate_stack, llm_stack
from roles.monitoring import monitoring
from roles.nvidia_driver import driver_reboot, gather_driver_facts, nvidia_driver, plan_driver, reboot_condition
from roles.offline_bundle import bundle_apt_repo, offline_bundle
from roles.preflight import preflight_host
from roles.stop import stop_host


@dataclass
class Run:
    """What one host's stages share: its spec, the inventory's, and what earlier stages decided."""

    spec: HostSpec
    specs: list[HostSpec]
    project: Path
    stopped: bool = False
    reboot_when: Callable[[], bool] | None = None  # set by the driver stage (or a test forcing a reboot)
    reboot_certain: bool = False  # known while planning (not only after a driver operation changed)
    check_gpu_after_reboot: bool = True
    toolkit_ops: list[Any] | None = None  # set by the toolkit stage
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def profile(self):  # noqa: ANN201 - TierProfile
        return self.spec.profile

    @property
    def gpu_tier(self) -> bool:
        return self.profile.nvidia.enabled and self.profile.hardware.gpu.count > 0

    @classmethod
    def for_this_host(cls) -> Run:
        spec, specs = deploy_specs()
        with exit_on_bad_input():
            check_roles(specs, source=_inventory_source())
        return cls(spec=spec, specs=specs, project=find_project_dir(Path.cwd()))


def _inventory_source() -> str:
    return inventory_path_from_argv()


def preflight(run: Run) -> None:
    if preflight_host(run.spec):
        run.stopped = True
    elif run.profile.base.apt.offline:
        offline_preflight(run)


def _bundle_manifest(run: Run) -> tuple[Path, dict]:
    bundle = resolve_path(run.project, run.profile.stack.bundle.path)
    if not (bundle / MANIFEST).is_file():
        raise LlmrackError(f"base.apt.offline is on but {bundle} holds no offline bundle: build one with "
                           f"`llmrack bundle build --tier {run.spec.tier} --out {bundle}` (or set "
                           "stack.bundle.path)", source=run.spec.name, field="base.apt.offline")
    return bundle, read_manifest(bundle)


def offline_preflight(run: Run) -> None:
    """``base.apt.offline``: stop this host before any change when a package its tier needs is neither
    installed nor in the bundle's repository for its release, naming the package."""
    with exit_on_bad_input():
        _bundle, manifest = _bundle_manifest(run)
    run.extra["codename"] = codename = distribution_codename(host.get_fact(LinuxDistribution))
    needed = set(tier_apt_packages(run.profile))
    if run.profile.nvidia.enabled:  # the driver stage's own plan: the running kernel's headers, Ubuntu's names
        plan = plan_driver(gather_driver_facts(), run.profile.nvidia)
        needed = (needed - set(debian_driver_packages(run.profile.nvidia))) | set(
            plan.packages if plan.action == "install" else [])
    problems = offline_problems(needed, manifest.get("apt"),
                                host.get_fact(DebPackages) or {}, codename)
    for problem in problems:
        logger.error(f"{host.print_prefix}offline: {problem}")
    if problems:
        names = [p.split()[1] if p.startswith("package ") else p for p in problems]
        stop_host(f"offline (base.apt.offline): missing from the host and the bundle: {', '.join(names)}",
                  name=f"Stop this host: {len(problems)} package(s) missing from the offline bundle")
        run.stopped = True


def base_system(run: Run) -> None:
    spec = run.spec
    repo, uploads = None, []
    if spec.profile.base.apt.offline:
        with exit_on_bad_input():
            bundle, _manifest = _bundle_manifest(run)
        codename = run.extra.get("codename") or distribution_codename(host.get_fact(LinuxDistribution))
        repo, uploads = bundle_apt_repo(bundle, remote_dir=spec.profile.stack.bundle.remote_dir, codename=codename)
    base(spec.profile.base, hostname=host.name, hosts={s.name: s.address for s in run.specs},
         data_disk=spec.data_disk, offline_repo=repo, offline_changed=uploads)


def driver(run: Run) -> None:
    if not run.profile.nvidia.enabled:  # on: the driver installs and is held even before a GPU is fitted
        logger.info(f"{host.print_prefix}tier {run.spec.tier!r} turns the NVIDIA stack off: nothing to do")
        return
    plan = nvidia_driver(run.profile.nvidia, apt_mirror=run.profile.base.apt.mirror,
                         offline=run.profile.base.apt.offline)
    if plan.action == "stop":
        run.stopped = True
        return
    run.reboot_when = reboot_condition(plan)
    run.reboot_certain = plan.reboot_pending


def reboot(run: Run) -> None:
    if run.reboot_when is not None:
        driver_reboot(run.profile.nvidia, run.reboot_when, check_gpu=run.check_gpu_after_reboot)
        # never, with a reboot already known to be needed: the stop runs, nothing after it is planned
        run.stopped = run.profile.nvidia.reboot == "never" and run.reboot_certain


def cuda_toolkit(run: Run) -> None:
    if run.gpu_tier:
        cuda(run.profile.nvidia.cuda, offline=run.profile.base.apt.offline)


def toolkit(run: Run) -> None:
    if run.gpu_tier:
        run.toolkit_ops = container_toolkit(run.profile.nvidia.container_toolkit,
                                            offline=run.profile.base.apt.offline)


def docker(run: Run) -> None:
    profile = run.profile
    runtime = run.gpu_tier and (run.toolkit_ops is not None
                                or bool(host.get_fact(Which, command="nvidia-container-runtime")))
    docker_engine(profile.docker, nvidia_runtime=runtime, compose_deb=profile.docker.compose_deb or None)


def gpu_check(run: Run) -> None:
    if run.gpu_tier:
        docker_gpu_check(run.profile.nvidia.container_toolkit, after=run.toolkit_ops)


def host_hardening(run: Run) -> None:
    if run.profile.hardening.enabled:
        with exit_on_bad_input():
            openings = service_openings(run.spec, run.specs)
        hardening(run.profile.hardening, openings=openings)
        gateway = run.spec.has_role("gateway")
        host_security(run.profile.hardening, gateway_log_tag=GATEWAY_LOG_TAG if gateway else None,
                      textfile_dir=run.profile.backup.textfile_dir)
        host_baseline(run.profile.hardening)


def _stack_refs(profile) -> set[str]:  # noqa: ANN001 - TierProfile
    st = profile.stack
    return {st.vllm.image, st.gateway.image, st.vector_store.qdrant.image, st.vector_store.pgvector.image,
            st.embeddings.image}


def host_images(profile, stack_images: list[str]) -> list[str]:  # noqa: ANN001 - TierProfile
    """Images a host loads from the bundle: the ones its own stack project runs, and the monitoring ones
    (a gateway needs no vLLM image, an inference node no vector store, a monitoring host no stack image)."""
    return sorted({*stack_images, *(r for r in tier_images(profile) if r not in _stack_refs(profile))})


def monitoring_images(run: Run) -> None:
    """A host without the stack (a monitoring host) still loads the monitoring images from the bundle."""
    st = run.profile.stack
    if not run.profile.monitoring.enabled or st.image_source != "bundle":
        return
    with exit_on_bad_input():
        bundle = resolve_path(run.project, st.bundle.path)
        images = host_images(run.profile, [])
    offline_bundle(bundle, remote_dir=st.bundle.remote_dir, models_dir=st.models_dir, models=[], images=images)


def stack(run: Run) -> None:
    spec = run.spec
    if not (spec.has_role("inference") or spec.has_role("gateway")):
        monitoring_images(run)
        return
    # the host's secrets win: a running service (Postgres' password) or a client (its key) depends on them
    secrets_dir = StackPaths.of(spec.profile.stack).secrets_dir
    on_host = host.get_fact(HostSecretFiles, directory=secrets_dir, names=" ".join(sec.HOST_FILES))
    with exit_on_bad_input():
        for line in sec.adopt_host_secrets(run.project, spec.name,
                                           sec.parse_host_secrets(on_host, where=f"{spec.name}:{secrets_dir}")):
            logger.warning(f"{spec.name}: {line}")
        hs = host_stack(spec, run.specs, run.project)
    st = hs.stack
    reload = FollowUp("stack-reload", "the stack's reload (up --wait)")
    if hs.bundle_dir is not None:
        reload.watch(*offline_bundle(
            hs.bundle_dir, remote_dir=st.bundle.remote_dir, models_dir=st.models_dir,
            models=[m.dir_name for m in st.models if m.source == "bundle"] if hs.inference else [],
            images=host_images(spec.profile, bundle_images(hs)) if st.image_source == "bundle" else [],
        ))
    llm_stack(st, compose=hs.compose, secrets=hs.secrets, inference=hs.inference, gateway=hs.gateway,
              local_model_paths=hs.local_model_paths, follow_up=reload)
    if hs.gateway and hs.context is not None:
        gateway(st, context=hs.context, secrets=hs.secrets, issued=_gateway_certificate(run, st))
    activate_stack(reload, st)


def _gateway_certificate(run: Run, st: Any) -> tuple[str, str] | None:
    """The certificate and key to install on a gateway that has none (self-signed mode); the host's own
    certificate wins, and this machine keeps what clients check it against."""
    t = st.gateway.tls
    if t.mode != "self-signed":
        return None
    tls_dir = StackPaths.of(st).tls_dir
    crt = host.get_fact(HostSecretFiles, directory=tls_dir, names="server.crt").get("server.crt")
    present = crt if host.get_fact(File, path=f"{tls_dir}/server.key") else None
    with exit_on_bad_input():
        issued, line = gateway_tls.adopt_gateway_tls(run.project, run.spec.name, on_host=present,
                                                     common_name=t.common_name, address=run.spec.address,
                                                     days=t.days)
    if line:
        logger.info(f"{run.spec.name}: {line}")
    return issued


def host_backup(run: Run) -> None:
    """restic, the backup/restore scripts and the timer where the stack keeps data, configs or secrets."""
    spec, profile = run.spec, run.profile
    if not (profile.backup.enabled and (spec.has_role("gateway") or spec.has_role("inference"))):
        return
    on_host = host.get_fact(HostSecretFiles, directory=bk.CONFIG_DIR, names="restic-password")
    with exit_on_bad_input():
        repo = profile.backup.repository
        if not repo.startswith("sftp:") and host.get_fact(File, path=repo):
            raise LlmrackError(f"the repository {repo} is a file on {spec.name}, not a directory",
                               field="backup.repository")
        for line in sec.adopt_host_secrets(run.project, spec.name,
                                           sec.parse_host_secrets(on_host, where=f"{spec.name}:{bk.CONFIG_DIR}")):
            logger.warning(f"{spec.name}: {line}")
        password = sec.restic_password(run.project, spec.name)
    backup(profile.backup, stack=profile.stack, monitoring=profile.monitoring, host_name=spec.name,
           password=password)


def host_monitoring(run: Run) -> None:
    if not run.profile.monitoring.enabled:
        return
    with exit_on_bad_input():
        secrets = sec.load_or_create_monitoring_secrets(sec.monitoring_secrets_path(run.project))
        spec, qdrant_key = run.spec, None
        if spec.has_role("gateway") and spec.profile.stack.vector_store.kind == "qdrant":  # its /metrics needs it
            clients = spec.profile.stack.gateway.api_clients
            qdrant_key = sec.stack_secrets(run.project, spec.name, clients).qdrant_api_key
    monitoring(run.profile.monitoring, inventory=Inventory(path="inventory", project_dir=str(run.project),
                                                           hosts=run.specs),
               host=run.spec, secrets=secrets, qdrant_api_key=qdrant_key)


Stage = Callable[[Run], None]
FULL_STACK: tuple[tuple[str, Stage], ...] = (
    ("preflight", preflight),
    ("base", base_system),
    ("nvidia_driver", driver),
    ("reboot", reboot),
    ("cuda", cuda_toolkit),
    ("container_toolkit", toolkit),
    ("docker", docker),
    ("gpu_check", gpu_check),
    ("hardening", host_hardening),
    ("stack", stack),
    ("backup", host_backup),
    ("monitoring", host_monitoring),
)
NAMES = [name for name, _ in FULL_STACK]


def cut(first: str, last: str | None = None, *, skip: Sequence[str] = ()) -> list[tuple[str, Stage]]:
    """The stages from ``first`` to ``last`` (inclusive) of the full stack, in its order, less ``skip``."""
    i, j = NAMES.index(first), NAMES.index(last or first)
    return [(n, s) for n, s in FULL_STACK[i:j + 1] if n not in skip]


def run(stages: Sequence[tuple[str, Stage]], context: Run | None = None) -> Run:
    """Plan ``stages`` for the current host, in order, until one stops it."""
    no_delay(host)  # before the first fact: each command then costs a round trip, not a delayed ACK
    ctx = context or Run.for_this_host()
    for _name, stage in stages:
        if ctx.stopped:
            break
        stage(ctx)
    return ctx
