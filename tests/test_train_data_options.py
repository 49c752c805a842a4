"""Training takes the run's data options: --include-path, task_config / --task-config (sources,
options, limits per task), split and limit, validated as `run` validates them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from taskgrove.cli._common import parse_task_config
from taskgrove.config import build_config
from taskgrove.errors import ConfigError
from taskgrove.tasks.builtin import build_registry
from taskgrove.train.data import build_tasks
from taskgrove.train.evaluate import EvalSettings
from taskgrove.train.presets import resolve_train_config
from taskgrove.train.taskconfig import (
    evaluation_task_config,
    merge_task_config,
    resolve_task_config,
    task_settings,
)

CATALOG = Path(__file__).parent / "fixtures" / "catalog" / "treemark" / "similar"
SIMILAR = ["treemark/similar/mnli", "treemark/similar/qqp", "treemark/similar/sst2"]


def source(leaf: str) -> str:
    return f"file:{CATALOG / leaf}/{{split}}.jsonl"


@pytest.fixture(scope="module")
def registry():
    return build_registry(plugins=False)


def test_task_options_one_at_a_time_on_the_command_line() -> None:
    parsed = parse_task_config(
        [
            "sst2.options.source=file:data/{split}.jsonl",
            "sst2.options.source_options={format: jsonl}",
            "sst2.limit=4",
            "treemark/similar/qqp.options={source: 'file:q/{split}.jsonl'}",
        ]
    )
    assert parsed == {
        "sst2": {"options": {"source": "file:data/{split}.jsonl", "source_options": {"format": "jsonl"}}, "limit": 4},
        "treemark/similar/qqp": {"options": {"source": "file:q/{split}.jsonl"}},
    }
    with pytest.raises(ConfigError, match="TASK.KEY=VALUE"):
        parse_task_config(["sst2.options"])


def test_keys_resolve_to_full_names_and_validate_as_run_does(registry) -> None:
    resolved = resolve_task_config(registry, SIMILAR, {"sst2": {"limit": 2, "options": {"source": source("sst2")}}})
    assert resolved == {"treemark/similar/sst2": {"limit": 2, "options": {"source": source("sst2")}}}
    with pytest.raises(ConfigError) as ours:
        resolve_task_config(registry, SIMILAR, {"sst2": {"limt": 2}})
    with pytest.raises(ConfigError) as runs:
        build_config({"task_config": {"sst2": {"limt": 2}}})
    assert str(ours.value) == str(runs.value) and "did you mean limit" in str(ours.value)
    with pytest.raises(ConfigError, match="not among the tasks of this run"):
        resolve_task_config(registry, ["treemark/similar/sst2"], {"qqp": {"limit": 2}})
    with pytest.raises(ConfigError, match="names 3 tasks"):
        resolve_task_config(registry, SIMILAR, {"treemark/similar": {"limit": 2}})


def test_command_line_wins_over_yaml_per_task() -> None:
    yaml_layer = {"sst2": {"limit": 5, "options": {"source": "file:a/{split}.jsonl"}}, "qqp": {"limit": 3}}
    cli_layer = {"sst2": {"limit": 2}}
    assert merge_task_config(yaml_layer, cli_layer) == {
        "sst2": {"limit": 2, "options": {"source": "file:a/{split}.jsonl"}},
        "qqp": {"limit": 3},
    }


def test_tasks_read_their_overridden_source_with_their_own_split_and_limit(registry) -> None:
    task_config = resolve_task_config(
        registry,
        SIMILAR,
        {
            "sst2": {"options": {"source": source("sst2")}, "limit": 2},
            "qqp": {"options": {"source": source("qqp")}, "split": "val"},
        },
    )
    config = resolve_train_config(
        {name: registry.create(name) for name in SIMILAR}, cli={"task_config": task_config, "limit": 1}
    )
    tasks = build_tasks(registry, config.tasks, config)
    sst2 = task_settings(config, "treemark/similar/sst2")
    assert (sst2["split"], sst2["limit"]) == ("train", 2)
    rows = list(tasks["treemark/similar/sst2"].get_dataset("train"))
    assert rows[0]["input"].endswith("Sentence: a gorgeous , witty , seductive movie .")
    qqp = task_settings(config, "treemark/similar/qqp")
    assert (qqp["split"], qqp["limit"]) == ("val", 1)  # the run's limit, the task's split
    assert len(list(tasks["treemark/similar/qqp"].get_dataset(qqp["split"]))) == 4  # validation.jsonl
    # evaluation gets the options but not the training split/limit
    assert evaluation_task_config(config.task_config, ["treemark/similar/qqp"]) == {
        "treemark/similar/qqp": {"options": {"source": source("qqp")}}
    }


def test_a_task_config_for_a_task_outside_the_run_is_rejected(registry) -> None:
    with pytest.raises(ConfigError, match="not among the tasks"):
        resolve_train_config(
            {"treemark/similar/sst2": registry.create("treemark/similar/sst2")},
            cli={"task_config": {"treemark/similar/qqp": {"limit": 1}}},
        )


def test_evaluation_key_changes_only_with_options_of_the_evaluated_tasks() -> None:
    plain = EvalSettings()
    other = EvalSettings(task_config={"treemark/similar/qqp": {"options": {"source": "file:x"}}})
    assert plain.key(["treemark/similar/sst2"], "w") == other.key(["treemark/similar/sst2"], "w")
    assert plain.key(["treemark/similar/qqp"], "w") != other.key(["treemark/similar/qqp"], "w")
    only_limit = EvalSettings(task_config={"treemark/similar/qqp": {"limit": 2}})  # a training setting
    assert plain.key(["treemark/similar/qqp"], "w") == only_limit.key(["treemark/similar/qqp"], "w")


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "taskgrove", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_usage_errors_exit_2_and_create_nothing(tmp_path: Path) -> None:
    for command in (
        ["train", "--tasks", "treemark/similar", "--task-config", "sst2.limt=2"],
        ["train-compare", "--tasks", "treemark/similar", "--task-config", "nope.limit=2"],
        ["rl", "--tasks", "treemark/similar/sst2", "--task-config", "sst2.max_tokens=x"],
    ):
        done = _cli(tmp_path, *command, "--output-dir", "out")
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_offline_hub_task_fails_with_the_run_hint_in_one_line(tmp_path: Path) -> None:
    done = _cli(tmp_path, "rl", "--tasks", "treemark/similar/sst2", "--steps", "1", "--output-dir", "out")
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in done.stderr
    assert errors[0].startswith("error: task treemark/similar/sst2: SourceError: hf:nyu-mll/glue:sst2")
    assert "HF_DATASETS_OFFLINE=1" in errors[0] and "source: file:" in errors[0]


@pytest.mark.slow
def test_train_offline_on_local_files_through_task_config(tmp_path: Path) -> None:
    pytest.importorskip("peft")
    (tmp_path / "train.yaml").write_text(
        "task_config:\n"
        f"  sst2: {{options: {{source: '{source('sst2')}'}}, limit: 1}}\n"
        f"  mnli: {{options: {{source: '{source('mnli')}'}}}}\n",
        encoding="utf-8",
    )
    done = _cli(
        tmp_path,
        "train",
        "--tasks",
        "treemark/similar",
        "--config-index",
        "3",
        "--config",
        "train.yaml",
        "--task-config",
        f"qqp.options.source={source('qqp')}",
        "--task-config",
        "sst2.limit=2",  # the command line wins over the YAML
        "--max-steps",
        "1",
        "--batch-size",
        "2",
        "--grad-accum",
        "1",
        "--eval-limit",
        "2",
        "--eval-max-tokens",
        "2",
        "--output-dir",
        "out",
    )
    assert done.returncode == 0, done.stderr
    saved = json.loads((tmp_path / "out" / "similar_LoRA_16" / "train_config.json").read_text())
    assert json.loads((tmp_path / "out" / "configs" / "similar_LoRA_16.json").read_text()) == saved  # as TreeMark
    assert saved["task_config"]["treemark/similar/sst2"] == {"options": {"source": source("sst2")}, "limit": 2}
    assert saved["data"]["available"] == {
        "treemark/similar/mnli": 2,
        "treemark/similar/qqp": 2,
        "treemark/similar/sst2": 2,
    }
    comparison = json.loads((tmp_path / "out" / "similar_LoRA_16" / "comparison.json").read_text())
    for model in comparison["models"]:
        assert all(model["scores"][task]["n"] == 2 for task in SIMILAR)
