"""Acceptance reports: report.json (the contract, see report.schema.json), junit.xml, report.md, report.html.

report.html is self-contained: inline CSS, inline SVG plots drawn here (no external URL, no script).
"""

from __future__ import annotations

import html
import json
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from llmrack.verify.checks import burnin_temperatures

SCHEMA_PATH = Path(__file__).with_name("report.schema.json")


def write_reports(result: Any, report_dir: Path) -> list[Path]:
    """Write the four reports of a ``VerifyResult`` into ``report_dir``; returns their paths."""
    report_dir.mkdir(parents=True, exist_ok=True)
    doc = result.to_dict()
    paths = {
        "report.json": json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True) + "\n",
        "junit.xml": junit_xml(doc),
        "report.md": markdown(doc),
        "report.html": html_report(doc),
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


def junit_xml(doc: dict[str, Any]) -> str:
    """One testsuite per host, one testcase per host x check (failure / error / skipped with the message)."""
    suites = ET.Element("testsuites", name="llmrack verify", tests=str(doc["summary"]["checks"]),
                        failures=str(doc["summary"]["fail"]), errors=str(doc["summary"]["error"]),
                        skipped=str(doc["summary"]["skip"]), time=f"{doc['duration_s']:.3f}")
    for h in doc["hosts"]:
        s = h["summary"]
        suite = ET.SubElement(suites, "testsuite", name=h["name"], tests=str(len(h["checks"]) or 1),
                              failures=str(s["fail"]), errors=str(s["error"] + (0 if h["reachable"] else 1)),
                              skipped=str(s["skip"]), time=f"{h['duration_s']:.3f}")
        props = ET.SubElement(suite, "properties")
        for k in ("tier", "address", "connection"):
            ET.SubElement(props, "property", name=k, value=str(h[k]))
        if not h["reachable"]:
            case = ET.SubElement(suite, "testcase", classname=f"{h['name']}.connection", name="reachable")
            ET.SubElement(case, "error", message=h["error"], type="unreachable").text = h["error"]
            continue
        for c in h["checks"]:
            case = ET.SubElement(suite, "testcase", classname=f"{h['name']}.{c['category']}", name=c["id"],
                                 time=f"{c['duration_s']:.3f}")
            detail = (f"{c['checklist']['zh']} / {c['checklist']['en']}\nvalue: {_fmt(c['value'])}\n"
                      f"threshold: {_fmt(c['threshold'])}\n{c['message']}")
            if c["status"] == "fail":
                ET.SubElement(case, "failure", message=c["message"], type="check failed").text = detail
            elif c["status"] == "error":
                ET.SubElement(case, "error", message=c["message"], type="check error").text = detail
            elif c["status"] == "skip":
                ET.SubElement(case, "skipped", message=f"{c['skip_reason']}: {c['message']}")
            ET.SubElement(case, "system-out").text = detail
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


# -------------------------------------------------------------------------------------------------- markdown

ICON = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP", "error": "ERROR"}


