"""The transfer matrix: what an adapter trained on one leaf does to every leaf and group of the tree.

Rows are **sources** (one adapter per trained leaf), columns are **targets** (every leaf and
group of the evaluated tree). A cell is ``source - base`` on the target, over items matched by
sample id, exactly as ``taskgrove compare BASE SOURCE`` tests that node
(:func:`taskgrove.report.nodes.compare_nodes`): a leaf is its task's matched pairs, a group pools
its tasks' items (each item weighs the same), the 95% interval and the p-value come from the
paired bootstrap resampling pairs within each task. The p-values of **all cells of the matrix**
are then adjusted together with Benjamini–Hochberg (``q``), so a cell's verdict
(``helps`` / ``hurts`` when ``q < 0.05``, else ``no evidence``) accounts for every test drawn.

A group with exactly the members of a deeper node (``bigbench/mathematics`` holding only
``bigbench/mathematics/arithmetic``, a group over a single leaf) would repeat that node's column
and is left out. Rows are ordered by hierarchical clustering of their delta profiles
(:func:`cluster_order`), so sources that help (or hurt) the same targets sit together.

``transfer.json``::

    {"kind": "transfer", "base": {"label", "run_dir"},
     "sources": [{"task", "label", "path", "run_dir"}],
     "targets": [{"node", "kind": "leaf" | "group", "depth", "members"}],
     "cells": {source_task: {target_node: {"n", "mean_base", "mean_source", "diff", "ci_low", "ci_high",
                                          "p_value", "q_value", "verdict", "note"}}},
     "row_order": [source_task, ...], "row_order_method": "...", "test": {...}, "settings": {...}}
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskgrove.errors import ConfigError
from taskgrove.report.collect import Run
from taskgrove.report.compare import ALPHA, compare_runs
from taskgrove.report.nodes import NodeResult, compare_nodes
from taskgrove.report.stats import benjamini_hochberg
from taskgrove.report.tables import Grid

TRANSFER_JSON = "transfer.json"
TRANSFER_MD = "transfer.md"


@dataclass(frozen=True)
class Target:
    """A column of the matrix: a leaf or a group of the tree."""

    node: str
    kind: str
    depth: int
    members: tuple[str, ...]


def verdict(diff: float | None, q_value: float | None) -> str:
    """``helps`` / ``hurts`` when ``q < 0.05`` (by the sign of the difference), else ``no evidence``."""
    if diff is None or q_value is None:
        return "not tested"
    if q_value < ALPHA and diff != 0:
        return "helps" if diff > 0 else "hurts"
    return "no evidence"


def _targets(nodes: Sequence[NodeResult]) -> list[Target]:
    """The columns: every node, less groups that repeat a deeper node's members."""
    targets = [Target(n.node, n.kind, n.depth, tuple(sorted(n.members + n.left_out))) for n in nodes]
    kept = []
    for t in targets:
        deeper = [o for o in targets if o is not t and o.members == t.members and o.depth > t.depth]
        if t.kind == "group" and (deeper or (len(t.members) == 1 and t.members[0] in {o.node for o in targets})):
            continue
        kept.append(t)
    return kept


def cluster_order(profiles: Sequence[Sequence[float]]) -> tuple[list[int], str]:
    """Row order from average-linkage hierarchical clustering of the rows' delta profiles
    (euclidean, scipy's optimal leaf ordering), and a sentence saying how the order was made."""
    if len(profiles) < 3:
        return list(range(len(profiles))), f"as trained ({len(profiles)} row(s): nothing to cluster)"
    try:
        import numpy as np
        from scipy.cluster.hierarchy import leaves_list, linkage  # type: ignore[import-untyped]
    except ImportError:
        return list(range(len(profiles))), "as trained (scipy is not installed: rows are not clustered)"
    matrix = np.nan_to_num(np.asarray(profiles, dtype=np.float64), nan=0.0)
    tree = linkage(matrix, method="average", metric="euclidean", optimal_ordering=True)
    return [int(i) for i in leaves_list(tree)], (
        "hierarchical clustering of the rows' deltas (scipy average linkage, euclidean, optimal leaf order; "
        "untested cells count as 0)"
    )


def _cell(node: NodeResult) -> dict[str, Any]:
    p = node.paired
    return {
        "n": p.n if p else 0,
        "mean_base": p.mean_a if p else None,
        "mean_source": p.mean_b if p else None,
        "diff": p.diff if p else None,
        "ci_low": p.ci_low if p else None,
        "ci_high": p.ci_high if p else None,
        "p_value": p.p_value if p else None,
        "q_value": None,
        "verdict": "not tested",
        "note": node.note,
    }


