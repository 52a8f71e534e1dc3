"""Offline bundle: manifest contents, verification, incremental rebuilds (no Docker needed)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from llmrack.bundle import FORMAT_VERSION, build_bundle, read_manifest, verify_bundle
from llmrack.bundle import build as bundle_mod
from llmrack.errors import LlmrackError


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    d = tmp_path / "src-model"
    (d / "sub").mkdir(parents=True)
    (d / "config.json").write_text('{"a": 1}')
    (d / "model.safetensors").write_bytes(os.urandom(4096))
    (d / "sub" / "extra.txt").write_text("x")
    return d


@pytest.fixture
def deb(tmp_path: Path) -> Path:
    p = tmp_path / "docker-compose_2.26.1-4_amd64.deb"
    p.write_bytes(b"!<arch>\nfake deb payload")
    return p


class FakeDocker:
    """Stands in for the engine: image ids per ref, and a count of ``docker save`` calls."""

    def __init__(self) -> None:
        self.ids = {"llmrack/vllm-cpu:0.32.0-2": "sha256:" + "1" * 64}
        self.saves: list[str] = []

    def image(self, ref: str):
        iid = self.ids.get(ref)
        return (iid, [ref]) if iid else None

    def save(self, ref: str, dest: Path) -> dict:
        self.saves.append(ref)
        tmp = dest.with_name(dest.name + ".partial")  # like docker save: a new file, and its entry
        data = f"tar of {ref} {self.ids[ref]}".encode()
        tmp.write_bytes(data)
        tmp.replace(dest)
        return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


@pytest.fixture
def fake_docker(monkeypatch) -> FakeDocker:
    fake = FakeDocker()
    monkeypatch.setattr(bundle_mod, "_docker_image", fake.image)
    monkeypatch.setattr(bundle_mod, "_docker_save", fake.save)
    return fake


def _build(out: Path, model_dir: Path, deb: Path, images=("vllm-cpu",)) -> dict:
    return build_bundle(
        out, images=list(images), model_dirs={"tiny-chat": model_dir}, debs=[deb], log=lambda m: None
    )


def test_manifest_lists_every_file_with_sha256_and_size(tmp_path, model_dir, deb, fake_docker):
    out = tmp_path / "bundle"
    manifest = _build(out, model_dir, deb)

    assert manifest["format"] == FORMAT_VERSION
    assert set(manifest["files"]) == {
        "images/vllm-cpu.tar",
        "models/tiny-chat/config.json",
        "models/tiny-chat/model.safetensors",
        "models/tiny-chat/sub/extra.txt",
        "debs/docker-compose_2.26.1-4_amd64.deb",
    }
    for rel, entry in manifest["files"].items():
        data = (out / rel).read_bytes()
        assert entry == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    assert manifest["images"]["vllm-cpu"] == {
        "file": "images/vllm-cpu.tar",
        "id": fake_docker.ids["llmrack/vllm-cpu:0.32.0-2"],
        "ref": "llmrack/vllm-cpu:0.32.0-2",
        "tags": ["llmrack/vllm-cpu:0.32.0-2"],
    }
    assert manifest["debs"] == ["debs/docker-compose_2.26.1-4_amd64.deb"]
    # written with sorted keys, and what is on disk is what was returned
    text = (out / "manifest.json").read_text()
    assert text == json.dumps(manifest, sort_keys=True, indent=2) + "\n"
    assert read_manifest(out) == manifest
    assert verify_bundle(out) == []


def test_tampered_file_is_detected(tmp_path, model_dir, deb, fake_docker):
    out = tmp_path / "bundle"
    _build(out, model_dir, deb)
    target = out / "models/tiny-chat/model.safetensors"
    data = bytearray(target.read_bytes())
    data[100] ^= 0xFF  # same size, different content
    target.write_bytes(bytes(data))

    problems = verify_bundle(out)
    assert len(problems) == 1
    assert "models/tiny-chat/model.safetensors" in problems[0] and "sha256" in problems[0]
    # a size-only check does not read contents, so it cannot see this change
    assert verify_bundle(out, check_hashes=False) == []


def test_missing_truncated_and_unexpected_files_are_reported(tmp_path, model_dir, deb, fake_docker):
    out = tmp_path / "bundle"
    _build(out, model_dir, deb)
    (out / "debs/docker-compose_2.26.1-4_amd64.deb").unlink()
    (out / "images/vllm-cpu.tar").write_bytes(b"short")
    (out / "models/tiny-chat/stray.bin").write_bytes(b"?")

    problems = verify_bundle(out)
    assert any(p.startswith("debs/docker-compose_2.26.1-4_amd64.deb: missing") for p in problems)
    assert any(p.startswith("images/vllm-cpu.tar: size 5 != ") for p in problems)
    assert any(p.startswith("models/tiny-chat/stray.bin: not in the manifest") for p in problems)
    assert len(problems) == 3


def test_manifest_problems(tmp_path, model_dir, deb, fake_docker):
    assert "no manifest.json" in verify_bundle(tmp_path)[0]
    out = tmp_path / "bundle"
    _build(out, model_dir, deb)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["files"]["../etc/passwd"] = {"sha256": "0" * 64, "size": 1}
    manifest["format"] = 99
    (out / "manifest.json").write_text(json.dumps(manifest))
    problems = verify_bundle(out)
    assert any("../etc/passwd: path outside" in p for p in problems)
    assert any("format 99" in p for p in problems)
    (out / "manifest.json").write_text("{not json")
    assert "not valid JSON" in verify_bundle(out)[0]


def test_rebuild_is_incremental(tmp_path, model_dir, deb, fake_docker):
    out = tmp_path / "bundle"
    first = _build(out, model_dir, deb)
    assert fake_docker.saves == ["llmrack/vllm-cpu:0.32.0-2"]
    inodes = {rel: (out / rel).stat().st_ino for rel in first["files"]}
    manifest_mtime = (out / "manifest.json").stat().st_mtime_ns

    second = _build(out, model_dir, deb)
    assert second == first
    assert fake_docker.saves == ["llmrack/vllm-cpu:0.32.0-2"], "same image id: no second docker save"
    assert {rel: (out / rel).stat().st_ino for rel in first["files"]} == inodes, (
        "unchanged files not rewritten"
    )
    assert (out / "manifest.json").stat().st_mtime_ns == manifest_mtime

    # a new image id and a changed model file are written again; nothing else is
    fake_docker.ids["llmrack/vllm-cpu:0.32.0-2"] = "sha256:" + "2" * 64
    (model_dir / "config.json").write_text('{"a": 2}')
    third = _build(out, model_dir, deb)
    assert len(fake_docker.saves) == 2
    assert third["images"]["vllm-cpu"]["id"] == "sha256:" + "2" * 64
    assert third["files"]["models/tiny-chat/config.json"]["sha256"] == hashlib.sha256(b'{"a": 2}').hexdigest()
    changed = {rel for rel in first["files"] if (out / rel).stat().st_ino != inodes[rel]}
    assert changed == {"images/vllm-cpu.tar", "models/tiny-chat/config.json"}
    assert verify_bundle(out) == []


def test_files_no_longer_wanted_are_removed(tmp_path, model_dir, deb, fake_docker):
    out = tmp_path / "bundle"
    _build(out, model_dir, deb)
    manifest = build_bundle(out, images=[], model_dirs={"tiny-chat": model_dir}, log=lambda m: None)
    assert not (out / "images").exists() or not any((out / "images").iterdir())
    assert not (out / "debs/docker-compose_2.26.1-4_amd64.deb").exists()
    assert manifest["images"] == {} and manifest["debs"] == []
    assert verify_bundle(out) == []


def test_bad_inputs_fail_before_writing(tmp_path, model_dir, deb, fake_docker):
    out = tmp_path / "bundle"
    with pytest.raises(LlmrackError, match="not in the local Docker engine"):
        build_bundle(out, images=["llmrack/unknown:1"], model_dirs={}, log=lambda m: None)
    with pytest.raises(LlmrackError, match="does not exist"):
        build_bundle(out, images=[], model_dirs={"m": tmp_path / "nope"}, log=lambda m: None)
    with pytest.raises(LlmrackError, match="model name"):
        build_bundle(out, images=[], model_dirs={"../evil": model_dir}, log=lambda m: None)
    with pytest.raises(LlmrackError, match="not a .deb"):
        build_bundle(out, images=[], model_dirs={}, debs=[model_dir / "config.json"], log=lambda m: None)
    assert not (out / "manifest.json").exists()
