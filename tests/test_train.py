"""Training without a model: presets and --config-index, precedence, names, mixtures."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest

from taskgrove import Task, TaskTrainConfig
from taskgrove.errors import ConfigError
from taskgrove.tasks.builtin import new_registry
from taskgrove.train.mixture import allocate, mix, mixture_weights
from taskgrove.train.presets import CONFIG_INDEX, model_name, resolve_train_config, task_family

FIXTURES = Path(__file__).parent / "fixtures" / "train"


class Plain(Task):
    pass


class Tuned(Task):
    def get_train_config(self) -> TaskTrainConfig:
        return TaskTrainConfig(learning_rate=3e-4, max_seq_length=256, extra={"lora_dropout": 0.05})


def tasks(*names: str, cls: type = Plain) -> dict[str, Task]:
    return {name: cls(name) for name in names}


SIMILAR = ("treemark/similar/sst2", "treemark/similar/mnli", "treemark/similar/qqp")
DISSIMILAR = ("treemark/dissimilar/squad_v2", "treemark/dissimilar/cnn_dailymail")


# --- presets and config index --------------------------------------------------------------------


@pytest.mark.parametrize(
    "index,method,rank,label",
    [
        (0, "full", None, "FullFT"),
        (1, "lora", 4, "LoRA_4"),
        (2, "lora", 8, "LoRA_8"),
        (3, "lora", 16, "LoRA_16"),
        (4, "lora", 32, "LoRA_32"),
        (5, "lora", 64, "LoRA_64"),
    ],
)
def test_config_index_maps_to_method_and_rank(index: int, method: str, rank: int | None, label: str) -> None:
    assert CONFIG_INDEX[index] == (method, rank)
    config = resolve_train_config(tasks(*SIMILAR), requests=["treemark/similar"], cli={"config_index": index})
    assert (config.method, config.label, config.config_index) == (method, label, index)
    if rank is not None:
        assert config.lora_rank == rank


def test_method_and_rank_flags_give_the_same_index() -> None:
    config = resolve_train_config(tasks(*SIMILAR), cli={"method": "lora", "lora_rank": 32})
    assert config.config_index == 4 and config.label == "LoRA_32"
    assert resolve_train_config(tasks(*SIMILAR), cli={"method": "full"}).config_index == 0
    assert resolve_train_config(tasks(*SIMILAR)).label == "LoRA_16"  # TreeMark's baseline


def test_conflicting_index_and_method_is_an_error() -> None:
    with pytest.raises(ConfigError, match="config-index 0"):
        resolve_train_config(tasks(*SIMILAR), cli={"config_index": 0, "method": "lora"})
    with pytest.raises(ConfigError, match="rank 8"):
        resolve_train_config(tasks(*SIMILAR), cli={"config_index": 2, "lora_rank": 16})
    with pytest.raises(ConfigError, match="0..5"):
        resolve_train_config(tasks(*SIMILAR), cli={"config_index": 6})


def test_presets_follow_treemark() -> None:
    full = resolve_train_config(tasks(*SIMILAR), cli={"config_index": 0})
    assert (full.family, full.batch_size, full.learning_rate, full.weight_decay, full.gradient_accumulation_steps) == (
        "classification",
        128,
        1e-5,
        0.0,
        4,
    )
    lora = resolve_train_config(tasks(*SIMILAR), cli={"config_index": 3})
    assert (lora.batch_size, lora.weight_decay, lora.lora_dropout, lora.target_modules) == (
        32,
        0.01,
        0.1,
        ["q_proj", "v_proj"],
    )
    gen_full = resolve_train_config(tasks(*DISSIMILAR), cli={"config_index": 0})
    assert (gen_full.family, gen_full.batch_size, gen_full.weight_decay) == ("generation", 32, 0.01)
    mixed = resolve_train_config(tasks(SIMILAR[0], DISSIMILAR[0]), cli={"config_index": 0})
    assert mixed.family == "generation" and mixed.batch_size == 32


def test_family_from_attribute_beats_path() -> None:
    task = Plain("finance/fomc")
    assert task_family("finance/fomc", task) == "generation"
    task.train_family = "classification"  # type: ignore[attr-defined]
    assert task_family("finance/fomc", task) == "classification"


def test_precedence_preset_task_yaml_cli() -> None:
    config = resolve_train_config(tasks("treemark/similar/a", "treemark/similar/b", cls=Tuned), cli={"config_index": 2})
    assert config.learning_rate == 3e-4 and config.max_seq_length == 256 and config.lora_dropout == 0.05
    config = resolve_train_config(
        tasks("treemark/similar/a", cls=Tuned),
        yaml_data={"learning_rate": 1e-3, "batch_size": 16},
        cli={"config_index": 2, "batch_size": 4},
    )
    assert config.learning_rate == 1e-3 and config.batch_size == 4


def test_tasks_that_disagree_keep_the_preset() -> None:
    both = {"treemark/similar/a": Tuned("treemark/similar/a"), "treemark/similar/b": Plain("treemark/similar/b")}
    config = resolve_train_config(both)
    assert config.learning_rate == 1e-5
    assert any("learning_rate" in note for note in config.notes)


def test_unknown_option_is_named() -> None:
    with pytest.raises(ConfigError, match="did you mean learning_rate"):
        resolve_train_config(tasks(*SIMILAR), yaml_data={"learning_rat": 1e-4})


def test_names_follow_treemark() -> None:
    # TreeMark's README: single_TASK_TYPE_CONFIG (single_sst2_similar_LoRA_16) and TYPE_CONFIG
    assert model_name(["treemark/similar/sst2"], "similar", "lora", 16) == "single_sst2_similar_LoRA_16"
    assert model_name(list(SIMILAR), "similar", "lora", 32) == "similar_LoRA_32"
    assert model_name(list(DISSIMILAR), "dissimilar", "full", None) == "dissimilar_FullFT"
    config = resolve_train_config(tasks(*SIMILAR), requests=["treemark/similar"], cli={"config_index": 5})
    assert config.run_name == "similar_LoRA_64" and config.kind == "multi" and config.task_type == "similar"
    single = resolve_train_config(tasks(SIMILAR[0]), cli={"config_index": 3})
    assert single.run_name == "single_sst2_similar_LoRA_16"
    assert resolve_train_config(tasks(*DISSIMILAR), cli={"config_index": 0}).run_name == "dissimilar_FullFT"
    mixed = resolve_train_config(tasks(SIMILAR[0], DISSIMILAR[0]), cli={"config_index": 1})
    assert mixed.run_name == "mixed_LoRA_4" and mixed.family == "generation"
    other = resolve_train_config(
        tasks("bigbench/a/b", "bigbench/a/c"), requests=["bigbench/a"], cli={"config_index": 2}
    )
    assert other.run_name == "dissimilar_LoRA_8"  # generation tasks are TreeMark's dissimilar type


def test_task_type_flag_is_treemarks(capsys: pytest.CaptureFixture[str]) -> None:
    from taskgrove.cli import main

    code = main(["train", "--task-type", "similar", "--tasks", "treemark/similar/sst2"])
    assert code == 2 and "--tasks or --task-type" in capsys.readouterr().err
    code = main(["train", "--task-type", "similar", "--config-index", "9"])
    assert code == 2 and "0..5" in capsys.readouterr().err  # got as far as the config: the group resolved
    with pytest.raises(SystemExit):
        main(["train", "--task-type", "generation"])


# --- mixtures ---------------------------------------------------------------------------------------


def _pools(sizes: dict[str, int]) -> dict[str, list[tuple[str, int]]]:
    return {name: [(name, i) for i in range(n)] for name, n in sizes.items()}


SIZES = {"a": 800, "b": 150, "c": 50}


def test_concatenate_uses_every_example_once() -> None:
    mixed = mix(_pools(SIZES), "concatenate", seed=1)
    assert Counter(name for name, _ in mixed) == Counter(SIZES)
    assert len(set(mixed)) == 1000


def test_proportional_temperature_equal_shares() -> None:
    total = 1000
    for strategy, temperature, expected in [
        ("proportional", 1.0, {"a": 800, "b": 150, "c": 50}),
        ("equal", 1.0, {"a": 333, "b": 334, "c": 333}),
    ]:
        counts = Counter(name for name, _ in mix(_pools(SIZES), strategy, temperature=temperature, seed=3))
        assert sum(counts.values()) == total
        assert all(abs(counts[k] - v) <= 1 for k, v in expected.items()), (strategy, counts)
    weights = mixture_weights(SIZES, "temperature", temperature=2.0)
    raw = {k: math.sqrt(v) for k, v in SIZES.items()}
    assert all(abs(weights[k] - raw[k] / sum(raw.values())) < 1e-12 for k in SIZES)
    counts = Counter(name for name, _ in mix(_pools(SIZES), "temperature", temperature=2.0, seed=3))
    assert all(abs(counts[k] - weights[k] * 1000) <= 1 for k in SIZES)
    assert counts["c"] > 50 and counts["a"] < 800  # temperature flattens toward equal


def test_temperature_one_is_proportional_and_large_tends_to_equal() -> None:
    assert mixture_weights(SIZES, "temperature", temperature=1.0) == pytest.approx(
        mixture_weights(SIZES, "proportional")
    )
    flat = mixture_weights(SIZES, "temperature", temperature=1000.0)
    assert all(abs(w - 1 / 3) < 0.01 for w in flat.values())


def test_cap_limits_each_task() -> None:
    counts = Counter(name for name, _ in mix(_pools(SIZES), "concatenate", cap=100, seed=0))
    assert counts == {"a": 100, "b": 100, "c": 50}
    counts = Counter(name for name, _ in mix(_pools(SIZES), "proportional", cap=100, seed=0))
    assert counts == {"a": 100, "b": 100, "c": 50}
    drawn = [item for item in mix(_pools(SIZES), "proportional", cap=100, seed=0) if item[0] == "a"]
    assert len(set(drawn)) == 100  # a capped task keeps to its first `cap` shuffled examples


def test_oversampling_cycles_through_fresh_permutations() -> None:
    mixed = mix(_pools({"small": 10, "big": 90}), "equal", size=100, seed=5)
    small = [i for name, i in mixed if name == "small"]
    assert len(small) == 50 and Counter(small) == dict.fromkeys(range(10), 5)


def test_mixtures_are_seeded() -> None:
    first = mix(_pools(SIZES), "temperature", temperature=3.0, seed=7)
    assert first == mix(_pools(SIZES), "temperature", temperature=3.0, seed=7)
    assert first != mix(_pools(SIZES), "temperature", temperature=3.0, seed=8)


def test_allocate_sums_exactly() -> None:
    counts = allocate({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}, 100)
    assert sum(counts.values()) == 100 and sorted(counts.values()) == [33, 33, 34]


def test_mixture_errors() -> None:
    with pytest.raises(ConfigError, match="unknown mixture"):
        mixture_weights(SIZES, "zipf")
    with pytest.raises(ConfigError, match="no training examples for: c"):
        mixture_weights({"a": 3, "c": 0}, "equal")


# --- batches ----------------------------------------------------------------------------------------


def test_batch_plan_covers_every_example_and_groups_lengths() -> None:
    from taskgrove.train.batches import EpochOrder, plan_batches
    from taskgrove.train.presets import TrainConfig

    lengths = [(i * 37) % 200 + 10 for i in range(100)]
    batches = plan_batches(lengths, 8, seed=0, epoch=0, group_by_length=True)
    assert sorted(i for b in batches for i in b) == list(range(100))
    assert [len(b) for b in batches] == [8] * 12 + [4]  # the short batch last: the order cuts into whole batches
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches)
    random_spread = sum(
        max(lengths[i] for i in b) - min(lengths[i] for i in b)
        for b in plan_batches(lengths, 8, seed=0, epoch=0, group_by_length=False)
    )
    assert spread < random_spread / 3
    config = TrainConfig(batch_size=8, gradient_accumulation_steps=2)
    order = EpochOrder(lengths, config)
    first = list(order)
    assert [first[i : i + 8] for i in range(0, 100, 8)] == batches and len(order) == 100
    order.set_epoch(1)
    second = list(order)
    assert sorted(second) == list(range(100)) and second != first
    order.set_epoch(0)
    assert list(order) == first  # a pure function of seed and epoch: a resumed run sees the same order


@pytest.mark.parametrize(
    ("batch", "micro", "expected"), [(32, None, 8), (12, None, 6), (7, None, 7), (9, None, 3), (8, 2, 2)]
)
def test_micro_batches_divide_the_batch(batch: int, micro: int | None, expected: int) -> None:
    from taskgrove.train.batches import micro_batch_size
    from taskgrove.train.presets import TrainConfig

    assert micro_batch_size(TrainConfig(batch_size=batch, micro_batch_size=micro)) == expected


def test_micro_batch_that_does_not_divide_is_refused() -> None:
    from pydantic import ValidationError

    from taskgrove.train.presets import TrainConfig

    with pytest.raises(ValidationError, match="micro_batch_size 3 does not divide batch_size 8"):
        TrainConfig(batch_size=8, micro_batch_size=3)


# --- the CLI ----------------------------------------------------------------------------------------


def test_train_cli_is_registered_and_rejects_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    from taskgrove.cli import build_parser, main

    help_text = build_parser().format_help()
    for name in ("train", "train-compare", "train-eval", "rl"):
        assert name in help_text
    code = main(
        ["train", "--include-path", str(FIXTURES / "tasks.py"), "--tasks", "trainfix/similar", "--config-index", "9"]
    )
    assert code == 2 and "0..5" in capsys.readouterr().err
    code = main(["train", "--include-path", str(FIXTURES / "tasks.py"), "--tasks", "trainfix/nope"])
    assert code == 2 and "not supported" in capsys.readouterr().err


def test_registry_fixture_tasks_resolve() -> None:
    registry = new_registry()
    registry.add_path(FIXTURES / "tasks.py")
    assert registry.resolve(["trainfix/similar"]) == ["trainfix/similar/animal", "trainfix/similar/parity"]


def test_switches_reach_the_training_config() -> None:
    from taskgrove.cli import build_parser
    from taskgrove.cli._train_args import given

    args = build_parser().parse_args(["train", "--tasks", "x", "--packing", "--no-gradient-checkpointing"])
    assert given(args) == {"packing": True, "gradient_checkpointing": False}
    assert "packing" not in given(build_parser().parse_args(["train", "--tasks", "x"]))
