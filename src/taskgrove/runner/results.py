"""A task's ``metrics.json``: its scores under the run's failed-samples policy, and where they
come from (task version, spec hash, scoring method, prompt settings, resample count).

Failed samples (a model or task error left a record without a scored reply) count as **wrong**
by default: each scores 0 on the reward and on every per-sample metric, and its outputs carry no
prediction (invalid for classification, empty text for BLEU/ROUGE). ``failed_samples: exclude``
leaves them out of every score, as earlier versions did. Either way ``n_failed`` says how many
there were and ``failed_samples`` which policy applied.

Every task directory also gets ``task.json`` when the task starts (in every mode, inference
included): the task's version, spec hash and the prompt settings the run used. ``evaluate`` reads
it from the run it re-scores, inherits those settings and refuses a task whose spec changed
since (see :func:`check_spec`).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from taskgrove.config import RunConfig, TaskOverrides
from taskgrove.core import Task
from taskgrove.errors import ConfigError
from taskgrove.runs.store import TaskStore, atomic_write, dumps

TASK_FILE = "task.json"
#: The prompt settings a run records and ``evaluate`` inherits.
PROMPT_SETTINGS = ("prompt_format", "num_fewshot", "prompt_style", "seed", "split")
SCALE_NOTE = "every metric in [0, 1] (MCC in [-1, 1]); BLEU/chrF are sacrebleu's score / 100"


def task_identity(task: Task) -> dict[str, Any]:
    """The task's ``version`` and ``spec_hash`` (``None`` when it has none)."""
    return {"version": int(getattr(task, "version", 1)), "spec_hash": task.spec_hash()}


def prompt_settings(settings: TaskOverrides, task: Task) -> dict[str, Any]:
    """The prompt settings the task ran with (its own ``prompt_style`` when the run set none)."""
    values = {key: getattr(settings, key) for key in PROMPT_SETTINGS}
    if values["prompt_style"] is None:  # tasks without prompt styles (Python tasks) record None
        values["prompt_style"] = getattr(task, "prompt_style", None)
    return values


def write_task_file(store: TaskStore, task: Task, settings: TaskOverrides) -> None:
    """Record the task's identity and prompt settings in its directory (``task.json``)."""
    info = {"task": task.name, **task_identity(task), "settings": prompt_settings(settings, task)}
    atomic_write(store.directory / TASK_FILE, dumps(info))


def read_task_file(store: TaskStore) -> dict[str, Any] | None:
    """The ``task.json`` beside a stored task's samples, if any."""
    import orjson

    path = store.directory / TASK_FILE
    if not path.is_file():
        return None
    try:
        data = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError:
        raise ConfigError(f"{path}: not valid JSON") from None
    return data if isinstance(data, dict) else None


def check_spec(name: str, task: Task, stored: Mapping[str, Any] | None, *, rescore_changed: bool) -> None:
    """Refuse (one line) to re-score ``name`` when its spec hash differs from the stored one."""
    if stored is None or stored.get("spec_hash") is None or rescore_changed:
        return
    if stored.get("task") not in (None, name):
        return  # samples of another task: the executor refuses them, naming the task
    current = task.spec_hash()
    if current != stored["spec_hash"]:
        raise ConfigError(
            f"task {name} changed since its outputs were produced (spec hash {stored['spec_hash']} -> {current}, "
            f"version {stored.get('version')} -> {getattr(task, 'version', 1)}); "
            "pass --rescore-changed to score them with the current spec anyway"
        )


def source_identities(registry: Any, sources: Mapping[str, Any], rescore_changed: bool) -> dict[str, dict[str, Any]]:
    """Evaluate: the recorded ``task.json`` of each source task (FLaME CSVs and older runs carry
    none); refuses (:func:`check_spec`) a task whose spec changed since, unless ``rescore_changed``."""
    found = {}
    for name, store in sources.items():
        info = read_task_file(store) if isinstance(store, TaskStore) else None
        if info is not None and info.get("task") in (None, name):  # another task's: refused by name later
            check_spec(name, registry.create(name), info, rescore_changed=rescore_changed)
            found[name] = info
    return found


def inherited_settings(settings: TaskOverrides, source: Mapping[str, Any] | None) -> TaskOverrides:
    """``settings`` with the prompt settings the source run recorded (evaluate), if any."""
    if source is None:
        return settings
    recorded = {k: v for k, v in (source.get("settings") or {}).items() if k in TaskOverrides.model_fields}
    return TaskOverrides(**{**settings.model_dump(), **recorded})


