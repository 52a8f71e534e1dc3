"""The serving stack as a docker compose project owned by the systemd unit ``llmrack-stack.service``.

install: directories, model weights (Hugging Face / ModelScope in a one-shot container guarded by a
marker, local weights synced from the admin machine; bundle weights come from ``roles.offline_bundle``),
secrets (mode 0600 in a 0700 directory).
configure: ``compose.yaml`` dumped from the compose model, checked on the host with
``docker compose config -q`` before it replaces the live file; the systemd unit.
activate (:func:`activate_stack`): the unit is started once (``up --wait``: healthchecks gate success);
later runs reload it when the compose file, an env/secret file or the models changed in this run, or when a
running service does not match the live compose file (compose's config hash: the state an interrupted run
leaves behind) — a reload runs ``up --wait`` again, which recreates only the services whose configuration
changed.
"""

from __future__ import annotations

import shlex
from pathlib import PurePosixPath

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import File
from pyinfra.operations import files, server, systemd

from llmrack.facts.stack import ComposeDrift
from llmrack.ops import FollowUp, install_checked, put_text, render
from llmrack.settings.stack import ModelSettings, StackSettings
from llmrack.stack import compose as c
from llmrack.stack import secrets as sec
from llmrack.stack import services

UNIT = "llmrack-stack.service"
UNIT_PATH = f"/etc/systemd/system/{UNIT}"
MODEL_MARKER = ".llmrack-complete"
DOCKER = "/usr/bin/docker"


def render_unit(stack: StackSettings) -> str:
    return render(f"llm_stack{UNIT_PATH}.j2", project=stack.project_name, directory=stack.directory,
                  timeout_s=stack.start_timeout_s, docker=DOCKER)


def download_command(model: ModelSettings, stack: StackSettings) -> str:
    """The one-shot container that fetches a model's weights into the models directory (then the marker)."""
    dest = f"{c.CONTAINER_MODELS_DIR}/{model.dir_name}"
    marker = shlex.quote(str(PurePosixPath(stack.models_dir, model.dir_name, MODEL_MARKER)))
    image = shlex.quote(c.image_name(stack, stack.vllm.image))
    mount = f"-v {shlex.quote(stack.models_dir)}:{c.CONTAINER_MODELS_DIR}"
    rev = ["--revision", model.revision] if model.revision else []
    if model.source == "huggingface":
        env = f"-e HF_ENDPOINT={shlex.quote(stack.vllm.hf_endpoint)} " if stack.vllm.hf_endpoint else ""
        args = " ".join(shlex.quote(a) for a in [model.name, "--local-dir", dest, *rev])
        script = (f'if command -v hf >/dev/null; then exec hf download {args}; '
                  f'else exec huggingface-cli download {args}; fi')
        run = (f"docker run --rm --pull never {env}-e HF_HUB_DISABLE_TELEMETRY=1 {mount} "
               f"--entrypoint sh {image} -c {shlex.quote(script)}")
    elif model.source == "modelscope":
        index = stack.vllm.modelscope_pip_index
        args = " ".join(shlex.quote(a) for a in [model.name, "--local_dir", dest, *rev])
        script = (f"pip install -q -i {shlex.quote(index)} modelscope && "
                  f"exec modelscope download --model {args}")
        run = f"docker run --rm --pull never {mount} --entrypoint sh {image} -c {shlex.quote(script)}"
    else:
        raise ValueError(f"{model.source} models are not downloaded on the host")
    return f"{run} && touch {marker}"


def _provision_models(stack: StackSettings, local_paths: dict[str, str]) -> list:
    ops = []
    for m in stack.models:
        dest = str(PurePosixPath(stack.models_dir, m.dir_name))
        if m.source in ("huggingface", "modelscope"):
            if host.get_fact(File, path=f"{dest}/{MODEL_MARKER}") is None:
                ops.append(server.shell(name=f"Download model {m.name} from {m.source} into {dest}",
                                        commands=[download_command(m, stack)]))
        elif m.source == "local":
            src = local_paths.get(m.name) or m.path
            ops.append(files.sync(name=f"Sync model {m.name} from {src} to {dest}", src=src, dest=dest,
                                  mode="644", dir_mode="755", delete=True))
    return ops


@deploy("LLM stack: files")
def llm_stack(
    stack: StackSettings, *, compose: c.ComposeFile, secrets: sec.StackSecrets, inference: bool = True,
    gateway: bool = True, local_model_paths: dict[str, str] | None = None, follow_up: FollowUp,
) -> None:
    """Write everything the compose project reads; a change owes ``follow_up`` (the stack's reload)."""
    paths = c.StackPaths.of(stack)
    files.directory(name="Create /opt/llmrack", path=str(PurePosixPath(stack.directory).parent), mode="755")
    files.directory(name=f"Create {paths.directory}", path=paths.directory, mode="755")
    files.directory(name=f"Create {paths.secrets_dir} (owner only)", path=paths.secrets_dir, mode="700")
    if inference:
        files.directory(name=f"Create {stack.models_dir}", path=stack.models_dir, mode="755")
    if inference:
        follow_up.watch(*_provision_models(stack, local_model_paths or {}))

    # ---- secrets (0600 in a 0700 directory)
    wanted = c.secret_files(stack, inference=inference, gateway=gateway)
    texts = {
        "vllm.env": sec.vllm_env(secrets),
        "qdrant.env": sec.qdrant_env(secrets),
        "postgres_password": secrets.postgres_password + "\n",
    }
    for name in wanted:
        follow_up.put(f"Write secrets/{name}", texts[name], f"{paths.secrets_dir}/{name}", mode="600")
    if gateway:
        put_text("Write secrets/api_keys.json", sec.api_keys_json(secrets), f"{paths.secrets_dir}/api_keys.json",
                 mode="600")

    # ---- vector store data and configuration
    if gateway and stack.vector_store.kind == "qdrant":
        files.directory(name=f"Create {paths.p('qdrant')}", path=paths.p("qdrant"), mode="755")
        for sub in ("storage", "snapshots"):
            d = f"{stack.data_dir}/qdrant/{sub}"
            files.directory(name=f"Create {d}", path=d, mode="750")
        follow_up.put("Write qdrant/config.yaml", services.dump_yaml(services.qdrant_config(stack), "Qdrant"),
                      paths.qdrant_config, mode="644")
    if gateway and stack.vector_store.kind == "pgvector":
        files.directory(name=f"Create {stack.data_dir}", path=stack.data_dir, mode="755")

    # ---- compose.yaml: staged, checked by compose itself, then made live
    install_checked(
        f"Check {paths.compose_file} with docker compose config, then make it live", compose.to_yaml(),
        paths.compose_file,
        f"cd {shlex.quote(paths.directory)} && docker compose --project-name {shlex.quote(stack.project_name)} "
        "-f {} config -q", follow_up=follow_up,
    )

    unit = put_text(f"Write {UNIT_PATH}", render_unit(stack), UNIT_PATH, mode="644")
    systemd.daemon_reload(name="Reload systemd units after the stack unit changed", _if=unit.did_change)


@deploy("LLM stack: activate")
def activate_stack(follow_up: FollowUp, stack: StackSettings) -> None:
    """Start the stack once; afterwards reload it (``up --wait``) when an input changed (in this run, or in an
    earlier one that stopped before its reload: ``follow_up``) or a running service does not match the live
    compose file (checked from the running containers)."""
    systemd.service(name=f"Start and enable {UNIT}", service=UNIT, running=True, enabled=True)
    drift = host.get_fact(ComposeDrift, directory=stack.directory, project=stack.project_name)
    if drift:
        systemd.service(name=f"Reload {UNIT}: running services differ from compose.yaml ({', '.join(drift)})",
                        service=UNIT, reloaded=True)
    follow_up.run(systemd.service, name=f"Reload {UNIT}: recreate the services whose inputs changed", service=UNIT,
                  reloaded=True, unless=lambda: bool(drift))
