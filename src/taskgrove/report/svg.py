"""Inline SVG charts written by hand: bar charts with interval whiskers and a score heatmap."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from taskgrove.report.collect import Score
from taskgrove.report.training import TrainingComparison

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")


@dataclass(frozen=True)
class Bar:
    """One bar: a label, its score (None: drawn as missing) and its colour."""

    label: str
    score: Score | None
    color: str = PALETTE[0]
    status: str = ""


def _fmt(value: float) -> str:
    return f"{value:.3f}"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _nice_step(span: float) -> float:
    raw = span / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)


def value_domain(scores: Sequence[Score]) -> tuple[float, float]:
    """[0, 1] when every value and bound lies in it, else a padded range that includes 0."""
    points = [v for s in scores for v in (s.value, s.ci_low, s.ci_high) if v is not None]
    if not points or (min(points) >= 0 and max(points) <= 1):
        return 0.0, 1.0
    low, high = min(0.0, *points), max(0.0, *points)
    if high == low:
        high = low + 1
    step = _nice_step(high - low)
    return math.floor(low / step) * step, math.ceil(high / step) * step


def bar_chart(bars: Sequence[Bar], *, title: str, chart_id: str | None = None, width: int = 720) -> str:
    """A horizontal bar chart, one bar per entry, with a whisker for each 95% interval."""
    label_w, value_w, row_h, top, bottom = 290, 170, 24, 8, 26  # a label of 38 characters fits
    plot_w = width - label_w - value_w
    height = top + row_h * max(1, len(bars)) + bottom
    low, high = value_domain([b.score for b in bars if b.score])

    def x(value: float) -> float:
        return label_w + (value - low) / (high - low) * plot_w

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="bar-chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" data-bars="{len(bars)}"'
        + (f' id="{escape(chart_id)}"' if chart_id else "")
        + ">",
        f"<title>{escape(title)}</title>",
    ]
    step = _nice_step(high - low)
    tick = low
    axis_y = top + row_h * max(1, len(bars))
    while tick <= high + 1e-9:
        tx = x(tick)
        parts.append(f'<line x1="{tx:.1f}" y1="{top}" x2="{tx:.1f}" y2="{axis_y}" class="grid"/>')
        parts.append(f'<text x="{tx:.1f}" y="{axis_y + 16}" class="tick" text-anchor="middle">{tick:g}</text>')
        tick += step
    zero = x(min(max(0.0, low), high))
    for row, bar in enumerate(bars):
        y = top + row * row_h
        mid = y + row_h / 2
        parts.append(f'<g class="bar-row"><title>{escape(bar.label)}: {escape(_describe(bar))}</title>')
        parts.append(
            f'<text x="{label_w - 8}" y="{mid + 4:.1f}" text-anchor="end" class="label">{escape(_short(bar.label, 38))}</text>'
        )
        if bar.score is None:
            parts.append(
                f'<text x="{label_w + 4}" y="{mid + 4:.1f}" class="missing">{escape(bar.status or "no score")}</text></g>'
            )
            continue
        s = bar.score
        x0, x1 = sorted((zero, x(s.value)))
        parts.append(
            f'<rect class="bar" x="{x0:.1f}" y="{y + 5}" width="{max(x1 - x0, 1):.1f}" height="{row_h - 10}" fill="{bar.color}"/>'
        )
        if s.has_interval:
            assert s.ci_low is not None and s.ci_high is not None
            lx, hx = x(s.ci_low), x(s.ci_high)
            parts.append(
                f'<path class="whisker" d="M{lx:.1f},{mid:.1f}H{hx:.1f}M{lx:.1f},{mid - 5:.1f}V{mid + 5:.1f}M{hx:.1f},{mid - 5:.1f}V{mid + 5:.1f}"/>'
            )
        parts.append(
            f'<text x="{width - value_w + 8}" y="{mid + 4:.1f}" class="value">{escape(_describe(bar))}</text></g>'
        )
    parts.append(f'<line x1="{zero:.1f}" y1="{top}" x2="{zero:.1f}" y2="{axis_y}" class="axis"/>')
    parts.append("</svg>")
    return "".join(parts)


def _describe(bar: Bar) -> str:
    s = bar.score
    if s is None:
        return bar.status or "no score"
    if s.has_interval:
        return f"{_fmt(s.value)} [{_fmt(s.ci_low or 0)}, {_fmt(s.ci_high or 0)}]"
    return f"{_fmt(s.value)} (no interval)"


def _mix(color: tuple[int, int, int], amount: float) -> str:
    """``color`` blended with white; amount 0 = white, 1 = the colour."""
    r, g, b = (round(255 + (c - 255) * amount) for c in color)
    return f"#{r:02x}{g:02x}{b:02x}"


def _luminance(fill: str) -> float:
    """Relative brightness (0 black .. 1 white) of a ``#rrggbb`` colour."""
    r, g, b = (int(fill[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def heatmap(comparison: TrainingComparison, *, chart_id: str = "heatmap-svg") -> str:
    """Models (rows: base, single-task, multi-task) x tasks; colour = difference from the base model.

    Without a base model the colour is the score itself (lighter = lower). Each cell shows the
    score, and for non-base rows its difference from base.
    """
    tasks, models = comparison.tasks, comparison.models
    longest = max((len(t.split("/")[-1]) for t in tasks), default=4)
    widest = max((len(m.label) for m in models), default=4)  # labels are never cut: the chart grows
    label_w, cell_w, cell_h, head_h, legend_h = (
        max(210, 16 + round(widest * 7.2)),
        96,
        46,
        24 + round(longest * 7.2 * 0.58),
        40,
    )
    width = label_w + cell_w * max(1, len(tasks)) + 20 + round(longest * 7.2 * 0.82)  # the last rotated label
    height = head_h + cell_h * max(1, len(models)) + legend_h
    base = comparison.base
    deltas = [abs(d) for m in models if m is not base for t in tasks if (d := comparison.delta(m, t)) is not None]
    spread = max(deltas, default=0.0) or 1.0
    legend = (
        f"colour: difference from base (blue better, red worse; full colour = {spread:.3f})"
        if base is not None
        else "colour: score (darker = higher)"
    )
    if any(m.trained_on for m in models):
        legend += "; outlined: the model was trained on that task"
    width = max(width, label_w + round(len(legend) * 6.6))  # the legend is never cut either
    values = [s.value for m in models for s in m.scores.values()]
    vmin, vmax = (min(values), max(values)) if values else (0.0, 1.0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="heatmap" id="{escape(chart_id)}" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" data-rows="{len(models)}" data-cols="{len(tasks)}">',
        f"<title>{escape(comparison.title)}</title>",
    ]
    for column, task in enumerate(tasks):
        cx = label_w + column * cell_w + cell_w / 2
        parts.append(
            f'<text class="col-label" transform="translate({cx:.1f},{head_h - 8}) rotate(-35)"><title>{escape(task)}</title>{escape(task.split("/")[-1])}</text>'
        )
    for row, model in enumerate(models):
        y = head_h + row * cell_h
        about = f"{model.label} ({model.kind}" + (f", {model.config}" if model.config else "") + ")"
        parts.append(
            f'<text class="row-label" x="{label_w - 8}" y="{y + cell_h / 2 + 4:.1f}" text-anchor="end">{escape(model.label)}<title>{escape(about)}</title></text>'
        )
        for column, task in enumerate(tasks):
            x = label_w + column * cell_w
            score = model.scores.get(task)
            delta = comparison.delta(model, task)
            if score is None:
                fill, lines = "#f0f0f0", ["failed" if task in model.failed else "–"]
            elif base is None:
                fill = _mix(
                    (78, 121, 167), 0.15 + 0.85 * ((score.value - vmin) / (vmax - vmin) if vmax > vmin else 1.0)
                )
                lines = [_fmt(score.value)]
            elif model is base:
                fill, lines = "#e8e8e8", [_fmt(score.value), "base"]
            else:
                shade = min(1.0, abs(delta or 0.0) / spread)
                fill = _mix((33, 102, 172) if (delta or 0) >= 0 else (203, 24, 29), 0.1 + 0.8 * shade)
                lines = [_fmt(score.value), "±0" if not delta else f"{delta:+.3f}"]
            interval = (
                f" [{_fmt(score.ci_low or 0)}, {_fmt(score.ci_high or 0)}]" if score and score.has_interval else ""
            )
            if score is not None and score.has_interval:  # the 95% interval under the value
                lines.insert(1, f"[{score.ci_low:.2f}, {score.ci_high:.2f}]")
            tip = f"{model.label} on {task}: " + (
                f"{_fmt(score.value)}{interval}"
                + (f", {delta:+.3f} vs base" if delta is not None and model is not base else "")
                if score
                else ("evaluation failed" if task in model.failed else "not evaluated")
            )
            trained = task in model.trained_on
            if trained:
                tip += " (trained on this task)"
            outline = ' stroke="#24292f" stroke-width="2"' if trained else ""
            parts.append(
                f'<g class="cell{" trained" if trained else ""}" data-kind="{model.kind}"><title>{escape(tip)}</title>'
                f'<rect x="{x + 1}" y="{y + 1}" width="{cell_w - 2}" height="{cell_h - 2}" fill="{fill}"{outline}/>'
            )
            dark = _luminance(fill) < 0.45
            for line_no, text in enumerate(lines):
                ty = y + (cell_h / 2 + 4 if len(lines) == 1 else 14 + line_no * 13)
                parts.append(
                    f'<text x="{x + cell_w / 2:.1f}" y="{ty:.1f}" text-anchor="middle" class="cell-text{" dark" if dark else ""}{" small" if line_no else ""}">{escape(text)}</text>'
                )
            parts.append("</g>")
    legend_y = head_h + cell_h * max(1, len(models)) + 24
    parts.append(f'<text class="legend" x="{label_w}" y="{legend_y}">{escape(legend)}</text>')
    parts.append("</svg>")
    return "".join(parts)
