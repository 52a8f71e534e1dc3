"""Progress of long work: a rich bar on a terminal, counted lines everywhere (verify, bench, the image builds)."""

from __future__ import annotations

import io
import re

from rich.console import Console
from test_verify_checks import ctx_for
from typer.testing import CliRunner
from verify_fakes import FakeOpenAI

from llmrack import bench
from llmrack.cli import app
from llmrack.cli_progress import Steps
from llmrack.verify import suite

OS = {r"cat /etc/os-release": (0, 'ID=ubuntu\nVERSION_ID="22.04"\nPRETTY_NAME="Ubuntu 22.04.4 LTS"\n')}


def _console(terminal: bool) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, force_terminal=terminal, width=100, color_system=None), buf


def test_on_a_terminal_the_bar_counts_and_the_lines_stay_as_written() -> None:
    console, buf = _console(True)
    with Steps(console, "verify") as s:
        s.log("llm-01 1/2: PASS [not markup] sw.os")
        s.step("llm-01 sw.time", 1, 2)
        s._bar.refresh()  # what the bar's own thread draws 10 times a second
    text = buf.getvalue()
    assert "llm-01 1/2: PASS [not markup] sw.os" in text
    assert re.search(r"verify: llm-01 sw\.time.*1/2", text), text


def test_elsewhere_only_the_lines() -> None:
    console, buf = _console(False)
    with Steps(console, "bench") as s:
        s.log("bench: concurrency 1: 4/4 succeeded")
        s.step("concurrency 1", 3, 4)
    assert buf.getvalue() == "bench: concurrency 1: 4/4 succeeded\n"


def test_verify_counts_its_checks_on_each_line_and_steps_before_each() -> None:
    ctx = ctx_for(OS)
    lines: list[str] = []
    steps: list[tuple[str, int, int]] = []
    results = suite.run_checks(ctx, {"sw.os", "sw.time"}, lines.append, lambda *a: steps.append(a))
    assert [r.id for r in results] == ["sw.os", "sw.time"]
    assert re.match(r"llm-01 1/2: PASS +sw\.os: ", lines[0]), lines
    assert re.match(r"llm-01 2/2: FAIL +sw\.time: ", lines[1]), lines
    assert steps == [("llm-01 sw.os", 0, 2), ("llm-01 sw.time", 1, 2), ("llm-01", 2, 2)]


def test_bench_steps_each_request_and_logs_each_level(tmp_path) -> None:
    steps: list[tuple[str, int, int]] = []
    lines: list[str] = []
    with FakeOpenAI(key="sk-x", model="tiny", tokens_delay_s=0.001, fail_every=3) as srv:
        bench.run_bench(srv.url, "sk-x", model="tiny", concurrency_levels=[1, 2], requests_per_level=3,
                        max_tokens=3, timeout_s=30, log=lines.append, step=lambda *a: steps.append(a))
    assert steps == [(f"concurrency {c}", i, 3) for c in (1, 2) for i in (1, 2, 3)]
    ends = [ln for ln in lines if "succeeded" in ln]
    assert len(ends) == 2 and all(re.match(r"bench: concurrency \d: 2/3 succeeded in ", ln) for ln in ends), lines


def test_the_bench_command_prints_its_levels_as_it_goes(tmp_path) -> None:
    key = tmp_path / "key"
    key.write_text("sk-x\n")
    with FakeOpenAI(key="sk-x", model="tiny", tokens_delay_s=0.001) as srv:
        r = CliRunner().invoke(app, ["bench", "--url", srv.url, "--model", "tiny", "--api-key-file", str(key),
                                     "--concurrency", "1,2", "--requests", "2", "--max-tokens", "3"])
    assert r.exit_code == 0, r.output
    assert "bench: 2 requests at concurrency 2" in r.output
    assert re.search(r"bench: concurrency 2: 2/2 succeeded in [\d.]+ s", r.output), r.output
