"""Training curves as inline SVG: one small line chart per task and group, with the 95% interval
as a band, the base model's value as a dashed line, and regressions drawn in red."""

from __future__ import annotations

from html import escape

from taskgrove.report.collect import Score
from taskgrove.report.curves import Curve
from taskgrove.report.svg import PALETTE, value_domain

WIDTH, HEIGHT = 340, 190
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 28, 30
REGRESSION = "#d62728"


def _chart(curve: Curve, name: str, color: str) -> str:
    scores = curve.values[name]
    known = [s for s in scores if s is not None]
    low, high = value_domain(known)
    steps = curve.steps
    first, last = (steps[0], steps[-1]) if steps else (0, 1)
    span = (last - first) or 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(step: int) -> float:
        return LEFT + (step - first) / span * plot_w

    def y(value: float) -> float:
        return TOP + (1 - (value - low) / ((high - low) or 1)) * plot_h

    title = name + (" (group mean)" if name in curve.groups else "")
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="curve" role="img" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" data-series="{escape(name)}">',
        f"<title>{escape(title)}</title>",
        f'<text class="curve-title" x="{LEFT}" y="16">{escape(title)}</text>',
    ]
    for tick in (low, (low + high) / 2, high):
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#e5e5e5"/>'
            f'<text class="axis" x="{LEFT - 4}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:.2f}</text>'
        )
    for step in steps:
        parts.append(
            f'<text class="axis" x="{x(step):.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle">{step}</text>'
        )
    parts.append(f'<text class="axis" x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 4}" text-anchor="middle">step</text>')
    banded = [(s, sc) for s, sc in zip(steps, scores, strict=True) if sc is not None and sc.has_interval]
    if len(banded) > 1:
        upper = [f"{x(s):.1f},{y(sc.ci_high or sc.value):.1f}" for s, sc in banded]
        lower = [f"{x(s):.1f},{y(sc.ci_low or sc.value):.1f}" for s, sc in reversed(banded)]
        parts.append(f'<polygon class="band" points="{" ".join(upper + lower)}" fill="{color}" fill-opacity="0.18"/>')
    base = curve.base(name)
    if base is not None:
        parts.append(
            f'<line class="base" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(base.value):.1f}" y2="{y(base.value):.1f}" '
            f'stroke="#555" stroke-dasharray="4 3"><title>base {base.value:.3f}</title></line>'
        )
    line = [f"{x(s):.1f},{y(sc.value):.1f}" for s, sc in zip(steps, scores, strict=True) if sc is not None]
    if len(line) > 1:
        parts.append(f'<polyline points="{" ".join(line)}" fill="none" stroke="{color}" stroke-width="2"/>')
    for index, (step, score) in enumerate(zip(steps, scores, strict=True)):
        if score is None:
            continue
        bad = curve.regressed(name, index)
        parts.append(
            f'<circle cx="{x(step):.1f}" cy="{y(score.value):.1f}" r="{4 if bad else 3}" '
            f'fill="{REGRESSION if bad else color}" class="{"regressed" if bad else "point"}">'
            f"<title>{escape(_tip(curve.labels[index], step, score, bad))}</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _tip(label: str, step: int, score: Score, bad: bool) -> str:
    interval = f" [{score.ci_low:.3f}, {score.ci_high:.3f}]" if score.has_interval else " (no interval)"
    return f"{label} (step {step}): {score.value:.3f}{interval}" + (" — below the base model" if bad else "")


def curve_charts(curve: Curve) -> str:
    """One chart per task, then per group."""
    return "".join(_chart(curve, name, PALETTE[i % len(PALETTE)]) for i, name in enumerate(curve.series))


def curves_section(curves: list[Curve]) -> str:
    """The HTML section of the training curves."""
    blocks = []
    for curve in curves:
        regressed = curve.interference()
        warning = (
            f'<p class="interference">Interference: below the base model at the last step: {escape(", ".join(regressed))}</p>'
            if regressed
            else ""
        )
        source = f' <small class="muted">{escape(str(curve.source))}</small>' if curve.source else ""
        blocks.append(
            f"<h3>{escape(curve.run)}{source}</h3>{warning}"
            f'<div class="curves" style="display:flex;flex-wrap:wrap;gap:8px">{curve_charts(curve)}</div>'
        )
    return (
        '<section id="curves"><h2>Evaluation during training</h2>'
        '<p class="muted">Primary metric per evaluated checkpoint with its 95% interval (band); dashed: the base '
        "model (step 0); red points: the base value lies above the whole interval (regression).</p>"
        + "".join(blocks)
        + "</section>"
    )