def _fmt(value: Any, n: int = 80) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= n else text[: n - 1] + "…"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(doc: dict[str, Any]) -> str:
    s = doc["summary"]
    lines = [
        "# 验收报告 / Acceptance report",
        "",
        f"Inventory `{doc['inventory']}` — llmrack {doc['tool']['version']} — {doc['generated_at']}",
        "",
        f"**Verdict: {s['verdict'].upper()}** — {s['pass']} passed, {s['fail']} failed, {s['error']} errors, "
        f"{s['skip']} skipped; {s['hosts_passed']}/{s['hosts']} host(s) passed"
        + (f", {s['hosts_unreachable']} unreachable" if s["hosts_unreachable"] else ""),
        "",
    ]
    for h in doc["hosts"]:
        lines += [f"## {h['name']} ({h['tier']}, {h['address']}): {h['status'].upper()}", ""]
        if not h["reachable"]:
            lines += [f"Could not run: {h['error']}", ""]
            continue
        for cat in ("software", "hardware", "security", "performance"):
            rows = [c for c in h["checks"] if c["category"] == cat]
            if not rows:
                continue
            lines += [f"### {cat}", "", "| status | check | checklist line | value | threshold | message |",
                      "|---|---|---|---|---|---|"]
            for c in rows:
                st = ICON[c["status"]] + (f" ({c['skip_reason']})" if c["skip_reason"] else "")
                lines.append("| " + " | ".join(_md_cell(x) for x in (
                    st, f"`{c['id']}` {c['title']}", f"{c['checklist']['zh']}", _fmt(c["value"], 60),
                    _fmt(c["threshold"], 40), c["message"])) + " |")
            lines.append("")
        if h.get("bench"):
            lines += ["### benchmark", "", "| concurrency | ok/requests | tokens/s | TTFT p50/p95/p99 ms | "
                      "TPOT p50/p95/p99 ms |", "|---|---|---|---|---|"]
            for lv in h["bench"]["levels"]:
                lines.append(f"| {lv['concurrency']} | {lv['ok']}/{lv['requests']} | "
                             f"{lv['throughput_tokens_per_s']:.1f} | {_pcts(lv['ttft_ms'])} | {_pcts(lv['tpot_ms'])} |")
            lines.append("")
    return "\n".join(lines) + "\n"


def _pcts(stats: dict[str, Any]) -> str:
    return " / ".join("-" if stats.get(k) is None else f"{stats[k]:.0f}" for k in ("p50", "p95", "p99"))


# -------------------------------------------------------------------------------------------------- SVG plots

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777")
W, H, ML, MR, MT, MB = 560, 300, 64, 16, 28, 46


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    out, v = [start], start
    while v < hi - step * 1e-9:
        v += step
        out.append(round(v, 10))
    return out


