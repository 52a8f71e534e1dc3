"""The tier bundle's image builds: the base first (the staging venvs beside it), then side by side (the builds
themselves are replaced by recorders: these tests are about the order and the errors, the real builds run in the
integration tests)."""

from __future__ import annotations

import threading
import time

import pytest

from llmrack.bundle import tier as t
from llmrack.config import load_tier
from llmrack.errors import LlmrackError


@pytest.fixture
def recorded(monkeypatch):
    calls: list[tuple[str, float, float, str]] = []

    def build_image(name, *, log):
        t0 = time.monotonic()
        time.sleep(0.2)
        if name != "base":
            log(f"llmrack/{name}: built")
        if name == "pgvector" and recorded_fail:
            raise LlmrackError("pgvector build failed")
        calls.append((name, t0, time.monotonic(), threading.current_thread().name))

    def build_monitoring(log, *, names, refs):
        t0 = time.monotonic()
        time.sleep(0.2)
        calls.append(("monitoring:" + ",".join(names), t0, time.monotonic(), threading.current_thread().name))

    def prepare_image(name, *, log):
        t0 = time.monotonic()
        time.sleep(0.1)
        calls.append(("prepare:" + name, t0, time.monotonic(), threading.current_thread().name))

    recorded_fail: list[bool] = []
    monkeypatch.setattr(t, "build_image", build_image)
    monkeypatch.setattr(t, "prepare_image", prepare_image)
    monkeypatch.setattr(t, "build_monitoring_images", build_monitoring)
    return calls, recorded_fail


def test_the_base_first_then_the_images_side_by_side_the_longest_first(recorded) -> None:
    calls, _ = recorded
    profile = load_tier("sandbox")
    lines: list[str] = []
    t._ensure_local_images(t.tier_images(profile), profile, lines.append)
    base = next(c for c in calls if c[0] == "base")
    builds = [c for c in calls if c[0] != "base" and not c[0].startswith("prepare:")]
    prepares = [c for c in calls if c[0].startswith("prepare:")]
    names = [c[0] for c in builds]
    assert set(names) == {"vllm-cpu", "nginx", "pgvector", "embed"} | {n for n in names if "monitoring" in n}
    assert any(n.startswith("monitoring:") and "prometheus" in n for n in names)
    assert all(c[1] >= base[2] for c in builds), "every build starts after the base image is done"
    assert any(p[0] == "prepare:vllm-cpu" and p[1] < base[2] for p in prepares), \
        "the vLLM staging venv is made beside the base image"
    starts = sorted(builds, key=lambda c: c[1])
    # the workers wake together when the base is done, so which of the first two starts first is a race
    assert {c[0] for c in starts[:t.BUILD_WORKERS]} == {"vllm-cpu", "embed"}, "the longest builds start first"
    overlap = [(a[0], b[0]) for a in builds for b in builds if a is not b and a[1] < b[1] < a[2]]
    assert overlap, "two builds ran at once"
    assert len({c[3] for c in builds}) == t.BUILD_WORKERS
    assert "vllm-cpu | llmrack/vllm-cpu: built" in lines


def test_a_failed_build_is_raised_after_the_others_finished(recorded) -> None:
    calls, fail = recorded
    fail.append(True)
    profile = load_tier("sandbox")
    with pytest.raises(LlmrackError, match="pgvector build failed"):
        t._ensure_local_images(t.tier_images(profile), profile, lambda _: None)
    assert {"vllm-cpu", "embed", "nginx"} <= {c[0] for c in calls}


def test_each_finished_build_is_handed_on_with_the_refs_it_made(recorded) -> None:
    """The bundle saves an image's tar as soon as its build is done: ``built`` gets each job's refs, once, after
    that job (and never before the base)."""
    calls, _ = recorded
    profile = load_tier("sandbox")
    handed: list[tuple[list[str], set[str]]] = []
    steps: list[tuple[str, int, int]] = []
    t._ensure_local_images(t.tier_images(profile), profile, lambda line: None,
                           built=lambda refs: handed.append((refs, {c[0] for c in calls})),
                           step=lambda *a: steps.append(a))
    assert [s[1:] for s in steps] == [(i, len(handed)) for i in range(1, len(handed) + 1)], "the bar counts builds"
    assert {s[0] for s in steps} == {f"{n} built" for n in ("vllm-cpu", "embed", "pgvector", "nginx", "monitoring")}
    made = [ref for refs, _ in handed for ref in refs]
    assert sorted(made) == sorted(t.tier_images(profile)), "every image of the tier, once"
    for refs, finished in handed:
        name = refs[0].split("/")[1].split(":")[0]
        assert f"prepare:{name}" in finished or len(refs) > 1
        assert "base" in finished
        if len(refs) == 1 and name in {"vllm-cpu", "nginx", "pgvector", "embed"}:
            assert name in finished, f"{refs} handed on before its build finished"
