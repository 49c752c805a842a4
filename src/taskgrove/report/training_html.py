"""The HTML table of paired improvements over the base model in a training comparison."""

from __future__ import annotations

from html import escape

from taskgrove.report.training import TrainingComparison, delta_cell


def improvement_table(comparison: TrainingComparison) -> str:
    """Trained models (columns) minus base per task: difference [95% paired interval], p < 0.05 marked."""
    trained = [m for m in comparison.models if m.vs_base]
    if not trained:
        return ""
    head = "".join(f"<th>{escape(m.label)} − base</th>" for m in trained)
    rows = []
    for task in comparison.tasks:
        cells = []
        for model in trained:
            delta = model.vs_base.get(task)
            text = escape(delta_cell(delta, mark=""))
            mark = " <strong>*</strong>" if delta and delta.get("significant") else ""
            cells.append(f'<td class="muted">{text}</td>' if delta is None else f"<td>{text}{mark}</td>")
        rows.append(f"<tr><th>{escape(task)}</th>{''.join(cells)}</tr>")
    return (
        '<h3>Improvement over the base model</h3><p class="muted">Mean paired difference on the same items '
        "[95% paired-bootstrap interval]; * p &lt; 0.05 (McNemar exact for 0/1 scores).</p>"
        f'<table class="improvement"><thead><tr><th>task</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )
