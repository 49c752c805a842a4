"""A run's outcome as a short plain-text table (used after a run and by `taskgrove show`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from taskgrove.runs.lock import is_owned
from taskgrove.runs.store import RunStore


def _format_metric(entry: dict[str, Any] | None) -> str:
    if not entry:
        return "-"
    value, low, high = entry.get("value"), entry.get("ci_low"), entry.get("ci_high")
    if value is None:
        return "-"
    if low is None or high is None or low != low:
        return f"{value:.4f}"
    return f"{value:.4f} [{low:.4f}, {high:.4f}]"


def summary_lines(root: Path) -> list[str]:
    """One line per task: status, samples, failures, primary metric with its 95% interval, time."""
    store = RunStore(Path(root))
    status = store.read_status()
    tasks: dict[str, Any] = status.get("tasks") or {name: {} for name in store.task_names()}
    rows = [("task", "status", "samples", "failed", "metric", "value [95% CI]", "seconds")]
    total_samples = 0
    total_seconds = 0.0
    total_tokens = 0
    for name, info in tasks.items():
        metrics_path = store.task(name).metrics_path
        metrics = orjson.loads(metrics_path.read_bytes()) if metrics_path.exists() else {}
        primary = metrics.get("primary_metric", "reward")
        entry = (metrics.get("metrics") or {}).get(primary)
        rows.append(
            (
                name,
                str(info.get("status", "-")),
                str(info.get("samples", metrics.get("n", "-"))),
                str(info.get("failed_samples", metrics.get("n_failed", "-"))),
                primary if entry else "-",
                _format_metric(entry),
                f"{info.get('seconds', 0):.1f}",
            )
        )
        total_samples += int(info.get("samples") or 0)
        total_seconds += float(info.get("seconds") or 0)
        total_tokens += int((info.get("usage") or {}).get("completion_tokens", 0))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if isinstance(status.get("seconds"), (int, float)) and status["seconds"] > 0:
        total_seconds = float(status["seconds"])  # the run's wall time: tasks may overlap (whole-run scheduling)
    if total_seconds > 0:
        rate = f"{total_samples / total_seconds:.1f} samples/s"
        if total_tokens:
            rate += f", {total_tokens / total_seconds:.1f} generated tokens/s"
        lines.append(
            f"\nrun {status.get('run_id', store.run_id)} ({status.get('status', '?')}): {total_samples} samples in {total_seconds:.1f}s, {rate}"
        )
    if status.get("status") == "running" and not is_owned(store.root):
        lines.append(f"no process runs it any more (killed?): continue with --resume {store.run_id}")
    lines.append(f"results: {store.root}")
    return lines
