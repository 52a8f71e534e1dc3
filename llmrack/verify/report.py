"""Acceptance reports: report.json (the contract, see report.schema.json), junit.xml, report.md, report.html.

report.html is self-contained: inline CSS, inline SVG plots drawn here (no external URL, no script).
"""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from llmrack import __version__ as LLMRACK_VERSION
from llmrack.checkresult import CATEGORIES, CheckResult, jsonable
from llmrack.verify.charts import svg_grouped_bars, svg_histogram, svg_line_chart
from llmrack.verify.checks_hardware import burnin_temperatures
from llmrack.verify.verdict import HostResult, VerifyResult

SCHEMA_PATH = Path(__file__).with_name("report.schema.json")


def write_reports(result: VerifyResult, report_dir: Path) -> list[Path]:
    """Write the four reports of a ``VerifyResult`` into ``report_dir``; returns their paths."""
    report_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "report.json": json.dumps(result.to_dict(), indent=2, ensure_ascii=False, sort_keys=True) + "\n",
        "junit.xml": junit_xml(result),
        "report.md": markdown(result),
        "report.html": html_report(result),
    }
    out = []
    for name, text in paths.items():
        p = report_dir / name
        p.write_text(text, encoding="utf-8")
        out.append(p)
    return out


def load_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


# -------------------------------------------------------------------------------------------------- junit


def junit_xml(result: VerifyResult) -> str:
    """One testsuite per host, one testcase per host x check: fail -> failure, error -> error, not_applicable
    and manual -> skipped (its message says which, and for manual how a person checks it)."""
    sm = result.summary()
    suites = ET.Element("testsuites", name="llmrack verify", tests=str(sm["checks"]), failures=str(sm["fail"]),
                        errors=str(sm["error"]), skipped=str(sm["not_applicable"] + sm["manual"]),
                        time=f"{_seconds(result.duration_s):.3f}")
    for h in result.hosts:
        s = h.counts()
        suite = ET.SubElement(suites, "testsuite", name=h.name, tests=str(len(h.checks) or 1),
                              failures=str(s["fail"]), errors=str(s["error"] + (0 if h.reachable else 1)),
                              skipped=str(s["not_applicable"] + s["manual"]), time=f"{_seconds(h.duration_s):.3f}")
        props = ET.SubElement(suite, "properties")
        for k, v in (("tier", h.tier), ("address", h.address), ("connection", h.connection)):
            ET.SubElement(props, "property", name=k, value=v)
        if not h.reachable:
            case = ET.SubElement(suite, "testcase", classname=f"{h.name}.connection", name="reachable")
            ET.SubElement(case, "error", message=h.error, type="unreachable").text = h.error
            continue
        for c in h.checks:
            case = ET.SubElement(suite, "testcase", classname=f"{h.name}.{c.category}", name=c.id,
                                 time=f"{c.duration_s:.3f}")
            detail = (f"{c.checklist_zh} / {c.checklist_en}\nvalue: {_fmt(c.value)}\n"
                      f"threshold: {_fmt(c.threshold)}\n{c.message}")
            if c.status == "fail":
                ET.SubElement(case, "failure", message=c.message, type="check failed").text = detail
            elif c.status == "error":
                ET.SubElement(case, "error", message=c.message, type="check error").text = detail
            elif c.status == "not_applicable":
                ET.SubElement(case, "skipped", message=f"not applicable: {c.message}")
            elif c.status == "manual":
                ET.SubElement(case, "skipped", message=f"manual: {c.message}; how: {c.how}")
            ET.SubElement(case, "system-out").text = detail
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


# -------------------------------------------------------------------------------------------------- markdown

ICON = {"pass": "PASS", "fail": "FAIL", "not_applicable": "N/A", "manual": "MANUAL", "error": "ERROR"}


def _message(c: CheckResult) -> str:
    return c.message + (f" — how: {c.how}" if c.how else "")


def _seconds(duration_s: float) -> float:
    """A host's or the run's duration as report.json writes it (10 ms steps)."""
    return round(duration_s, 2)


def _counts(s: dict[str, Any]) -> str:
    return (f"{s['pass']} passed, {s['fail']} failed, {s['error']} errors, {s['not_applicable']} not applicable, "
            f"{s['manual']} manual")


