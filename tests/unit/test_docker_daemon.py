"""daemon.json: llmrack's keys set, everything else kept, sorted output, NVIDIA runtime."""

from __future__ import annotations

import json

import pytest

from llmrack.docker_daemon import DaemonConfig, dump_daemon_config, merge_daemon_config, parse_daemon_config
from llmrack.facts.docker import DockerDaemonJson, DockerdVersion, dockerd_supports_validate
from llmrack.settings.docker import DockerSettings


def managed(**kw) -> DaemonConfig:
    nvidia = kw.pop("nvidia_runtime", False)
    return DaemonConfig.from_settings(DockerSettings(**kw), nvidia_runtime=nvidia)


def test_fresh_host_gets_exactly_the_managed_keys() -> None:
    out = merge_daemon_config(None, managed(registry_mirrors=["https://mirror.example"], log_max_size="50m"))
    assert out == {
        "registry-mirrors": ["https://mirror.example"],
        "log-driver": "json-file",
        "log-opts": {"max-size": "50m", "max-file": "3"},
        "live-restore": True,
    }


def test_unknown_keys_are_kept_and_managed_ones_overwritten() -> None:
    current = {
        "max-concurrent-uploads": 3,
        "log-opts": {"max-size": "1k", "compress": "true", "syslog-address": "udp://x:514"},
        "log-driver": "syslog",
        "live-restore": False,
        "insecure-registries": ["10.0.0.5:5000"],
    }
    out = merge_daemon_config(current, managed())
    assert out["max-concurrent-uploads"] == 3
    assert out["insecure-registries"] == ["10.0.0.5:5000"]
    assert out["log-driver"] == "json-file"
    # json-file options kept, the syslog driver's option dropped (dockerd would refuse it)
    assert out["log-opts"] == {"max-size": "100m", "max-file": "3", "compress": "true"}
    assert out["live-restore"] is True
    assert current["log-opts"]["max-size"] == "1k", "the input must not be modified"


def test_output_is_sorted_and_stable() -> None:
    out = merge_daemon_config({"zeta": 1, "alpha": {"b": 1, "a": 2}}, managed(data_root="/data/docker"))
    text = dump_daemon_config(out)
    keys = list(json.loads(text))
    assert keys == sorted(keys)
    assert text.index('"a"') < text.index('"b"')
    assert text.endswith("}\n")
    # merging the written file again changes nothing
    again = merge_daemon_config(parse_daemon_config(text), managed(data_root="/data/docker"))
    assert dump_daemon_config(again) == text
    assert again["data-root"] == "/data/docker"


def test_empty_data_root_leaves_an_existing_one() -> None:
    assert merge_daemon_config({"data-root": "/srv/docker"}, managed())["data-root"] == "/srv/docker"


def test_registry_mirrors_removed_when_the_setting_is_emptied() -> None:
    assert "registry-mirrors" not in merge_daemon_config({"registry-mirrors": ["https://old"]}, managed())


def test_nvidia_runtime_added_next_to_other_runtimes_with_cgroupfs_driver() -> None:
    current = {"runtimes": {"runsc": {"path": "/usr/bin/runsc"}},
               "exec-opts": ["native.cgroupdriver=systemd", "native.umask=normal"]}
    out = merge_daemon_config(current, managed(nvidia_runtime=True))
    assert out["runtimes"] == {
        "runsc": {"path": "/usr/bin/runsc"},
        "nvidia": {"path": "nvidia-container-runtime", "args": []},
    }
    assert out["exec-opts"] == ["native.umask=normal", "native.cgroupdriver=cgroupfs"]


def test_without_nvidia_runtime_its_keys_are_left_alone() -> None:
    with_gpu = merge_daemon_config(None, managed(nvidia_runtime=True))
    without = merge_daemon_config(with_gpu, managed(nvidia_runtime=False))
    assert without == with_gpu  # no flip-flop between two calls of the role
    assert "runtimes" not in merge_daemon_config(None, managed())


def test_invalid_json_is_reported_not_overwritten() -> None:
    with pytest.raises(ValueError):
        parse_daemon_config("{not json")
    fact = DockerDaemonJson()
    assert fact.process(["present", "{not json"])["error"]
    assert fact.process(["absent"]) == {"exists": False, "config": None, "error": None}
    assert fact.process(["present", '{"a":', " 1}"])["config"] == {"a": 1}


def test_dockerd_version_fact_and_validate_support() -> None:
    version = DockerdVersion().process(["Docker version 20.10.24+dfsg1, build 297e128"])
    assert version == "20.10.24+dfsg1"
    assert not dockerd_supports_validate(version)
    assert dockerd_supports_validate("27.5.1")
    assert not dockerd_supports_validate(None)