def _num_label(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 10 or v == int(v) else f"{v:.2g}"


def _frame(title: str, xlabel: str, ylabel: str, xt: list[tuple[float, str]], yt: list[float],
           sx: Any, sy: Any) -> list[str]:
    e = html.escape
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
             f'role="img" aria-label="{e(title)}" class="plot">',
             f'<rect x="0" y="0" width="{W}" height="{H}" fill="#fff"/>',
             f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="14" font-weight="600">{e(title)}</text>']
    for v in yt:
        y = sy(v)
        parts.append(f'<line x1="{ML}" x2="{W - MR}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        parts.append(f'<text x="{ML - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{_num_label(v)}</text>')
    for v, label in xt:
        x = sx(v)
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{H - MB}" y2="{H - MB + 4}" stroke="#374151"/>')
        parts.append(f'<text x="{x:.1f}" y="{H - MB + 17}" text-anchor="middle" font-size="11">{e(label)}</text>')
    parts += [f'<line x1="{ML}" x2="{W - MR}" y1="{H - MB}" y2="{H - MB}" stroke="#374151"/>',
              f'<line x1="{ML}" x2="{ML}" y1="{MT}" y2="{H - MB}" stroke="#374151"/>',
              f'<text x="{(ML + W - MR) / 2}" y="{H - 8}" text-anchor="middle" font-size="12">{e(xlabel)}</text>',
              f'<text x="14" y="{(MT + H - MB) / 2}" text-anchor="middle" font-size="12" '
              f'transform="rotate(-90 14 {(MT + H - MB) / 2})">{e(ylabel)}</text>']
    return parts


def _legend(names: list[str]) -> list[str]:
    out = []
    for i, name in enumerate(names):
        x = ML + 8 + i * 120
        out.append(f'<rect x="{x}" y="{MT + 4}" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>')
        out.append(f'<text x="{x + 14}" y="{MT + 13}" font-size="11">{html.escape(name)}</text>')
    return out


def svg_line_chart(title: str, series: dict[str, list[tuple[float, float]]], xlabel: str, ylabel: str,
                   hline: tuple[float, str] | None = None, log_x: bool = False) -> str:
    pts = [p for s in series.values() for p in s]
    if not pts:
        return ""
    fx = (lambda v: math.log2(v)) if log_x else (lambda v: v)
    xs, ys = [fx(p[0]) for p in pts], [p[1] for p in pts] + ([hline[0]] if hline else [])
    x0, x1 = min(xs), max(xs)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    yt = _ticks(0, max(ys) * 1.08 if max(ys) > 0 else 1)
    y1 = yt[-1]

    def sx(v: float) -> float:
        return ML + (v - x0) / (x1 - x0) * (W - ML - MR)

    def sy(v: float) -> float:
        return H - MB - v / y1 * (H - MT - MB)

    if log_x:
        xt = sorted({p[0] for p in pts})
        xticks = [(fx(v), _num_label(v)) for v in xt]
    else:
        xticks = [(v, _num_label(v)) for v in _ticks(x0, x1) if x0 <= v <= x1]
    parts = _frame(title, xlabel, ylabel, xticks, yt, sx, sy)
    if hline:
        y = sy(hline[0])
        parts.append(f'<line x1="{ML}" x2="{W - MR}" y1="{y:.1f}" y2="{y:.1f}" stroke="#dc2626" '
                     f'stroke-dasharray="6 4"/>')
        parts.append(f'<text x="{W - MR - 4}" y="{y - 4:.1f}" text-anchor="end" font-size="11" fill="#dc2626">'
                     f'{html.escape(hline[1])}</text>')
    for i, (_name, s) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        coords = " ".join(f"{sx(fx(x)):.1f},{sy(y):.1f}" for x, y in s)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{coords}"/>')
        if len(s) <= 40:
            parts += [f'<circle cx="{sx(fx(x)):.1f}" cy="{sy(y):.1f}" r="3" fill="{colour}"/>' for x, y in s]
    parts += _legend(list(series))
    parts.append("</svg>")
    return "".join(parts)


def svg_histogram(title: str, values: list[float], xlabel: str, bins: int = 20,
                  marks: dict[str, float] | None = None) -> str:
    if not values:
        return ""
    lo, hi = min(values), max(values)
    if hi == lo:
        hi = lo + 1
    width = (hi - lo) / bins
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int((v - lo) / width))] += 1
    yt = _ticks(0, max(counts) * 1.1)

    def sx(v: float) -> float:
        return ML + (v - lo) / (hi - lo) * (W - ML - MR)

    def sy(v: float) -> float:
        return H - MB - v / yt[-1] * (H - MT - MB)

    parts = _frame(title, xlabel, "requests", [(v, _num_label(v)) for v in _ticks(lo, hi) if lo <= v <= hi],
                   yt, sx, sy)
    for i, c in enumerate(counts):
        x, x2 = sx(lo + i * width), sx(lo + (i + 1) * width)
        parts.append(f'<rect x="{x + 0.5:.1f}" y="{sy(c):.1f}" width="{max(0.5, x2 - x - 1):.1f}" '
                     f'height="{H - MB - sy(c):.1f}" fill="{PALETTE[0]}" fill-opacity="0.75"/>')
    for j, (name, v) in enumerate((marks or {}).items()):
        x = sx(v)
        right = x > W - MR - 90
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{MT}" y2="{H - MB}" stroke="{PALETTE[1 + j]}" '
                     f'stroke-dasharray="4 3"/>')
        parts.append(f'<text x="{x + (-3 if right else 3):.1f}" y="{MT + 12 + 12 * j}" font-size="11" '
                     f'text-anchor="{"end" if right else "start"}" fill="{PALETTE[1 + j]}">'
                     f'{html.escape(name)} {v:.0f} ms</text>')
    parts.append("</svg>")
    return "".join(parts)


