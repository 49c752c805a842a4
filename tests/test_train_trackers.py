"""``--report-to``: training, in-loop evaluation and RL curves in TensorBoard event files (read back
with TensorBoard's own reader), wandb and mlflow offline, and the usage errors."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from taskgrove.cli import main
from taskgrove.errors import ConfigError
from taskgrove.train.trackers import parse_report_to, require, score_scalars

FIXTURES = Path(__file__).parent / "fixtures" / "train" / "tasks.py"
TRAIN = ["train", "--include-path", str(FIXTURES), "--tasks", "trainfix/similar/parity", "--config-index", "2"]


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar series in a TensorBoard log folder: tag -> [(step, value)]."""
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    reader = accumulator.EventAccumulator(str(folder))
    reader.Reload()
    return {tag: [(e.step, e.value) for e in reader.Scalars(tag)] for tag in reader.Tags()["scalars"]}


def same(got: list[tuple[int, float]], expected: list[tuple[int, float]]) -> bool:
    """The same steps, and values equal to float32 precision (TensorBoard stores float32)."""
    return [s for s, _ in got] == [s for s, _ in expected] and [v for _, v in got] == pytest.approx(
        [v for _, v in expected], abs=1e-6
    )


def test_report_to_takes_repeats_comma_lists_and_none() -> None:
    assert parse_report_to(["tensorboard,wandb", "mlflow", "wandb"]) == ["tensorboard", "wandb", "mlflow"]
    assert parse_report_to("none") == [] and parse_report_to(None) == []
    with pytest.raises(ValueError, match="unknown tracker 'tensorbord'"):
        parse_report_to("tensorbord")


def test_group_scalars_are_the_mean_of_fully_scored_groups() -> None:
    scores = {"a/x/1": {"value": 0.5}, "a/x/2": {"value": 1.0}, "a/y": {"value": 0.0}, "b/z": None}
    values = score_scalars(scores)
    assert values == {
        "eval/a/x/1": 0.5,
        "eval/a/x/2": 1.0,
        "eval/a/y": 0.0,
        "eval_group/a/x": 0.75,
        "eval_group/a": 0.5,
    }
    # "(all)" would need b/z, which failed: no mean of a partial group


