"""HTML sections for the transfer matrix (a heatmap) and for "what really moved" between two runs.

Both are self-contained strings (inline SVG, no script) that :func:`taskgrove.report.html.render_html`
places as extra sections.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from taskgrove.report.compare import Comparison
from taskgrove.report.nodes import NodeResult
from taskgrove.report.svg import _luminance, _mix
from taskgrove.report.transfer import cell_text, short_node

BLUE, RED = (33, 102, 172), (203, 24, 29)


def _fill(diff: float | None, spread: float) -> str:
    if diff is None:
        return "#f0f0f0"
    return _mix(BLUE if diff >= 0 else RED, 0.08 + 0.8 * min(1.0, abs(diff) / spread))


def transfer_heatmap(data: Mapping[str, Any], *, chart_id: str = "transfer-svg") -> str:
    """Sources (rows, clustered order) x targets (leaves and groups): colour = adapter - base,
    the value and its 95% interval in each cell; significant cells (BH q < 0.05) are outlined."""
    targets, rows, cells = data["targets"], data["row_order"], data["cells"]
    diffs = [abs(c["diff"]) for r in cells.values() for c in r.values() if c.get("diff") is not None]
    spread = max(diffs, default=0.0) or 1.0
    labels = [short_node(t["node"], t["depth"]) + (" ▸" if t["kind"] == "group" else "") for t in targets]
    longest = max((len(x) for x in labels), default=4)
    widest = max((len(short_node(s, 1)) for s in rows), default=4)
    label_w, cell_w, cell_h = max(160, 16 + round(widest * 7.2)), 112, 44
    head_h = 24 + round(longest * 7.2 * 0.58)
    legend = (
        f"colour: adapter - base (blue better, red worse; full colour = {spread:.3f}); "
        "thick outline: BH q < 0.05; dotted: the adapter was trained on that leaf; ▸ group"
    )
    width = max(label_w + cell_w * max(1, len(targets)) + 20 + round(longest * 6), label_w + round(len(legend) * 6.6))
    height = head_h + cell_h * (len(rows) + 1) + 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="heatmap transfer" id="{chart_id}" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" data-rows="{len(rows)}" data-cols="{len(targets)}">',
        "<title>transfer matrix: adapter - base</title>",
    ]
    for column, (target, label) in enumerate(zip(targets, labels, strict=True)):
        cx = label_w + column * cell_w + cell_w / 2
        parts.append(
            f'<text class="col-label" transform="translate({cx:.1f},{head_h - 8}) rotate(-35)">'
            f"<title>{escape(target['node'])} ({escape(target['kind'])})</title>{escape(label)}</text>"
        )
    for row, source in enumerate([*rows, None]):
        y = head_h + row * cell_h
        name = "base score" if source is None else short_node(source, 1)
        parts.append(
            f'<text class="row-label" x="{label_w - 8}" y="{y + cell_h / 2 + 4:.1f}" text-anchor="end">'
            f"{escape(name)}<title>{escape(source or 'the base model')}</title></text>"
        )
        for column, target in enumerate(targets):
            x = label_w + column * cell_w
            if source is None:
                base = next(
                    (r[target["node"]]["mean_base"] for r in cells.values() if r.get(target["node"], {}).get("n")),
                    None,
                )
                fill, lines, tip = "#e8e8e8", [f"{base:.3f}" if base is not None else "-"], "base model score"
                outline = ""
            else:
                cell = cells.get(source, {}).get(target["node"]) or {}
                diff = cell.get("diff")
                fill = _fill(diff, spread)
                lines = ["-"] if diff is None else [f"{diff:+.3f}", f"[{cell['ci_low']:+.2f}, {cell['ci_high']:+.2f}]"]
                q = cell.get("q_value")
                tip = (
                    f"adapter {source} on {target['node']}: {cell_text(cell)}; n={cell.get('n', 0)}, "
                    f"q={q:.4f}; {cell.get('verdict')}"
                    if diff is not None
                    else f"adapter {source} on {target['node']}: not tested"
                )
                own = source == target["node"]
                significant = cell.get("verdict") in ("helps", "hurts")
                outline = (
                    ' stroke="#24292f" stroke-width="3"'
                    if significant
                    else (' stroke="#24292f" stroke-width="1" stroke-dasharray="3,2"' if own else "")
                )
            parts.append(
                f'<g class="cell" data-source="{escape(source or "")}" data-target="{escape(target["node"])}">'
                f'<title>{escape(tip)}</title><rect x="{x + 1}" y="{y + 1}" width="{cell_w - 2}" height="{cell_h - 2}" '
                f'fill="{fill}"{outline}/>'
            )
            dark = _luminance(fill) < 0.45
            for line_no, text in enumerate(lines):
                ty = y + (cell_h / 2 + 4 if len(lines) == 1 else 17 + line_no * 14)
                parts.append(
                    f'<text x="{x + cell_w / 2:.1f}" y="{ty:.1f}" text-anchor="middle" '
                    f'class="cell-text{" dark" if dark else ""}{" small" if line_no else ""}">{escape(text)}</text>'
                )
            parts.append("</g>")
    parts.append(f'<text class="legend" x="{label_w}" y="{height - 14}">{escape(legend)}</text></svg>')
    return "".join(parts)


def transfer_section(data: Mapping[str, Any]) -> str:
    """The ``#transfer`` section: the heatmap and how to read it."""
    test = data.get("test") or {}
    source = data.get("source_file")
    where = f'<p class="muted">from <code>{escape(str(source))}</code></p>' if source else ""
    return (
        f'<section id="transfer"><h2>Transfer matrix</h2>{where}'
        f'<p class="muted">{len(data["row_order"])} source adapters x {len(data["targets"])} targets. '
        "Each cell: the adapter trained on the row's leaf minus the base model on the column's leaf or group, "
        "over items matched by sample id (groups pool their tasks' items), with its 95% paired-bootstrap interval; "
        f"{escape(str(test.get('adjustment', '')))}. Rows: {escape(str(data.get('row_order_method', '')))}.</p>"
        f'<div class="heatmap-wrap">{transfer_heatmap(data)}</div></section>'
    )