def svg_grouped_bars(title: str, groups: list[str], series: dict[str, list[float | None]], ylabel: str,
                     xlabel: str) -> str:
    vals = [v for s in series.values() for v in s if v is not None]
    if not vals or not groups:
        return ""
    yt = _ticks(0, max(vals) * 1.1 if max(vals) > 0 else 1)
    gw = (W - ML - MR) / len(groups)
    bw = gw * 0.8 / max(1, len(series))

    def sy(v: float) -> float:
        return H - MB - v / yt[-1] * (H - MT - MB)

    parts = _frame(title, xlabel, ylabel, [(i, g) for i, g in enumerate(groups)], yt,
                   lambda i: ML + (i + 0.5) * gw, sy)
    for j, (_name, s) in enumerate(series.items()):
        for i, v in enumerate(s):
            if v is None:
                continue
            x = ML + i * gw + gw * 0.1 + j * bw
            parts.append(f'<rect x="{x:.1f}" y="{sy(v):.1f}" width="{bw - 1:.1f}" height="{H - MB - sy(v):.1f}" '
                         f'fill="{PALETTE[j % len(PALETTE)]}"/>')
    parts += _legend(list(series))
    parts.append("</svg>")
    return "".join(parts)


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
.pass{background:#16a34a}.fail,.error,.unreachable{background:#dc2626}.skip{background:#ca8a04}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{border:1px solid #e5e7eb;border-radius:8px;padding:10px 14px;
 min-width:110px}.card b{display:block;font-size:22px}.plots{display:flex;flex-wrap:wrap;gap:12px}
