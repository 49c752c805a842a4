"""`taskgrove report | compare`: tables, the HTML report and paired comparisons of runs."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

from taskgrove.errors import ConfigError

REPORT_EPILOG = """\
examples:
  taskgrove report results/<run_id>                          # terminal table
  taskgrove report results/a results/b --format markdown -o scores.md
  taskgrove report results/<run_id> --html reports/<name>    # reports/<name>/index.html
  taskgrove report --label base=results/x --label single_sst2_lora8=results/y --label multi_lora8=results/z --html reports/t
  taskgrove report train_out/ --html reports/t               # a training dir with comparison.json
  taskgrove report transfer_out/ --html reports/x            # a dir with transfer.json: the transfer heatmap
  taskgrove report results/a results/b --html reports/ab     # two runs: also "what really moved" (B - A)

Groups (every inner node of the task paths) get the mean and the sample-size-weighted mean of
their tasks' primary metrics; their 95% intervals come from a stratified bootstrap over the
tasks' stored per-sample values, and are left out (with a note) when a member's primary metric
is not a per-sample mean.
"""


def add_cli(subparsers: Any) -> None:
    """Add ``report`` and ``compare`` to the ``taskgrove`` command line."""
    report = subparsers.add_parser(
        "report",
        help="tables and an HTML report of one or more runs",
        description="Scores of every task and group of the given runs, with 95% intervals.",
        epilog=REPORT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument(
        "runs",
        nargs="*",
        metavar="RUN_DIR",
        help="run directories or run ids (or a training dir holding comparison.json)",
    )
    report.add_argument(
        "--format", choices=("table", "markdown", "csv", "json"), default=None, help="text output (default: table)"
    )
    report.add_argument("--output", "-o", metavar="FILE", help="write the text output to FILE instead of stdout")
    report.add_argument("--html", metavar="DIR", help="write the static HTML report to DIR/index.html")
    report.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="LABEL=RUN_DIR",
        help="add a run under a label (base, single_<task>_<cfg>, <type>_<cfg>); builds the training heatmap",
    )
    report.add_argument(
        "--comparison", metavar="FILE_OR_DIR", help="a training comparison.json (or the folder holding it)"
    )
    report.add_argument(
        "--transfer", metavar="FILE_OR_DIR", help="a transfer.json (default: the one in a given folder)"
    )
    report.add_argument("--title", default="taskgrove report", help="title of the HTML report")
    report.add_argument("--no-samples", action="store_true", help="leave the sample browser out of the HTML report")
    report.add_argument(
        "--max-chars",
        type=int,
        default=2000,
        metavar="N",
        help="clip each text in the sample browser to about N characters",
    )
    report.add_argument(
        "--resamples", type=int, default=1000, metavar="N", help="bootstrap resamples for group intervals"
    )
    report.add_argument(
        "--output-dir", "--output_dir", dest="output_dir", default="results", help="where run ids are looked up"
    )
    report.set_defaults(handler=run_report)

    compare = subparsers.add_parser(
        "compare",
        help="paired per-task differences between two runs, with significance",
        description="B - A per task over samples matched by id: paired bootstrap 95% CI and p-value, McNemar exact and mid-p for 0/1 scores; "
        "then every node of the task tree (leaves and groups pooling their tasks' items) with paired bootstrap p, "
        "Benjamini-Hochberg q and a verdict.",
    )
    compare.add_argument("run_a", metavar="RUN_A")
    compare.add_argument("run_b", metavar="RUN_B")
    compare.add_argument("--format", choices=("table", "markdown", "json"), default="table")
    compare.add_argument("--output", "-o", metavar="FILE")
    compare.add_argument(
        "--resamples", type=int, default=10000, metavar="N", help="paired bootstrap resamples (default 10000)"
    )
    compare.add_argument("--seed", type=int, default=0)
    compare.add_argument(
        "--view",
        choices=("both", "tasks", "nodes"),
        default="both",
        help="per-task table, the tree of every node with BH-adjusted q-values ('what really moved'), or both",
    )
    compare.add_argument("--output-dir", "--output_dir", dest="output_dir", default="results")
    compare.set_defaults(handler=run_compare)


def resolve_run_dir(text: str, output_dir: str) -> Path:
    """A run directory given as a path or as a run id under ``output_dir``."""
    for candidate in (Path(text), Path(output_dir) / text):
        if candidate.is_dir():
            return candidate
    raise ConfigError(f"No run directory {text!r} (looked in {text} and {Path(output_dir) / text})")


def parse_label(item: str) -> tuple[str, str]:
    """``LABEL=RUN_DIR`` -> (label, run dir)."""
    label, sep, path = item.partition("=")
    if not sep or not label.strip() or not path.strip():
        raise ConfigError(f"--label {item!r}: expected LABEL=RUN_DIR, e.g. base=results/20261122-103419-3fa2")
    return label.strip(), path.strip()


def _emit(text: str, output: str | None) -> None:
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text, encoding="utf-8")
        print(f"wrote {output}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def _terminal() -> tuple[int | None, bool]:
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns, True
    return None, False


def run_report(args: argparse.Namespace) -> int:
    """``taskgrove report``: text output and/or the HTML report."""
    from taskgrove.report.collect import load_runs
    from taskgrove.report.curves import curve_text, curves_of_comparison, find_curve_files, load_curve
    from taskgrove.report.leaderboard import build_leaderboard
    from taskgrove.report.tables import render_leaderboard
    from taskgrove.report.training import comparison_from_runs, find_comparison_file, load_comparison
    from taskgrove.report.training_text import comparison_text, is_training_output, training_output
    from taskgrove.report.transfer import find_transfer_file

    comparison_path = args.comparison
    transfer_path = args.transfer
    specs: list[tuple[str | Path, str | None]] = []
    curve_files: list[Path] = []
    for item in args.runs:
        path = Path(item)
        if path.is_dir() and find_transfer_file(path) is not None:
            if transfer_path and Path(transfer_path).resolve() != path.resolve():
                raise ConfigError(f"two transfer matrices given ({transfer_path} and {item}); give one")
            transfer_path = str(path)
            if not is_training_output(path):  # the matrix alone: its runs are added below
                continue
        curve_files += find_curve_files(path)
        if is_training_output(path):  # checkpoints/: its comparison, else its evaluation runs by model name
            found, evaluations = training_output(path)
            if found is not None and not comparison_path:
                comparison_path = str(found)
            specs += [(run_dir, label) for run_dir, label in evaluations]
            continue
        if path.is_dir() and (path / "comparison.json").is_file() and not (path / "run.json").exists():
            if comparison_path:
                raise ConfigError(f"two training comparisons given ({comparison_path} and {item}); give one")
            comparison_path = item
            continue
        specs.append((resolve_run_dir(item, args.output_dir), None))
    labelled = [parse_label(item) for item in args.label]
    specs += [(resolve_run_dir(path, args.output_dir), label) for label, path in labelled]
    comparison = None
    if comparison_path:
        if find_comparison_file(comparison_path) is None:
            raise ConfigError(f"--comparison {comparison_path}: no comparison.json there")
        comparison = load_comparison(comparison_path)
        curve_files += curves_of_comparison(comparison.source) if comparison.source else []
        known = {Path(p).resolve() for p, _ in specs}
        for model in comparison.models:
            if model.run_dir is None or model.run_dir.resolve() in known:
                continue
            if model.run_dir.is_dir():
                specs.append((model.run_dir, model.label))
            else:
                print(
                    f"warning: {comparison.source}: run_dir of {model.label!r} ({model.run_dir}) does not exist; its samples are left out",
                    file=sys.stderr,
                )
    transfer = _transfer_runs(transfer_path, specs) if transfer_path else None
    if not specs and comparison is None:
        raise ConfigError("name at least one run directory (or --label LABEL=RUN_DIR, or --comparison FILE)")
    curves = [load_curve(file, n_resamples=args.resamples) for file in dict.fromkeys(curve_files)]
    runs = load_runs(specs)
    if comparison is None and labelled:
        comparison = comparison_from_runs([run for run in runs if run.user_label])
    board = build_leaderboard(runs, n_resamples=args.resamples)
    if args.html:
        from taskgrove.report.html import HtmlOptions, write_html
        from taskgrove.report.transfer_html import transfer_section

        extra = [("transfer", "Transfer", transfer_section(transfer))] if transfer is not None else []
        if len(runs) == 2 and comparison is None and transfer is None:
            extra.append(("moved", "What moved", _moved_section(runs, args.resamples)))
        path = write_html(
            board,
            args.html,
            comparison,
            HtmlOptions(title=args.title, samples=not args.no_samples, max_chars=args.max_chars),
            curves,
            extra,
        )
        print(f"HTML report: {path}", file=sys.stderr)
    if not args.html or args.format or args.output:
        width, color = _terminal() if not args.output else (None, False)
        text = render_leaderboard(board, args.format or "table", width=width, color=color)
        if (args.format or "table") == "table":
            text += ("\n" + comparison_text(comparison)) if comparison is not None else ""
            text += "".join("\n" + curve_text(curve) for curve in curves)
        if transfer is not None and (args.format or "table") in ("table", "markdown"):
            from taskgrove.report.tables import grid_markdown, grid_text
            from taskgrove.report.transfer import transfer_grid

            grid = transfer_grid(transfer)
            text += "\n" + (
                grid_markdown(grid) if args.format == "markdown" else grid_text(grid, width=width, color=color)
            )
        _emit(text, args.output)
    return 0


def _transfer_runs(where: str, specs: list[tuple[str | Path, str | None]]) -> dict[str, Any]:
    """Load a transfer matrix and add its evaluation runs (base and adapters) to ``specs`` when missing."""
    from taskgrove.report.transfer import load_transfer

    data = load_transfer(where)
    folder = Path(data["source_file"]).parent
    known = {Path(p).resolve() for p, _ in specs}
    for label, run_dir in [("base", data["base"]["run_dir"]), *((s["label"], s["run_dir"]) for s in data["sources"])]:
        path = folder / run_dir
        if not path.is_dir():
            raise ConfigError(f"{data['source_file']}: the evaluation run of {label} ({path}) does not exist")
        if path.resolve() not in known:
            specs.append((path, label))
            known.add(path.resolve())
    return data


def _moved_section(runs: list[Any], resamples: int) -> str:
    """The "what really moved" HTML section for two runs (B = the second)."""
    from taskgrove.report.compare import compare_runs
    from taskgrove.report.nodes import compare_nodes
    from taskgrove.report.transfer_html import nodes_section

    comparison = compare_runs(runs[0], runs[1], n_resamples=resamples)
    return nodes_section(comparison, compare_nodes(comparison, n_resamples=resamples))


def run_compare(args: argparse.Namespace) -> int:
    """``taskgrove compare RUN_A RUN_B``."""
    from taskgrove.report.collect import load_runs
    from taskgrove.report.compare import compare_runs, render_comparison
    from taskgrove.report.nodes import compare_nodes, render_with_nodes

    if args.resamples < 1:
        raise ConfigError("--resamples must be at least 1")
    run_a, run_b = load_runs(
        [(resolve_run_dir(args.run_a, args.output_dir), None), (resolve_run_dir(args.run_b, args.output_dir), None)]
    )
    comparison = compare_runs(run_a, run_b, n_resamples=args.resamples, seed=args.seed)
    width, color = _terminal() if not args.output else (None, False)
    if args.view == "tasks":
        text = render_comparison(comparison, args.format, width=width, color=color)
    else:
        nodes = compare_nodes(comparison, n_resamples=args.resamples, seed=args.seed)
        text = render_with_nodes(comparison, nodes, args.format, tasks=args.view == "both", width=width, color=color)
    _emit(text, args.output)
    return 0