def _interval_bar(node: NodeResult, spread: float, width: int = 180) -> str:
    """A tiny SVG: the difference as a dot, its interval as a line, 0 as a tick."""
    p = node.paired
    if p is None:
        return ""

    def x(value: float) -> float:
        return width / 2 + value / spread * (width / 2 - 6)

    color = {"improved": "#2166ac", "regressed": "#cb181d"}.get(node.verdict, "#6e7781")
    return (
        f'<svg class="interval" width="{width}" height="14" viewBox="0 0 {width} 14">'
        f'<line x1="{width / 2}" y1="1" x2="{width / 2}" y2="13" stroke="#999"/>'
        f'<line x1="{x(p.ci_low):.1f}" y1="7" x2="{x(p.ci_high):.1f}" y2="7" stroke="{color}" stroke-width="2"/>'
        f'<circle cx="{x(p.diff):.1f}" cy="7" r="3.5" fill="{color}"/></svg>'
    )


def nodes_section(comparison: Comparison, nodes: Sequence[NodeResult]) -> str:
    """The ``#moved`` section: the tree with each node's B - A, interval, q and verdict."""
    bounds = [abs(v) for n in nodes if n.paired for v in (n.paired.ci_low, n.paired.ci_high, n.paired.diff)]
    spread = max(bounds, default=0.0) or 1.0
    rows = []
    for n in nodes:
        p = n.paired
        name = n.node if n.depth == 0 else n.node.rsplit("/", 1)[-1]
        indent = f"padding-left:{0.4 + 1.2 * n.depth:.1f}em"
        note = f' <sup class="note" title="{escape(n.note)}">note</sup>' if n.note else ""
        cells = (
            f'<td class="num">{p.n}</td><td class="num">{p.mean_a:.3f}</td><td class="num">{p.mean_b:.3f}</td>'
            f'<td class="num">{p.diff:+.3f} <span class="ci">[{p.ci_low:+.3f}, {p.ci_high:+.3f}]</span></td>'
            f'<td>{_interval_bar(n, spread)}</td><td class="num">{_p(p.p_value)}</td><td class="num">{_p(n.q_value)}</td>'
            if p
            else '<td class="num">0</td><td></td><td></td><td>-</td><td></td><td></td><td></td>'
        )
        rows.append(
            f'<tr class="node-{n.kind} verdict-{n.verdict.replace(" ", "-")}" data-node="{escape(n.node)}">'
            f'<th class="row-name" style="{indent}" title="{escape(n.node)}">{escape(name)}{note}</th>'
            f"{cells}<td>{escape(n.verdict)}</td></tr>"
        )
    return (
        f'<section id="moved"><h2>What really moved <small>A = {escape(comparison.run_a.label)}, '
        f"B = {escape(comparison.run_b.label)}</small></h2>"
        '<table id="moved-table" class="scores"><thead><tr><th>node</th><th>n paired</th><th>A</th><th>B</th>'
        "<th>B - A [95% CI]</th><th>interval (0 = tick)</th><th>p</th><th>q (BH)</th><th>verdict</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        '<p class="notes">Every leaf and group of the tree: B - A over items matched by sample id (groups pool their '
        "tasks' items, so tasks weigh by size); p from the paired bootstrap resampling pairs within each task; "
        "q: Benjamini-Hochberg across all tested nodes; improved / regressed when q &lt; 0.05.</p></section>"
    )


def _p(value: float | None) -> str:
    if value is None:
        return "-"
    return "&lt;0.0001" if value < 1e-4 else f"{value:.4f}"
