"""Text renderings of a leaderboard: a terminal table (rich), Markdown, CSV (long form) and JSON."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

import orjson

from taskgrove.report.collect import Score
from taskgrove.report.leaderboard import GROUP_METHOD, Cell, Leaderboard

FORMATS = ("table", "markdown", "csv", "json")


@dataclass
class Grid:
    """A titled table of strings with numbered footnotes."""

    title: str
    header: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    sections: list[int] = field(default_factory=list)  # row indices that start a new section


def format_score(score: Score | None, digits: int = 3) -> str:
    """``0.800 [0.675, 0.925]``; the bare value when there is no interval; ``-`` for none."""
    if score is None:
        return "-"
    if score.has_interval:
        return f"{score.value:.{digits}f} [{score.ci_low:.{digits}f}, {score.ci_high:.{digits}f}]"
    return f"{score.value:.{digits}f}"


def _cell_text(cell: Cell, notes: list[str]) -> str:
    text = format_score(cell.score) if cell.score else cell.status
    if cell.status == "partial":
        text += " *"
    if cell.note:
        if cell.note not in notes:
            notes.append(cell.note)
        text += f" [{notes.index(cell.note) + 1}]"
    return text


def leaderboard_grid(board: Leaderboard) -> Grid:
    """The leaderboard as a grid: one column per run (model + run id), tasks then groups."""
    notes: list[str] = []
    header = ["task / group", "metric", *(run.heading for run in board.runs)]
    rows = []
    sections = []
    for position, row in enumerate(board.rows):
        if row.kind == "group" and (position == 0 or board.rows[position - 1].kind == "task"):
            sections.append(position)
        rows.append([row.name, row.statistic, *(_cell_text(cell, notes) for cell in row.cells)])
    footer = [f"[{i}] {text}" for i, text in enumerate(notes, 1)]
    if any(cell.status == "partial" for row in board.rows for cell in row.cells):
        footer.append("* partial: the group is scored over the tasks this run has")
    if any(row.kind == "group" for row in board.rows):
        footer.append(GROUP_METHOD)
    footer.append("Intervals are 95% bootstrap intervals.")
    return Grid("taskgrove report", header, rows, footer, sections)


def grid_markdown(grid: Grid) -> str:
    """A GitHub-flavoured Markdown table with the notes below it."""

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

    out = [f"## {grid.title}", "", line(grid.header), "|" + "|".join("---" for _ in grid.header) + "|"]
    out += [line(row) for row in grid.rows]
    if grid.notes:
        out += [""] + [f"- {note}" for note in grid.notes]
    return "\n".join(out) + "\n"


def grid_text(grid: Grid, *, width: int | None = None, color: bool = False) -> str:
    """The grid as a rich table rendered to text (``color`` keeps ANSI styles)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=grid.title, header_style="bold", show_lines=False)
    for position, name in enumerate(grid.header):
        table.add_column(name, justify="left" if position < 2 else "right", overflow="fold")
    for position, row in enumerate(grid.rows):
        table.add_row(*row, end_section=position + 1 in grid.sections)
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=width or 10_000,
        force_terminal=color,
        color_system="standard" if color else None,
        highlight=False,
    )
    console.print(table)
    for note in grid.notes:
        console.print(note, soft_wrap=width is None, highlight=False, markup=False)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


def leaderboard_csv(board: Leaderboard) -> str:
    """Long-form CSV: one line per (row, run) with value and interval in their own columns."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["kind", "name", "statistic", "label", "run_id", "model", "status", "value", "ci_low", "ci_high", "n", "note"]
    )
    for row in board.rows:
        for run, cell in zip(board.runs, row.cells, strict=False):
            score = cell.score
            writer.writerow(
                [
                    row.kind,
                    row.name,
                    row.statistic,
                    run.label,
                    run.run_id,
                    run.model,
                    cell.status,
                    *(
                        ("" if v is None else repr(v))
                        for v in ((score.value, score.ci_low, score.ci_high, score.n) if score else (None,) * 4)
                    ),
                    cell.note or "",
                ]
            )
    return buffer.getvalue()


def leaderboard_json(board: Leaderboard) -> str:
    """The leaderboard as indented JSON (``runs``, ``rows`` with one cell per run, ``notes``)."""
    return orjson.dumps(board.to_json(), option=orjson.OPT_INDENT_2).decode() + "\n"


def render_leaderboard(board: Leaderboard, fmt: str, *, width: int | None = None, color: bool = False) -> str:
    """The leaderboard in ``fmt``: table, markdown, csv or json."""
    if fmt == "table":
        return grid_text(leaderboard_grid(board), width=width, color=color)
    if fmt == "markdown":
        return grid_markdown(leaderboard_grid(board))
    if fmt == "csv":
        return leaderboard_csv(board)
    if fmt == "json":
        return leaderboard_json(board)
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