def failed_as_wrong(record: Mapping[str, Any], outputs: int, metric_keys: Sequence[str]) -> dict[str, Any]:
    """A failed sample's record as a wrong answer: reward 0, every per-sample metric 0, and
    ``outputs`` outputs without a prediction."""
    return {
        **record,
        "reward": 0.0,
        "metrics": dict.fromkeys(metric_keys, 0.0),
        "outputs": [{"metadata": {"prediction": None}} for _ in range(max(outputs, 1))],
    }


def _metric_keys(records: Sequence[Mapping[str, Any]]) -> list[str]:
    keys: dict[str, None] = {}
    for record in records:
        for key, value in (record.get("metrics") or {}).items():
            if isinstance(value, (int, float)):
                keys.setdefault(key)
    return list(keys)


def scoring_method(records: Sequence[Mapping[str, Any]]) -> str | None:
    """``loglikelihood`` when the stored outputs were chosen by scoring choices, ``generation``
    when replies were generated, ``None`` when there are no outputs."""
    methods = set()
    for record in records:
        for output in record.get("outputs") or ():
            metadata = output.get("metadata") or {}
            methods.add("loglikelihood" if "loglikelihoods" in metadata else "generation")
    return " + ".join(sorted(methods)) if methods else None


def score_task(
    task: Task,
    records: list[dict[str, Any]],
    failed: list[dict[str, Any]],
    *,
    policy: str,
    n_resamples: int,
    num_samples: int,
) -> dict[str, dict[str, float]]:
    """The task's metrics over ``records`` plus, under ``policy == "wrong"``, the ``failed``
    records scored as wrong."""
    scored = records
    if policy == "wrong" and failed:
        keys = _metric_keys(records)
        scored = records + [failed_as_wrong(r, num_samples, keys) for r in failed]
    if not takes_resamples(task):
        raise ConfigError(
            f"task {task.name}: its aggregate() takes no n_resamples, so the run's bootstrap_resamples cannot apply; "
            "add the keyword (see Task.aggregate)"
        )
    return task.aggregate(scored, n_resamples=n_resamples)


def takes_resamples(task: Task) -> bool:
    """Whether the task's ``aggregate`` accepts ``n_resamples``."""
    parameters = inspect.signature(task.aggregate).parameters.values()
    return any(p.name == "n_resamples" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def metric_ranges(task: Task, metrics: Mapping[str, Any]) -> dict[str, list[float]]:
    """The declared range of each stored metric the run knows one for: registry metrics by name,
    ``reward`` from the task's ``reward_range``, ``unparsable``/``acc_norm``/``pass@k`` on [0, 1]."""
    from taskgrove.metrics.registry import metric_range

    ranges: dict[str, list[float]] = {}
    for key in metrics:
        if key == "reward":
            found = getattr(task, "reward_range", None)
        elif key in ("parsed", "unparsable", "acc_norm", "acc_bytes") or key.startswith("pass@"):
            found = (0.0, 1.0)
        else:
            found = metric_range(key)
        if found is not None:
            ranges[key] = [float(found[0]), float(found[1])]
    return ranges


def metrics_document(
    task: Task,
    name: str,
    *,
    run_id: str,
    model: str | None,
    config: RunConfig,
    settings: TaskOverrides,
    records: list[dict[str, Any]],
    failed: list[dict[str, Any]],
    source: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The content of a task's ``metrics.json``.

    ``source`` (evaluate mode) is the ``task.json`` of the run whose outputs are scored: its
    prompt settings are those recorded, and both spec hashes are kept when they differ.
    """
    policy = config.failed_samples
    metrics = score_task(
        task,
        records,
        failed,
        policy=policy,
        n_resamples=config.bootstrap_resamples,
        num_samples=settings.num_samples or 1,
    )
    identity = task_identity(task)
    document: dict[str, Any] = {
        "task": name,
        "run_id": run_id,
        "model": model,
        **identity,
        "scoring": scoring_method(records),
        **prompt_settings(settings, task),
        "n": len(records) + (len(failed) if policy == "wrong" else 0),
        "n_failed": len(failed),
        "failed_samples": policy,
        "num_samples": settings.num_samples or 1,
        "bootstrap_resamples": config.bootstrap_resamples,
        "scale": SCALE_NOTE,
        "ranges": metric_ranges(task, metrics),
        "primary_metric": task.primary_metric,
        "metrics": metrics,
    }
    if source is not None:
        document.update(source.get("settings") or {})
        document["source"] = {"version": source.get("version"), "spec_hash": source.get("spec_hash")}
        if source.get("spec_hash") != identity["spec_hash"]:
            document["rescored_changed_spec"] = True
    return document