def transfer_matrix(
    base: Run,
    sources: Mapping[str, Run],
    *,
    n_resamples: int = 10000,
    seed: int = 0,
) -> dict[str, Any]:
    """The matrix of ``sources`` (source task -> its adapter's evaluation run) against ``base``.

    Returns the ``transfer.json`` data without ``settings``; paths are the runs' roots.
    """
    if not sources:
        raise ConfigError("a transfer matrix needs at least one source adapter")
    cells: dict[str, dict[str, dict[str, Any]]] = {}
    targets: list[Target] = []
    for task, run in sources.items():
        comparison = compare_runs(base, run, n_resamples=n_resamples, seed=seed)
        nodes = compare_nodes(comparison, n_resamples=n_resamples, seed=seed)
        if not targets:
            targets = _targets(nodes)
        by_node = {n.node: n for n in nodes}
        cells[task] = {t.node: _cell(by_node[t.node]) for t in targets if t.node in by_node}
    tested = [c for row in cells.values() for c in row.values() if c["p_value"] is not None]
    for c, q in zip(tested, benjamini_hochberg([c["p_value"] for c in tested]), strict=True):
        c["q_value"] = q
        c["verdict"] = verdict(c["diff"], q)
    profiles = [[_number(cells[s].get(t.node, {}).get("diff")) for t in targets] for s in sources]
    order, method = cluster_order(profiles)
    names = list(sources)
    return {
        "kind": "transfer",
        "base": {"label": base.label, "run_dir": str(base.root)},
        "sources": [{"task": s, "label": sources[s].label, "run_dir": str(sources[s].root)} for s in names],
        "targets": [{"node": t.node, "kind": t.kind, "depth": t.depth, "members": list(t.members)} for t in targets],
        "cells": cells,
        "row_order": [names[i] for i in order],
        "row_order_method": method,
        "test": {
            "statistic": "source - base, items matched by sample id; groups pool their tasks' items",
            "interval": "95% paired bootstrap percentile interval, pairs resampled within each task",
            "p_value": "paired bootstrap, two-sided",
            "adjustment": f"Benjamini-Hochberg across all {len(tested)} tested cells of the matrix",
            "alpha": ALPHA,
            "n_resamples": n_resamples,
            "seed": seed,
        },
    }


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else math.nan


def write_transfer(directory: Path, data: dict[str, Any]) -> tuple[Path, Path]:
    """Write ``transfer.json`` (run dirs relative to it) and ``transfer.md`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)

    def relative(path: str) -> str:
        return os.path.relpath(path, directory.resolve()) if Path(path).is_absolute() else path

    stored = {
        **data,
        "base": {**data["base"], "run_dir": relative(data["base"]["run_dir"])},
        "sources": [{**s, "run_dir": relative(s["run_dir"])} for s in data["sources"]],
    }
    json_path = directory / TRANSFER_JSON
    tmp = directory / f".{TRANSFER_JSON}.tmp"
    tmp.write_text(json.dumps(stored, indent=2) + "\n", encoding="utf-8")
    tmp.replace(json_path)
    md_path = directory / TRANSFER_MD
    from taskgrove.report.tables import grid_markdown

    md_path.write_text(grid_markdown(transfer_grid(stored)), encoding="utf-8")
    return json_path, md_path


def find_transfer_file(path: str | Path) -> Path | None:
    """``path`` itself when it is a transfer.json file, else ``path/transfer.json`` when present."""
    candidate = Path(path)
    if candidate.is_file() and candidate.name.endswith(".json"):
        return candidate
    inside = candidate / TRANSFER_JSON
    return inside if inside.is_file() else None


def load_transfer(path: str | Path) -> dict[str, Any]:
    """A ``transfer.json`` (the file or its folder), checked to be one."""
    found = find_transfer_file(path)
    if found is None:
        raise ConfigError(f"no {TRANSFER_JSON} at {path}")
    try:
        data = json.loads(found.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{found}: not readable as JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("kind") != "transfer" or not isinstance(data.get("cells"), dict):
        raise ConfigError(f"{found} is not a transfer matrix (no kind 'transfer' with cells)")
    data["source_file"] = str(found)
    return data


def short_node(node: str, depth: int) -> str:
    """The last path segment of a node, or the whole name at the top."""
    return node if depth == 0 else node.rsplit("/", 1)[-1]


def cell_text(cell: Mapping[str, Any] | None) -> str:
    """``+0.120 [+0.050, +0.190] *`` (``*``: q < 0.05); ``-`` for an untested cell."""
    if not cell or cell.get("diff") is None:
        return "-"
    mark = " *" if cell.get("verdict") in ("helps", "hurts") else ""
    return f"{cell['diff']:+.3f} [{cell['ci_low']:+.3f}, {cell['ci_high']:+.3f}]{mark}"


def transfer_grid(data: Mapping[str, Any]) -> Grid:
    """The matrix as a grid: one row per source (clustered order), one column per target."""
    targets = data["targets"]
    header = [
        "source \\ target",
        *(f"{short_node(t['node'], t['depth'])}{' (group)' * (t['kind'] == 'group')}" for t in targets),
    ]
    rows = []
    for source in data["row_order"]:
        row = data["cells"].get(source, {})
        rows.append([short_node(source, 1), *(cell_text(row.get(t["node"])) for t in targets)])
    base_row = ["base score", *(_base_value(data, t["node"]) for t in targets)]
    test = data.get("test") or {}
    notes = [
        "Cells: adapter trained on the source minus the base model on the target, over items matched by sample id "
        "(groups pool their tasks' items), with the 95% paired-bootstrap interval; * q < 0.05 "
        f"({test.get('adjustment', 'Benjamini-Hochberg across the matrix')}).",
        f"Rows: {data.get('row_order_method', 'as trained')}.",
        "Targets: " + "; ".join(f"{short_node(t['node'], t['depth'])} = {t['node']}" for t in targets),
    ]
    return Grid("transfer matrix (source adapter - base)", header, [*rows, base_row], notes)


def _base_value(data: Mapping[str, Any], node: str) -> str:
    values = [
        row[node]["mean_base"] for row in data["cells"].values() if row.get(node, {}).get("mean_base") is not None
    ]
    return f"{values[0]:.3f}" if values else "-"
