"""Monitoring images built from Debian bookworm packages, on top of ``llmrack/bookworm:base``.

No registry is needed: the base is a debootstrap rootfs (built by :mod:`llmrack.images`), packages come from
the Debian mirror configured on the build machine. Each image runs as a fixed uid (:data:`MONITORING_UID`) so
the role can own data directories and secrets files for it. Builds are cached by a content-hash label.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from llmrack import images as stack_images
from llmrack.errors import LlmrackError
from llmrack.settings.monitoring import MonitoringImages

Log = Callable[[str], object]
MONITORING_UID = 10090
RECIPE = "1"  # bump when the Dockerfile scaffolding below changes

_HEAD = f"""\
# managed by llmrack
ARG BASE={stack_images.BASE_REF}
FROM ${{BASE}}
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# no service starts during the build; the images run as a fixed numeric uid the host can own files for
RUN printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d
"""


def _install(*packages: str) -> str:
    return (
        "RUN apt-get update \\\n"
        f" && apt-get install -y --no-install-recommends {' '.join(packages)} \\\n"
        " && apt-get clean && rm -rf /var/lib/apt/lists/* /var/log/apt /var/log/dpkg.log\n"
    )


@dataclass(frozen=True)
class MonitoringImage:
    name: str
    ref: str
    dockerfile: str
    files: tuple[tuple[str, str], ...] = ()  # (name in context, text)

    def inputs_hash(self, base_id: str) -> str:
        h = hashlib.sha256(f"{RECIPE}\0{self.ref}\0{base_id}\0{self.dockerfile}".encode())
        for name, text in self.files:
            h.update(f"\0{name}\0{text}".encode())
        return h.hexdigest()[:32]


def image_specs(refs: MonitoringImages | None = None) -> dict[str, MonitoringImage]:
    """Dockerfiles of the monitoring images, by short name (tags from the settings)."""
    refs = refs or MonitoringImages()
    relay_source = (Path(__file__).parent / "relay.py").read_text(encoding="utf-8")
    u = MONITORING_UID
    user = f"USER {u}:{u}\n"
    return {
        "prometheus": MonitoringImage("prometheus", refs.prometheus, _HEAD + _install("prometheus") + (
            f"RUN mkdir -p /prometheus /etc/prometheus/rules && chown {u}:{u} /prometheus\n"
            + user + "WORKDIR /prometheus\nEXPOSE 9090\nVOLUME /prometheus\n"
            'ENTRYPOINT ["/usr/bin/prometheus"]\n'
            'CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]\n'
        )),
        "alertmanager": MonitoringImage("alertmanager", refs.alertmanager, _HEAD + _install(
            "prometheus-alertmanager") + (
            f"RUN mkdir -p /alertmanager /etc/alertmanager && chown {u}:{u} /alertmanager\n"
            + user + "WORKDIR /alertmanager\nEXPOSE 9093\nVOLUME /alertmanager\n"
            'ENTRYPOINT ["/usr/bin/prometheus-alertmanager"]\n'
            'CMD ["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"]\n'
        )),
        "node-exporter": MonitoringImage("node-exporter", refs.node_exporter, _HEAD + _install(
            "prometheus-node-exporter") + user + 'EXPOSE 9100\nENTRYPOINT ["/usr/bin/prometheus-node-exporter"]\n'),
        "nginx-exporter": MonitoringImage("nginx-exporter", refs.nginx_exporter, _HEAD + _install(
            "prometheus-nginx-exporter") + user + 'EXPOSE 9113\nENTRYPOINT ["/usr/bin/prometheus-nginx-exporter"]\n'),
        "postgres-exporter": MonitoringImage(
            "postgres-exporter", refs.postgres_exporter, _HEAD + _install("prometheus-postgres-exporter") + user
            + 'EXPOSE 9187\nENTRYPOINT ["/usr/bin/prometheus-postgres-exporter"]\n'
        ),
        "alert-relay": MonitoringImage(
            "alert-relay", refs.relay, _HEAD + _install("python3", "ca-certificates")
            + "COPY relay.py /usr/local/lib/llmrack/relay.py\n" + user + "EXPOSE 9095\n"
            'ENTRYPOINT ["/usr/bin/python3", "/usr/local/lib/llmrack/relay.py"]\n'
            'CMD ["--config", "/run/secrets/relay.json"]\n',
            files=(("relay.py", relay_source),),
        ),
    }


def _build(spec: MonitoringImage, digest: str, log: Log) -> None:
    with tempfile.TemporaryDirectory(prefix=f"llmrack-{spec.name}-") as tmp:
        ctx = Path(tmp)
        (ctx / "Dockerfile").write_text(spec.dockerfile)
        for name, text in spec.files:
            (ctx / name).write_text(text)
        env = dict(os.environ, DOCKER_BUILDKIT="0", DOCKER_CONFIG=os.environ.get("DOCKER_CONFIG", tmp))
        stack_images._run_logged(
            ["docker", "build", "--pull=false", "--rm", "--force-rm", "--label",
             f"{stack_images.HASH_LABEL}={digest}", "-t", spec.ref, str(ctx)],
            log, f"docker-build-{spec.name}", env=env,
        )


def build_monitoring_images(
    log: Log = print, *, names: list[str] | None = None, refs: MonitoringImages | None = None
) -> dict[str, str]:
    """Build the monitoring images (default: all) unless current; short name -> image ref."""
    specs = image_specs(refs)
    wanted = names if names is not None else list(specs)
    unknown = [n for n in wanted if n not in specs]
    if unknown:
        raise LlmrackError(f"unknown monitoring image {unknown[0]!r}; known: {', '.join(specs)}", field="images")
    stack_images.build_image("base", log=log)
    base_id = stack_images.image_id(stack_images.BASE_REF) or ""
    out = {}
    for name in wanted:
        spec = specs[name]
        digest = spec.inputs_hash(base_id)
        if stack_images.image_labels(spec.ref).get(stack_images.HASH_LABEL) == digest:
            log(f"{spec.ref}: up to date")
        else:
            t0 = time.monotonic()
            log(f"{spec.ref}: building")
            _build(spec, digest, log)
            log(f"{spec.ref}: built in {time.monotonic() - t0:.1f} s")
        out[name] = spec.ref
    return out