def _fmt(value: Any, n: int = 80) -> str:
    """A check's value or threshold as report.json holds it (:func:`jsonable`), cut to ``n`` characters."""
    value = jsonable(value)
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= n else text[: n - 1] + "…"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _rows(h: HostResult) -> list[tuple[str, list[CheckResult]]]:
    """A host's checks by category, in report order (categories without checks left out)."""
    by_cat = [(cat, [c for c in h.checks if c.category == cat]) for cat in CATEGORIES]
    return [(cat, rows) for cat, rows in by_cat if rows]


def markdown(result: VerifyResult) -> str:
    s = result.summary()
    lines = [
        "# 验收报告 / Acceptance report",
        "",
        f"Inventory `{result.inventory}` — llmrack {LLMRACK_VERSION} — {result.generated_at}",
        "",
        f"**Verdict: {s['verdict'].upper()}** — {_counts(s)}; {s['hosts_passed']}/{s['hosts']} host(s) passed"
        + (f", {s['hosts_unreachable']} unreachable" if s["hosts_unreachable"] else ""),
        "",
    ]
    for h in result.hosts:
        lines += [f"## {h.name} ({h.tier}, {h.address}): {h.status.upper()}", ""]
        if not h.reachable:
            lines += [f"Could not run: {h.error}", ""]
            continue
        for cat, rows in _rows(h):
            lines += [f"### {cat}", "", "| status | check | checklist line | value | threshold | message |",
                      "|---|---|---|---|---|---|"]
            for c in rows:
                lines.append("| " + " | ".join(_md_cell(x) for x in (
                    ICON[c.status], f"`{c.id}` {c.title}", c.checklist_zh, _fmt(c.value, 60),
                    _fmt(c.threshold, 40), _message(c))) + " |")
            lines.append("")
        open_lines = [c for c in h.checks if c.status == "manual"]
        if open_lines:
            lines += ["### open sign-offs (manual)", ""]
            lines += [f"- `{c.id}` {c.checklist_zh}: {c.message}. How: {c.how}" for c in open_lines]
            lines.append("")
        if bench := jsonable(h.bench):
            lines += ["### benchmark", "", "| concurrency | ok/requests | tokens/s | TTFT p50/p95/p99 ms | "
                      "TPOT p50/p95/p99 ms |", "|---|---|---|---|---|"]
            for lv in bench["levels"]:
                lines.append(f"| {lv['concurrency']} | {lv['ok']}/{lv['requests']} | "
                             f"{lv['throughput_tokens_per_s']:.1f} | {_pcts(lv['ttft_ms'])} | {_pcts(lv['tpot_ms'])} |")
            lines.append("")
    return "\n".join(lines) + "\n"


def _pcts(stats: dict[str, Any]) -> str:
    return " / ".join("-" if stats.get(k) is None else f"{stats[k]:.0f}" for k in ("p50", "p95", "p99"))


# -------------------------------------------------------------------------------------------------- HTML

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI","Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:0;
 color:#111827;background:#f9fafb}
