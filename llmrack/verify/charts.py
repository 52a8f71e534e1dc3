"""SVG charts for the HTML acceptance report: line charts, histograms, grouped bars. Plain SVG text, no
plotting library: the report must open offline in any browser."""

from __future__ import annotations

import html
import math
from typing import Any

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
