"""The static HTML report: one ``index.html`` with everything inline (CSS, SVG, JS, sample data).

It opens from disk with no server and makes no network request. Sections: runs, the score
matrix (tasks then groups), a leaderboard with a bar chart per task and per group, the
base/single/multi-task heatmap when a training comparison is given, and a sample browser that
renders pages of 50 samples from a JSON block (``<script type="application/json">``), so a
20,000-sample run stays responsive.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from taskgrove.report.collect import Run
from taskgrove.report.curve_svg import curves_section
from taskgrove.report.curves import Curve
from taskgrove.report.leaderboard import GROUP_METHOD, Cell, Leaderboard, Row
from taskgrove.report.samples import DEFAULT_MAX_CHARS, task_rows
from taskgrove.report.svg import PALETTE, Bar, bar_chart, heatmap
from taskgrove.report.training import KINDS, TrainingComparison
from taskgrove.report.training_html import improvement_table

INDEX = "index.html"


@dataclass(frozen=True)
class HtmlOptions:
    """What goes into the page: a title, whether to embed samples, and how long a text may be."""

    title: str = "taskgrove report"
    samples: bool = True
    max_chars: int = DEFAULT_MAX_CHARS


def _asset(name: str) -> str:
    return resources.files("taskgrove.report").joinpath("assets", name).read_text(encoding="utf-8")


def slug(text: str) -> str:
    """An id-safe slug of ``text``."""
    return re.sub(r"[^a-zA-Z0-9]+", "-", text).strip("-").lower() or "x"


def _color(position: int) -> str:
    return PALETTE[position % len(PALETTE)]


# --- sections ------------------------------------------------------------------------------------


def _runs_section(runs: list[Run]) -> str:
    rows = []
    for position, run in enumerate(runs):
        scored = sum(1 for t in run.tasks.values() if t.score is not None)
        rows.append(
            f'<tr><td class="nowrap"><span style="color:{_color(position)}">■</span> {escape(run.label)}</td><td>{escape(run.model)}</td>'
            f'<td class="nowrap">{escape(run.run_id)}</td><td>{escape(run.status)}</td><td class="num">{scored} / {len(run.tasks)}</td>'
            f"<td><code>{escape(str(run.root))}</code></td></tr>"
        )
    return (
        '<section id="runs"><h2>Runs</h2><table id="runs-table"><thead><tr><th>label</th><th>model</th><th>run id</th>'
        "<th>status</th><th>tasks scored</th><th>directory</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></section>"
    )


def _score_cell(cell: Cell, best: bool, notes: list[str]) -> str:
    mark = ""
    if cell.note:
        if cell.note not in notes:
            notes.append(cell.note)
        number = notes.index(cell.note) + 1
        mark = f'<sup class="note" title="{escape(cell.note)}">{number}</sup>'
    if cell.score is None:
        return f'<td class="status">{escape(cell.status)}{mark}</td>'
    s = cell.score
    interval = (
        f'<span class="ci">[{s.ci_low:.3f}, {s.ci_high:.3f}]</span>'
        if s.has_interval
        else '<span class="ci">no interval</span>'
    )
    partial = " *" if cell.status == "partial" else ""
    return (
        f'<td class="num{" best" if best else ""}" data-value="{s.value!r}">{s.value:.3f}{partial}{mark}{interval}</td>'
    )


def _best(row: Row) -> float | None:
    values = [c.score.value for c in row.cells if c.score is not None]
    return max(values) if len(values) > 1 else None


def _overview_section(board: Leaderboard) -> str:
    notes: list[str] = []
    head = "".join(
        f'<th>{escape(run.label.replace(run.run_id, "").strip() or run.label)}<span class="run-id">{escape(run.run_id)}</span></th>'
        for run in board.runs
    )
    body = []
    first_group = True
    for row in board.rows:
        best = _best(row)
        classes = ["task-row" if row.kind == "task" else "group-row"]
        if row.kind == "group" and first_group:
            classes.append("first-group")
            first_group = False
        cells = "".join(
            _score_cell(c, best is not None and c.score is not None and c.score.value == best, notes) for c in row.cells
        )
        body.append(
            f'<tr class="{" ".join(classes)}" data-kind="{row.kind}"><th class="row-name">{escape(row.name)}</th>'
            f"<td>{escape(row.statistic)}</td>{cells}</tr>"
        )
    note_items = "".join(f"<li>{escape(text)}</li>" for text in notes)
    return (
        '<section id="overview"><h2>Scores</h2>'
        f'<table id="overview-table" class="scores"><thead><tr><th>task / group</th><th>metric</th>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
        f'<ol class="notes" id="overview-notes">{note_items}</ol>'
        '<p class="notes">Values are primary metrics with 95% bootstrap intervals; the best value of a row is bold. '
        f"* partial: the group is scored over the tasks that run has. {escape(GROUP_METHOD)}</p></section>"
    )


def _value_or_zero(score: Any) -> float:
    return float(score.value) if score is not None else 0.0


def _board(board: Leaderboard, row: Row, position: int) -> str:
    ranked = sorted(
        range(len(board.runs)),
        key=lambda i: (row.cells[i].score is None, -_value_or_zero(row.cells[i].score)),
    )
    table_rows = []
    bars = []
    rank = 0
    for i in ranked:
        run, cell = board.runs[i], row.cells[i]
        s = cell.score
        if s is not None:
            rank += 1
        interval = (
            f"[{s.ci_low:.3f}, {s.ci_high:.3f}]" if s is not None and s.has_interval else ("no interval" if s else "")
        )
        table_rows.append(
            f'<tr><td class="num">{rank if s else ""}</td><td>{escape(run.label)}</td>'
            f'<td class="num">{f"{s.value:.3f}" if s else escape(cell.status)}</td><td class="num">{interval}</td>'
            f'<td class="num">{s.n if s and s.n is not None else ""}</td><td class="muted">{escape(cell.note or "")}</td></tr>'
        )
        bars.append(Bar(run.label, s, _color(i), cell.status))
    title = f"{row.name} — {row.statistic}"
    board_id = f"board-{row.kind}-{slug(row.name)}" + (f"-{row.statistic}" if row.kind == "group" else "")
    return (
        f'<div class="board" id="{board_id}" data-kind="{row.kind}" data-name="{escape(row.name)}">'
        f"<h3>{escape(row.name)} <small>{escape(row.kind)} · {escape(row.statistic)}</small></h3>"
        '<div class="board-body"><table class="board-table"><thead><tr><th>#</th><th>run</th><th>value</th><th>95% CI</th><th>n</th><th>note</th></tr></thead>'
        f"<tbody>{''.join(table_rows)}</tbody></table>"
        f"{bar_chart(bars, title=title, chart_id=f'chart-{position}')}</div></div>"
    )


def _boards_section(board: Leaderboard) -> str:
    boards = "".join(_board(board, row, position) for position, row in enumerate(board.rows))
    return (
        '<section id="leaderboards"><h2>Leaderboards</h2>'
        '<div class="controls"><label for="board-filter">filter</label>'
        '<input type="search" id="board-filter" placeholder="task or group name"></div>'
        f'<div class="boards">{boards}</div></section>'
    )


def _training_section(comparison: TrainingComparison) -> str:
    metric = f" <small>{escape(comparison.metric)}</small>" if comparison.metric else ""
    source = f'<p class="muted">from <code>{escape(str(comparison.source))}</code></p>' if comparison.source else ""
    kinds = {kind: sum(1 for m in comparison.models if m.kind == kind) for kind in KINDS}
    summary = ", ".join(f"{count} {kind}" for kind, count in kinds.items() if count)
    return (
        f'<section id="training"><h2>{escape(comparison.title)}{metric}</h2>{source}'
        f'<p class="muted">{len(comparison.models)} models ({summary}) on {len(comparison.tasks)} tasks.</p>'
        f'<div class="heatmap-wrap">{heatmap(comparison)}</div>{improvement_table(comparison)}</section>'
    )


def _samples_payload(board: Leaderboard, options: HtmlOptions) -> bytes:
    rows: list[list[Any]] = []
    task_index = {name: i for i, name in enumerate(board.tasks)}
    for run_position, run in enumerate(board.runs):
        for name, task in run.tasks.items():
            for row in task_rows(task, options.max_chars):
                rows.append([run_position, task_index[name], *row])
    data = {"runs": [run.label for run in board.runs], "tasks": board.tasks, "rows": rows}
    # "<" only occurs inside JSON strings, so escaping it keeps "</script>" out of the block
    return orjson.dumps(data).replace(b"<", b"\\u003c")


def _samples_section(max_chars: int) -> str:
    return (
        '<section id="samples"><h2>Samples</h2>'
        '<div class="controls">'
        '<label for="sample-run">run</label><select id="sample-run"><option value="">all runs</option></select>'
        '<label for="sample-task">task</label><select id="sample-task"><option value="">all tasks</option></select>'
        '<label><input type="checkbox" id="sample-wrong"> wrong only (reward below 1 or error)</label>'
        '<input type="search" id="sample-search" placeholder="search text">'
        '<span id="sample-count" class="muted">loading samples…</span></div>'
        '<div class="pager"><button id="sample-prev" type="button">‹ previous</button><span id="sample-page"></span>'
        '<button id="sample-next" type="button">next ›</button></div>'
        '<ol id="sample-list"></ol>'
        f'<p class="muted">Long texts are clipped to about {max_chars} characters (start and end kept).</p></section>'
    )


# --- page ----------------------------------------------------------------------------------------


def render_html(
    board: Leaderboard,
    comparison: TrainingComparison | None = None,
    options: HtmlOptions | None = None,
    curves: Sequence[Curve] = (),
    extra: Sequence[tuple[str, str, str]] = (),
) -> bytes:
    """The whole report page as UTF-8 bytes (``curves``: evaluations during training; ``extra``:
    more sections as (anchor, nav label, section HTML), e.g. :mod:`taskgrove.report.transfer_html`)."""
    options = options or HtmlOptions()
    generated = time.strftime("%Y-%m-%d %H:%M:%S")
    nav = ['<a href="#overview">Scores</a>', '<a href="#leaderboards">Leaderboards</a>']
    if comparison is not None:
        nav.append('<a href="#training">Training</a>')
    if curves:
        nav.append('<a href="#curves">Curves</a>')
    nav += [f'<a href="#{escape(anchor)}">{escape(label)}</a>' for anchor, label, _ in extra]
    if options.samples:
        nav.append('<a href="#samples">Samples</a>')
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(options.title)}</title><style>{_asset('report.css')}</style></head><body>",
        f'<header><h1>{escape(options.title)}</h1><div class="meta">{len(board.runs)} run(s), {len(board.tasks)} task(s), '
        f"{len(board.groups)} group(s) · generated {generated} by taskgrove</div><nav>{''.join(nav)}</nav></header><main>",
        _runs_section(board.runs),
        _overview_section(board),
        _boards_section(board),
    ]
    if comparison is not None:
        parts.append(_training_section(comparison))
    if curves:
        parts.append(curves_section(list(curves)))
    parts += [section for _, _, section in extra]
    payload = b""
    if options.samples:
        payload = _samples_payload(board, options)
        parts.append(_samples_section(options.max_chars))
    parts.append(
        "</main><footer>Intervals are 95% percentile bootstrap intervals. "
        f"{escape(GROUP_METHOD)} Ranks assume higher is better.</footer>"
    )
    head = "".join(parts).encode()
    script = f"<script>{_asset('report.js')}</script></body></html>".encode()
    if not options.samples:
        return head + script
    return head + b'<script type="application/json" id="samples-data">' + payload + b"</script>" + script


def write_html(
    board: Leaderboard,
    directory: str | Path,
    comparison: TrainingComparison | None = None,
    options: HtmlOptions | None = None,
    curves: Sequence[Curve] = (),
    extra: Sequence[tuple[str, str, str]] = (),
) -> Path:
    """Write the report to ``directory/index.html`` (the folder is created) and return its path."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / INDEX
    tmp = folder / f".{INDEX}.tmp"
    tmp.write_bytes(render_html(board, comparison, options, curves, extra))
    tmp.replace(path)
    return path
