"""The Nginx gateway of the compose stack: configuration, API keys, TLS; checked before it goes live.

Files are staged in ``<stack>/gateway.new/``; when the live directory differs from what the settings
render, ``nginx -t`` runs inside the gateway image on the staged files (with the live TLS files), the staged
files replace the live ones and a running gateway is reloaded (``nginx -s reload``, no restart); the reload is
owed on the host until it ran (``llmrack.ops.FollowUp``), so an interrupted run is finished by the next. The TLS
certificate is the user's (uploaded) or one the project's CA on the admin machine issued (``llmrack.tls``),
uploaded when the host has none: a certificate already on the host is never replaced.
"""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import File
from pyinfra.operations import files, server

from llmrack.ops import FollowUp, SetFile, install_set
from llmrack.settings.stack import StackSettings
from llmrack.stack import compose as c
from llmrack.stack import nginx as n
from llmrack.stack.secrets import StackSecrets

# file name -> mode (nginx's master process reads them as root; the key map and backend key stay private)
MODES = {"nginx.conf": "644", "api_keys.map": "640", "backend_auth.conf": "640"}


def check_command(stack: StackSettings, staging: str, tls: str) -> str:
    """``nginx -t`` on the staged configuration inside the gateway image (no network needed by nginx)."""
    image = shlex.quote(c.image_name(stack, stack.gateway.image))
    return (
        f"docker run --rm --pull never --network host -v {shlex.quote(staging)}:{c.GATEWAY_CONF_DIR}:ro "
        f"-v {shlex.quote(tls)}:{c.GATEWAY_TLS_DIR}:ro --entrypoint nginx {image} "
        f"-t -q -c {c.GATEWAY_CONF_DIR}/nginx.conf"
    )


@deploy("Gateway")
def gateway(stack: StackSettings, *, context: n.GatewayContext, secrets: StackSecrets,
            issued: tuple[str, str] | None = None) -> None:
    """Write, check and activate the gateway's configuration.

    ``issued``: (certificate, key) PEM to install in self-signed mode when the host has no certificate yet."""
    paths = c.StackPaths.of(stack)
    staging, live, tls = paths.gateway_staging_dir, paths.gateway_dir, paths.tls_dir
    for d, mode in ((staging, "750"), (live, "750"), (tls, "750")):
        files.directory(name=f"Create {d}", path=d, mode=mode)

    # ---- TLS (a change of these files or of the configuration owes the running gateway a reload)
    reload = FollowUp("gateway-reload", "the gateway's reload")
    t = stack.gateway.tls
    if t.mode == "provided":
        reload.put_file(f"Upload the TLS certificate {t.cert_file}", t.cert_file, f"{tls}/server.crt", mode="644")
        reload.put_file("Upload the TLS private key", t.key_file, f"{tls}/server.key", mode="600")
    elif issued is not None and (host.get_fact(File, path=f"{tls}/server.crt") is None
                                 or host.get_fact(File, path=f"{tls}/server.key") is None):
        reload.put("Install the gateway's TLS private key (issued by the project's CA)", issued[1],
                   f"{tls}/server.key", mode="600")
        reload.put("Install the gateway's TLS certificate (issued by the project's CA)", issued[0],
                   f"{tls}/server.crt", mode="644")

    # ---- configuration: stage, check, make live, reload
    desired = n.gateway_files(context, secrets.api_keys, secrets.backend_api_key)
    install_set("Check the gateway configuration with nginx -t and make it live",
                {name: SetFile(text, MODES[name]) for name, text in desired.items()}, staging=staging, live=live,
                check=lambda stale: check_command(stack, staging, tls), follow_up=reload)
    d, project = shlex.quote(paths.directory), shlex.quote(stack.project_name)
    reload.run(server.shell, name="Reload the running gateway (nginx -s reload)", commands=[
        f"cd {d} && if docker compose --project-name {project} ps --status running -q gateway "
        f"2>/dev/null | grep -q .; then docker compose --project-name {project} exec -T gateway "
        f"nginx -s reload; fi"])