@pytest.mark.parametrize("command", ["train", "train-compare", "rl"])
def test_missing_tracker_package_is_a_one_line_usage_error(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    tasks = (
        ["trainfix/similar/parity", "trainfix/similar/animal"]
        if command == "train-compare"
        else ["trainfix/dissimilar/echo"]
    )
    args = [command, "--include-path", str(FIXTURES), "--tasks", *tasks, "--output-dir", str(tmp_path / "out")]
    assert main([*args, "--report-to", "tensorboard,wandb"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--report-to wandb: the 'wandb' package is not installed" in err
    assert not (tmp_path / "out").exists()  # nothing was created
    assert main([*args, "--report-to", "tensorboardd"]) == 2
    assert "unknown tracker 'tensorboardd'" in capsys.readouterr().err


def test_require_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(ConfigError, match="pip install mlflow-skinny"):
        require(["mlflow"])


def test_train_eval_logs_base_at_step_0_and_each_run_at_its_last_step(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from taskgrove.train.trackers import log_comparison

    run_dir = tmp_path / "similar_LoRA_8"
    run_dir.mkdir()
    (run_dir / "train_config.json").write_text(json.dumps({"name": "similar_LoRA_8", "lora_rank": 8}))
    (run_dir / "train_result.json").write_text(json.dumps({"steps": 12}))
    scores = lambda a, b: {"t/g/a": {"value": a}, "t/g/b": {"value": b}}  # noqa: E731
    comparison = {
        "models": [
            {"label": "base", "kind": "base", "path": "default", "scores": scores(0.25, 0.5)},
            {"label": "similar_LoRA_8", "kind": "multi", "path": str(run_dir), "scores": scores(0.75, 1.0)},
        ]
    }
    log_comparison(["tensorboard"], comparison)
    series = scalars(run_dir / "tensorboard")
    assert same(series["eval/t/g/a"], [(0, 0.25), (12, 0.75)])
    assert same(series["eval_group/t/g"], [(0, 0.375), (12, 0.875)])
    (run_dir / "train_result.json").unlink()
    with pytest.raises(ConfigError, match="no train_result.json"):
        log_comparison(["tensorboard"], comparison)


@pytest.mark.slow
def test_train_logs_loss_and_in_loop_scores_to_tensorboard(tmp_path: Path) -> None:
    pytest.importorskip("peft")
    pytest.importorskip("tensorboard")
    args = [*TRAIN, "--max-steps", "3", "--eval-every", "2", "--eval-tasks", "trainfix/similar", "--logging-steps", "1"]
    args += ["--batch-size", "2", "--grad-accum", "1", "--limit", "4", "--lr", "1e-3", "--eval-limit", "3"]
    args += ["--eval-max-tokens", "3", "--no-evaluate", "--output-dir", str(tmp_path), "--report-to", "tensorboard"]
    assert main(args) == 0
    run_dir = tmp_path / "single_parity_similar_LoRA_8"
    series = scalars(run_dir / "tensorboard")
    assert [step for step, _ in series["train/loss"]] == [1, 2, 3]
    logged = (run_dir / "log.jsonl").read_text().splitlines()
    assert [v for _, v in series["train/loss"]] == pytest.approx([json.loads(line)["loss"] for line in logged])
    assert [step for step, _ in series["train/learning_rate"]] == [1, 2, 3]
    curve = json.loads((run_dir / "eval_curve.json").read_text())
    for task in ("trainfix/similar/parity", "trainfix/similar/animal"):  # base (0), step 2, final (3)
        expected = [(p["step"], p["scores"][task]["value"]) for p in curve["points"]]
        assert [s for s, _ in expected] == [0, 2, 3]
        assert same(series[f"eval/{task}"], expected)
    group = series["eval_group/trainfix/similar"]
    assert [s for s, _ in group] == [0, 2, 3]
    for step, value in group:
        point = next(p for p in curve["points"] if p["step"] == step)
        assert value == pytest.approx(sum(s["value"] for s in point["scores"].values()) / 2)


GRADED = """
import asyncio

from taskgrove import Task, Trajectory, TrajectoryGroup, register_task


@register_task("trk/letters", description="reward: the share of the letter e in the reply")
class Letters(Task):
    def get_dataset(self, split):
        for i, word in enumerate(["cats", "rain"]):
            yield {"id": str(i), "question": f"Say something about {word}."}

    async def run(self, model, scenario, num_samples=1):
        messages = [{"role": "user", "content": scenario["question"]}]
        replies = await asyncio.gather(*(model.generate(messages) for _ in range(num_samples)))
        rewards = [r.content.count("e") / max(len(r.content), 1) for r in replies]
        return TrajectoryGroup([Trajectory([*messages, r], reward=w) for r, w in zip(replies, rewards)])
"""


@pytest.mark.slow
def test_rl_logs_reward_and_kl_to_every_tracker_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("peft")
    chosen = [name for name in ("tensorboard", "wandb", "mlflow") if importlib.util.find_spec(name)]
    if "tensorboard" not in chosen:
        pytest.skip("tensorboard is not installed (taskgrove[train])")
    for variable in ("WANDB_MODE", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "WANDB_PROJECT"):
        monkeypatch.delenv(variable, raising=False)
    (tmp_path / "letters.py").write_text(GRADED, encoding="utf-8")
    args = ["rl", "--include-path", str(tmp_path / "letters.py"), "--tasks", "trk/letters", "--steps", "2"]
    args += ["--scenarios-per-step", "1", "--samples", "2", "--max-tokens", "4", "--output-dir", str(tmp_path / "o")]
    assert main([*args, "--name", "r", "--report-to", ",".join(chosen)]) == 0
    run_dir = tmp_path / "o" / "r"
    curve = json.loads((run_dir / "rl_result.json").read_text())["curve"]
    series = scalars(run_dir / "tensorboard")
    for key in ("mean_reward", "kl", "loss", "clipped"):
        assert same(series[f"rl/{key}"], [(r["step"], r[key]) for r in curve])
    if "mlflow" in chosen:
        from mlflow.tracking import MlflowClient

        client = MlflowClient((tmp_path / "o" / "mlruns").resolve().as_uri())
        (run,) = client.search_runs([client.get_experiment_by_name("taskgrove").experiment_id])
        assert run.info.run_name == "r" and run.data.params["kl_coef"] == "0.04"
        history = client.get_metric_history(run.info.run_id, "rl/mean_reward")
        assert same(sorted((m.step, m.value) for m in history), [(r["step"], r["mean_reward"]) for r in curve])
    if "wandb" in chosen:
        (offline,) = (run_dir / "wandb").glob("offline-run-*")
        assert list(offline.glob("run-*.wandb"))  # written offline, for `wandb sync`