.plot{border:1px solid #e5e7eb;border-radius:6px;max-width:100%;height:auto}
code{background:#f3f4f6;padding:0 3px;border-radius:3px}header code{background:#374151;color:#fff}
.zh{color:#374151}.en{color:#6b7280;font-size:12px}
"""


def _badge(status: str, extra: str = "", css: str | None = None) -> str:
    return f'<span class="badge {html.escape(css or status)}">{html.escape(status.upper() + extra)}</span>'


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


def html_report(doc: dict[str, Any]) -> str:
    e = html.escape
    s = doc["summary"]
    out = [
        "<!DOCTYPE html>", '<html lang="zh-CN"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>验收报告 / Acceptance report — {e(doc['inventory'])}</title><style>{CSS}</style></head><body>",
        f"<header><h1>验收报告 / Acceptance report</h1><p>Inventory <code>{e(doc['inventory'])}</code> · llmrack "
        f"{e(doc['tool']['version'])} · {e(doc['generated_at'])} · {doc['duration_s']:.0f} s</p></header><main>",
        '<section id="summary"><h2>Summary</h2><div class="cards">',
        '<div class="card">verdict<b>'
        + _badge(s["verdict"], css="error" if s["verdict"] == "incomplete" else None) + "</b></div>",
    ]
    for k in ("pass", "fail", "error", "skip"):
        out.append(f'<div class="card">{k}<b>{s[k]}</b></div>')
    out.append(f'<div class="card">hosts passed<b>{s["hosts_passed"]}/{s["hosts"]}</b></div></div>')
    out.append("<table><tr><th>host</th><th>tier</th><th>address</th><th>status</th><th>pass</th><th>fail</th>"
               "<th>error</th><th>skip</th></tr>")
    for h in doc["hosts"]:
        hs = h["summary"]
        out.append(f'<tr><td><a href="#host-{_slug(h["name"])}">{e(h["name"])}</a></td><td>{e(h["tier"])}</td>'
                   f'<td>{e(h["address"])}</td><td>{_badge(h["status"])}</td><td>{hs["pass"]}</td>'
                   f'<td>{hs["fail"]}</td><td>{hs["error"]}</td><td>{hs["skip"]}</td></tr>')
    out.append("</table></section>")

    # the checklist view: seed 000's lines and what proved them, per host
    out.append('<section id="checklist"><h2>验收测试清单 / Acceptance checklist</h2><table>'
               "<tr><th>checklist line</th><th>host</th><th>checks</th></tr>")
    for h in doc["hosts"]:
        lines: dict[str, list[dict[str, Any]]] = {}
        for c in h["checks"]:
            lines.setdefault(c["checklist"]["zh"] + "\x00" + c["checklist"]["en"], []).append(c)
        for key, checks in lines.items():
            zh, en = key.split("\x00")
            out.append(f'<tr><td><div class="zh">{e(zh)}</div><div class="en">{e(en)}</div></td>'
                       f'<td>{e(h["name"])}</td><td>' + " ".join(
                           f'{_badge(c["status"])} <code>{e(c["id"])}</code>' for c in checks) + "</td></tr>")
    out.append("</table></section>")

    for h in doc["hosts"]:
        hid = _slug(h["name"])
        out.append(f'<section id="host-{hid}" class="host"><h2>{e(h["name"])} {_badge(h["status"])}</h2>'
                   f'<p>tier <code>{e(h["tier"])}</code> · roles {e(", ".join(h["roles"]))} · '
                   f'<code>{e(h["connection"])}</code></p>')
        if not h["reachable"]:
            out.append(f"<p><b>Could not run:</b> {e(h['error'])}</p></section>")
            continue
        for cat in ("software", "hardware", "security", "performance"):
            rows = [c for c in h["checks"] if c["category"] == cat]
            if not rows:
                continue
            out.append(f'<h3 id="{hid}-{cat}">{cat}</h3><table><tr><th>status</th><th>check</th>'
                       "<th>checklist line</th><th>value</th><th>threshold</th><th>message</th></tr>")
            for c in rows:
                extra = f" ({c['skip_reason']})" if c["skip_reason"] else ""
                out.append(
                    f'<tr id="{hid}-{_slug(c["id"])}"><td>{_badge(c["status"], extra)}</td>'
                    f'<td><code>{e(c["id"])}</code><br>{e(c["title"])}</td>'
                    f'<td><div class="zh">{e(c["checklist"]["zh"])}</div><div class="en">{e(c["checklist"]["en"])}'
                    f'</div></td><td>{e(_fmt(c["value"], 120))}</td><td>{e(_fmt(c["threshold"], 60))}</td>'
                    f'<td class="msg">{e(c["message"])}</td></tr>')
            out.append("</table>")
        if h.get("bench"):
            out.append(f'<div id="perf-{hid}"><h3>Benchmark</h3><p>{e(h["bench"].get("url", ""))} · model '
                       f'<code>{e(str(h["bench"].get("model")))}</code> · {h["bench"].get("max_tokens")} '
                       'tokens per request</p><div class="plots">' + "".join(bench_plots(h["bench"])) + "</div>")
            out.append("<table><tr><th>concurrency</th><th>ok / requests</th><th>tokens/s</th>"
                       "<th>TTFT p50 / p95 / p99 ms</th><th>TPOT p50 / p95 / p99 ms</th></tr>")
            for lv in h["bench"]["levels"]:
                out.append(f"<tr><td>{lv['concurrency']}</td><td>{lv['ok']} / {lv['requests']}</td>"
                           f"<td>{lv['throughput_tokens_per_s']:.1f}</td><td>{_pcts(lv['ttft_ms'])}</td>"
                           f"<td>{_pcts(lv['tpot_ms'])}</td></tr>")
            out.append("</table></div>")
        if h.get("burnin"):
            limit = next((c["threshold"] for c in h["checks"] if c["id"] == "hw.burnin"), None)
            m = re.search(r"[\d.]+", str(limit or ""))
            plot = burnin_plot(h["burnin"], float(m.group(0)) if m else None)
            out.append(f'<div id="burnin-{hid}"><h3>Burn-in</h3><p>verdict '
                       f'{e(str(h["burnin"].get("verdict")))} · {e(str(h["burnin"].get("minutes")))} min</p>'
                       f'<div class="plots">{plot}</div></div>')
        out.append("</section>")
    out.append("</main></body></html>")
    return "\n".join(out) + "\n"