header{background:#111827;color:#fff;padding:18px 28px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#d1d5db;font-size:13px}main{padding:18px 28px;max-width:1240px}
section{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:14px 18px;margin:0 0 18px}
h2{font-size:18px;margin:4px 0 10px}h3{font-size:15px;margin:14px 0 8px}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{border-bottom:1px solid #e5e7eb;padding:5px 6px;
 text-align:left;vertical-align:top}th{background:#f3f4f6}td.msg{max-width:420px}
.badge{display:inline-block;border-radius:4px;padding:1px 7px;font-weight:600;font-size:12px;color:#fff}
.pass{background:#16a34a}.fail,.error,.unreachable{background:#dc2626}.not_applicable{background:#6b7280}
.manual{background:#ca8a04}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{border:1px solid #e5e7eb;border-radius:8px;padding:10px 14px;
 min-width:110px}.card b{display:block;font-size:22px}.plots{display:flex;flex-wrap:wrap;gap:12px}
.plot{border:1px solid #e5e7eb;border-radius:6px;max-width:100%;height:auto}
code{background:#f3f4f6;padding:0 3px;border-radius:3px}header code{background:#374151;color:#fff}
.zh{color:#374151}.en{color:#6b7280;font-size:12px}
"""


def _badge(status: str, extra: str = "", css: str | None = None) -> str:
    return f'<span class="badge {html.escape(css or status)}">{html.escape(status.upper() + extra)}</span>'


def _cbadge(c: CheckResult) -> str:
    return _badge(ICON[c.status], css=c.status)


def _slug(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_-]+", "-", text).strip("-") or "host"


def bench_plots(bench: dict[str, Any]) -> list[str]:
    levels = bench.get("levels") or []
    if not levels:
        return []
    plots = [svg_line_chart(
        "Aggregate throughput vs concurrency",
        {"output tokens/s": [(lv["concurrency"], lv["throughput_tokens_per_s"]) for lv in levels]},
        "concurrent requests", "tokens/s", log_x=True)]
    groups = [str(lv["concurrency"]) for lv in levels]
    plots.append(svg_grouped_bars("TTFT percentiles by concurrency", groups,
                                  {q: [lv["ttft_ms"].get(q) for lv in levels] for q in ("p50", "p95", "p99")},
                                  "ms", "concurrent requests"))
    top = levels[-1]
    ttfts = [s["ttft_ms"] for s in top.get("samples", []) if s.get("ok") and s.get("ttft_ms") is not None]
    marks = {k: top["ttft_ms"][k] for k in ("p50", "p99") if top["ttft_ms"].get(k) is not None}
    plots.append(svg_histogram(f"TTFT distribution at concurrency {top['concurrency']}", ttfts, "TTFT (ms)",
                               marks=marks))
    e2e = [s["e2e_ms"] for s in top.get("samples", []) if s.get("ok") and s.get("e2e_ms") is not None]
    plots.append(svg_histogram(f"End-to-end latency at concurrency {top['concurrency']}", e2e, "latency (ms)"))
    return [p for p in plots if p]


def burnin_plot(burnin: dict[str, Any], limit: float | None = None) -> str:
    samples = burnin.get("samples") or {}
    series: dict[str, list[tuple[float, float]]] = {}
    if isinstance(samples, dict):
        for idx, rows in samples.items():
            pts = [(float(r.get("t", i)) / 60, float(r["temp_c"])) for i, r in enumerate(rows or [])
                   if r.get("temp_c") is not None]
            if pts:
                series[f"GPU {idx}"] = pts
    if not series:
        temps = burnin_temperatures(burnin)
        series = {f"GPU {k}": [(i, t) for i, t in enumerate(v)] for k, v in temps.items()}
    return svg_line_chart("GPU temperature during burn-in", series, "minutes", "°C",
                          hline=(limit, f"limit {limit:g} °C") if limit else None)


def html_report(result: VerifyResult) -> str:
    e = html.escape
    s = result.summary()
    out = [
        "<!DOCTYPE html>", '<html lang="zh-CN"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>验收报告 / Acceptance report — {e(result.inventory)}</title><style>{CSS}</style></head><body>",
        f"<header><h1>验收报告 / Acceptance report</h1><p>Inventory <code>{e(result.inventory)}</code> · llmrack "
        f"{e(LLMRACK_VERSION)} · {e(result.generated_at)} · {_seconds(result.duration_s):.0f} s</p></header><main>",
        '<section id="summary"><h2>Summary</h2><div class="cards">',
        '<div class="card">verdict<b>'
        + _badge(s["verdict"], css="error" if s["verdict"] == "incomplete" else None) + "</b></div>",
    ]
    for k in ("pass", "fail", "error", "not_applicable", "manual"):
        out.append(f'<div class="card">{k.replace("_", " ")}<b>{s[k]}</b></div>')
    out.append(f'<div class="card">hosts passed<b>{s["hosts_passed"]}/{s["hosts"]}</b></div></div>')
    out.append("<table><tr><th>host</th><th>tier</th><th>address</th><th>status</th><th>pass</th><th>fail</th>"
               "<th>error</th><th>not applicable</th><th>manual</th></tr>")
    for h in result.hosts:
        hs = h.counts()
        out.append(f'<tr><td><a href="#host-{_slug(h.name)}">{e(h.name)}</a></td><td>{e(h.tier)}</td>'
                   f'<td>{e(h.address)}</td><td>{_badge(h.status)}</td><td>{hs["pass"]}</td>'
                   f'<td>{hs["fail"]}</td><td>{hs["error"]}</td><td>{hs["not_applicable"]}</td>'
                   f'<td>{hs["manual"]}</td></tr>')
    out.append("</table></section>")

    # the checklist view: seed 000's lines and what proved them, per host
    out.append('<section id="checklist"><h2>验收测试清单 / Acceptance checklist</h2><table>'
               "<tr><th>checklist line</th><th>host</th><th>checks</th></tr>")
    for h in result.hosts:
        lines: dict[tuple[str, str], list[CheckResult]] = {}
        for c in h.checks:
            lines.setdefault((c.checklist_zh, c.checklist_en), []).append(c)
        for (zh, en), checks in lines.items():
            out.append(f'<tr><td><div class="zh">{e(zh)}</div><div class="en">{e(en)}</div></td>'
                       f'<td>{e(h.name)}</td><td>' + " ".join(
                           f'{_cbadge(c)} <code>{e(c.id)}</code>' for c in checks) + "</td></tr>")
    out.append("</table></section>")

    for h in result.hosts:
        hid = _slug(h.name)
        out.append(f'<section id="host-{hid}" class="host"><h2>{e(h.name)} {_badge(h.status)}</h2>'
                   f'<p>tier <code>{e(h.tier)}</code> · roles {e(", ".join(h.roles))} · '
                   f'<code>{e(h.connection)}</code></p>')
        if not h.reachable:
            out.append(f"<p><b>Could not run:</b> {e(h.error)}</p></section>")
            continue
        for cat, rows in _rows(h):
            out.append(f'<h3 id="{hid}-{cat}">{cat}</h3><table><tr><th>status</th><th>check</th>'
                       "<th>checklist line</th><th>value</th><th>threshold</th><th>message</th></tr>")
            for c in rows:
                out.append(
                    f'<tr id="{hid}-{_slug(c.id)}"><td>{_cbadge(c)}</td>'
                    f'<td><code>{e(c.id)}</code><br>{e(c.title)}</td>'
                    f'<td><div class="zh">{e(c.checklist_zh)}</div><div class="en">{e(c.checklist_en)}'
                    f'</div></td><td>{e(_fmt(c.value, 120))}</td><td>{e(_fmt(c.threshold, 60))}</td>'
                    f'<td class="msg">{e(_message(c))}</td></tr>')
            out.append("</table>")
        if bench := jsonable(h.bench):
            out.append(f'<div id="perf-{hid}"><h3>Benchmark</h3><p>{e(bench.get("url", ""))} · model '
                       f'<code>{e(str(bench.get("model")))}</code> · {bench.get("max_tokens")} '
                       'tokens per request</p><div class="plots">' + "".join(bench_plots(bench)) + "</div>")
            out.append("<table><tr><th>concurrency</th><th>ok / requests</th><th>tokens/s</th>"
                       "<th>TTFT p50 / p95 / p99 ms</th><th>TPOT p50 / p95 / p99 ms</th></tr>")
            for lv in bench["levels"]:
                out.append(f"<tr><td>{lv['concurrency']}</td><td>{lv['ok']} / {lv['requests']}</td>"
                           f"<td>{lv['throughput_tokens_per_s']:.1f}</td><td>{_pcts(lv['ttft_ms'])}</td>"
                           f"<td>{_pcts(lv['tpot_ms'])}</td></tr>")
            out.append("</table></div>")
        if burnin := jsonable(h.burnin):
            limit = next((jsonable(c.threshold) for c in h.checks if c.id == "hw.burnin"), None)
            m = re.search(r"[\d.]+", str(limit or ""))
            plot = burnin_plot(burnin, float(m.group(0)) if m else None)
            out.append(f'<div id="burnin-{hid}"><h3>Burn-in</h3><p>verdict '
                       f'{e(str(burnin.get("verdict")))} · {e(str(burnin.get("minutes")))} min</p>'
                       f'<div class="plots">{plot}</div></div>')
        out.append("</section>")
    out.append("</main></body></html>")
    return "\n".join(out) + "\n"
