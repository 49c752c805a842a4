"""One sample's work: a job, running it into a stored record (failures recorded, never raised)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from taskgrove.config import SAMPLING_KEYS, TaskOverrides
from taskgrove.core import Task, TrajectoryGroup
from taskgrove.runner.replay import ReplayModel
from taskgrove.runs.records import build_record, rescored_record


@dataclass
class Job:
    """One scenario to run (or, with ``stored``, one stored record to score again)."""

    sample_id: str
    index: int
    scenario: Any
    model: Any
    num_samples: int
    stored: dict[str, Any] | None = None


async def complete(task: Task, job: Job, rescore: Callable[[dict[str, Any]], Any] | None) -> dict[str, Any]:
    """Run (or, in evaluate mode, score again) one job and return its record; a failure is
    recorded on the sample, never raised."""
    stored = job.stored
    if stored is not None and stored.get("error"):
        return stored  # a stored failure stays a failure: evaluate calls no model
    started = time.time()
    began = time.perf_counter()
    group: TrajectoryGroup | None = None
    error: Exception | None = None
    try:
        if stored is not None and rescore is not None:
            rescored = rescore(stored)
            if rescored is not None:
                return rescored_record(stored, rescored)
        model = job.model if stored is None else ReplayModel.from_record(stored)
        group = await task.run(model, job.scenario, job.num_samples)
    except Exception as exc:
        error = exc
    record = build_record(
        task,
        job.scenario,
        job.sample_id,
        job.index,
        group,
        error=error,
        started=started,
        seconds=time.perf_counter() - began,
    )
    if stored is not None:  # the stored reply's cost and time, not the re-scoring's
        record["timing"] = stored.get("timing", record["timing"])
        record["usage"] = stored.get("usage", record["usage"])
    return record


def sampling_of(settings: TaskOverrides) -> dict[str, Any]:
    return {key: getattr(settings, key) for key in SAMPLING_KEYS}
