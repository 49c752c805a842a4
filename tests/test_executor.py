"""The multi-task executor: failure isolation, MultiTaskError, sample errors, concurrency, modes."""

import json
from pathlib import Path

import pytest

from scripted import ScriptedModel
from taskgrove.config import build_config
from taskgrove.errors import ConfigError, MultiTaskError
from taskgrove.registry import TaskRegistry
from taskgrove.runner.executor import Executor
from taskgrove.runner.progress import PlainProgress
from taskgrove.tasks.builtin import new_registry

FIXTURES = Path(__file__).parent / "fixtures" / "core"


@pytest.fixture
def registry() -> TaskRegistry:
    reg = new_registry()
    reg.add_path(FIXTURES / "tasks.py")
    return reg


def number_model(**kwargs) -> ScriptedModel:
    def reply(messages, tools):
        number = int(messages[-1]["content"].split()[-1])
        return "wrong" if number % 5 == 0 else str(number)

    return ScriptedModel(reply, **kwargs)


def execute(registry, tmp_path, model=None, **values):
    values.setdefault("mode", "run")
    values.setdefault("output_dir", str(tmp_path / "results"))
    config = build_config(values)
    executor = Executor(config, registry, model=model, progress=PlainProgress(interval=1e9))
    return executor, executor.run


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_two_failing_tasks_among_four_others_complete(registry, tmp_path):
    executor, run = execute(
        registry,
        tmp_path,
        number_model(),
        tasks=["core/count", "core/broken_dataset", "core/flaky", "core/always_fails"],
    )
    with pytest.raises(MultiTaskError) as err:
        run()
    assert set(err.value.errors) == {"core/broken_dataset", "core/always_fails"}
    assert str(err.value) == (
        "Errors in tasks: core/broken_dataset, core/always_fails\n\n"
        "Task: core/broken_dataset\n"
        "Error: FileNotFoundError: Could not find entity dictionary at /path/to/dict.json\n\n"
        "Task: core/always_fails\n"
        "Error: TaskFailed: 5 of 5 samples failed (max_sample_errors allows 4); "
        "first: ValueError: Invalid sentiment label detected in results"
    )
    root = executor.store.root
    count = json.loads((root / "core" / "count" / "metrics.json").read_text())
    assert count["n"] == 40 and count["metrics"]["reward"]["value"] == pytest.approx(32 / 40)
    flaky = json.loads((root / "core" / "flaky" / "metrics.json").read_text())
    # the 4 failed samples count as wrong (the default): 32 right of 40, not of 36
    assert flaky["n"] == 40 and flaky["n_failed"] == 4 and flaky["failed_samples"] == "wrong"
    assert flaky["metrics"]["reward"]["value"] == pytest.approx(32 / 40)
    status = json.loads((root / "run.json").read_text())
    assert status["status"] == "failed"
    assert {name: info["status"] for name, info in status["tasks"].items()} == {
        "core/count": "completed",
        "core/broken_dataset": "failed",
        "core/flaky": "completed",
        "core/always_fails": "failed",
    }


def test_sample_errors_are_recorded_on_their_samples(registry, tmp_path):
    executor, run = execute(registry, tmp_path, number_model(), tasks=["core/flaky"])
    run()
    records = lines(executor.store.root / "core" / "flaky" / "samples.jsonl")
    failed = sorted(r["id"] for r in records if r["error"])
    assert failed == ["s0", "s10", "s20", "s30"]
    by_id = {r["id"]: r for r in records}
    assert by_id["s10"]["error"] == {"type": "RuntimeError", "message": "flaky sample s10"}
    assert by_id["s11"]["error"] is None and by_id["s11"]["reward"] == 1.0
    assert all(r["outputs"] == [] for r in records if r["error"])


def test_task_fails_past_max_sample_errors_and_stops_early(registry, tmp_path):
    executor, run = execute(
        registry,
        tmp_path,
        number_model(),
        tasks=["core/flaky"],
        max_sample_errors=1,
        concurrency=1,
        task_config={"flaky": {"options": {"size": 100}}},
    )
    with pytest.raises(MultiTaskError, match="2 of .* samples failed"):
        run()
    records = lines(executor.store.root / "core" / "flaky" / "samples.jsonl")
    assert len(records) < 100  # stopped instead of running everything


def test_concurrency_is_bounded(registry, tmp_path):
    model = number_model(delay=0.01)
    execute(registry, tmp_path, model, tasks=["core/count"], concurrency=6)[1]()
    assert model.max_active == 6
    assert len(model.calls) == 40


def test_run_settings_and_task_overrides_reach_the_model(registry, tmp_path):
    model = number_model()
    execute(
        registry,
        tmp_path,
        model,
        tasks=["core/count", "core/flaky"],
        max_tokens=64,
        temperature=0.3,
        top_k=5,
        task_config={"flaky": {"max_tokens": 16, "stop": ["\n"]}},
    )[1]()
    count_calls = [c for c in model.calls if c["sampling"]["max_tokens"] == 64]
    flaky_calls = [c for c in model.calls if c["sampling"]["max_tokens"] == 16]
    assert len(count_calls) == 40 and len(flaky_calls) == 36
    assert count_calls[0]["sampling"] == {
        "max_tokens": 64,
        "temperature": 0.3,
        "top_p": 0.9,
        "top_k": 5,
        "repetition_penalty": 1.0,
        "seed": 0,
    }
    assert flaky_calls[0]["sampling"]["stop"] == ["\n"]


def test_limit_and_num_samples(registry, tmp_path):
    executor, run = execute(registry, tmp_path, number_model(), tasks=["core/count"], limit=7, num_samples=3)
    run()
    records = lines(executor.store.root / "core" / "count" / "samples.jsonl")
    assert len(records) == 7
    assert all(len(r["outputs"]) == 3 for r in records)
    assert records[0]["input"] == [{"role": "user", "content": "say 0"}]
    assert records[1]["outputs"][0]["messages"][0]["content"] == "1"


def test_store_layout_and_saved_config(registry, tmp_path):
    executor, run = execute(registry, tmp_path, number_model(), tasks=["count"], max_tokens=12)
    run()
    root = executor.store.root
    import yaml

    saved = yaml.safe_load((root / "config.yaml").read_text())
    assert saved["max_tokens"] == 12 and saved["tasks"] == ["count"] and saved["top_p"] == 0.9
    record = lines(root / "core" / "count" / "samples.jsonl")[3]
    assert set(record) >= {"id", "input", "outputs", "reference", "reward", "metrics", "error", "timing"}
    assert record["reference"] == "3" and record["reward"] == 1.0
    metrics = json.loads((root / "core" / "count" / "metrics.json").read_text())
    low, high = metrics["metrics"]["reward"]["ci_low"], metrics["metrics"]["reward"]["ci_high"]
    assert low < 0.8 < high


def test_inference_mode_writes_no_metrics(registry, tmp_path):
    executor, run = execute(registry, tmp_path, number_model(), tasks=["core/count"], mode="inference")
    run()
    assert (executor.store.root / "core" / "count" / "samples.jsonl").exists()
    assert not (executor.store.root / "core" / "count" / "metrics.json").exists()


def test_evaluate_rescores_stored_outputs_without_the_model(registry, tmp_path):
    first, run = execute(registry, tmp_path, number_model(), tasks=["core/count"], mode="inference")
    run()
    forbidden = ScriptedModel(lambda m, t: AssertionError("no model calls in evaluate"))
    second, run = execute(
        registry, tmp_path, forbidden, tasks=["core/count"], mode="evaluate", file_name=str(first.store.root)
    )
    run()
    assert forbidden.calls == []
    metrics = json.loads((second.store.root / "core" / "count" / "metrics.json").read_text())
    assert metrics["metrics"]["reward"]["value"] == pytest.approx(32 / 40)
    assert metrics["model"] == "scripted"  # the model that produced the outputs, not "no model"
    assert json.loads((first.store.root / "run.json").read_text())["model"] == "scripted"
    # a samples file works as the source too
    third, run = execute(
        registry,
        tmp_path,
        None,
        tasks=["core/count"],
        mode="evaluate",
        file_name=str(first.store.root / "core" / "count" / "samples.jsonl"),
    )
    run()
    assert json.loads((third.store.root / "core" / "count" / "metrics.json").read_text())["n"] == 40


def test_evaluate_detects_changed_prompts(registry, tmp_path):
    first, run = execute(registry, tmp_path, number_model(), tasks=["core/count"], mode="inference", limit=3)
    run()
    path = first.store.root / "core" / "count" / "samples.jsonl"
    records = lines(path)
    records[0]["input"][0]["content"] = "something else"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    _second, run = execute(
        registry,
        tmp_path,
        None,
        tasks=["core/count"],
        mode="evaluate",
        file_name=str(first.store.root),
        max_sample_errors=0,
    )
    with pytest.raises(MultiTaskError, match="ReplayMismatch"):
        run()


def test_evaluate_names_tasks_missing_from_the_source(registry, tmp_path):
    first, run = execute(registry, tmp_path, number_model(), tasks=["core/count"], mode="inference", limit=2)
    run()
    with pytest.raises(ConfigError, match="no stored samples for: core/flaky"):
        execute(
            registry,
            tmp_path,
            None,
            tasks=["core/count", "core/flaky"],
            mode="evaluate",
            file_name=str(first.store.root),
        )


def test_unknown_task_fails_before_anything_runs(registry, tmp_path):
    model = number_model()
    with pytest.raises(ConfigError, match="Task 'cuont' not supported"):
        execute(registry, tmp_path, model, tasks=["core/count", "cuont"])
    assert model.calls == []
    assert not (tmp_path / "results").exists()


def test_task_config_must_name_a_task_of_the_run(registry, tmp_path):
    with pytest.raises(ConfigError, match="not among the tasks"):
        execute(registry, tmp_path, number_model(), tasks=["core/count"], task_config={"flaky": {"limit": 2}})


def test_model_is_loaded_after_the_data_and_only_once(registry, tmp_path):
    calls = []

    def factory(config):
        calls.append(config.model)
        raise OSError("weights not found")

    config = build_config(
        {"mode": "run", "tasks": ["core/broken_dataset", "core/count", "core/flaky"], "output_dir": str(tmp_path)}
    )
    executor = Executor(config, registry, model_factory=factory, progress=PlainProgress(interval=1e9))
    with pytest.raises(MultiTaskError) as err:
        executor.run()
    assert isinstance(err.value.errors["core/broken_dataset"], FileNotFoundError)  # failed before any model load
    assert str(err.value.errors["core/count"]) == str(err.value.errors["core/flaky"]) == "weights not found"
    assert len(calls) == 1
