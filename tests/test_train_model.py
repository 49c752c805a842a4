"""Training with the real embedded SmolLM2-135M: the loss mask, a few SFT steps, resume and Ctrl-C,
the comparison after training, and one RL step. Kept to a few tiny steps each."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from taskgrove.errors import ConfigError
from taskgrove.registry import TaskRegistry
from taskgrove.tasks.builtin import new_registry
from taskgrove.train.examples import IGNORE, answer_loss, collate, encode_example

FIXTURES = Path(__file__).parent / "fixtures" / "train"
torch = pytest.importorskip("torch")
pytest.importorskip("peft")
pytestmark = pytest.mark.slow  # loads the embedded model and trains


@pytest.fixture(scope="module")
def local_model():
    from taskgrove.models.local import LocalModel

    try:
        return LocalModel.load("default", batch_size=4)
    except Exception as exc:  # the embedded model is not installed here
        pytest.skip(f"embedded model unavailable: {exc}")


@pytest.fixture(scope="module")
def registry() -> TaskRegistry:
    registry = new_registry()
    registry.add_path(FIXTURES / "tasks.py")
    return registry


def _config(tmp_path: Path, tasks: list[str], **values):
    from taskgrove.train.presets import resolve_train_config

    reg = new_registry()
    reg.add_path(FIXTURES / "tasks.py")
    small = {
        "config_index": 2,
        "batch_size": 4,
        "gradient_accumulation_steps": 1,
        "learning_rate": 1e-3,
        "limit": 8,
        "logging_steps": 1,
        "output_dir": str(tmp_path),
        "seed": 3,
    }
    small.update(values)
    return resolve_train_config({n: reg.create(n) for n in tasks}, requests=tasks, cli=small)


# --- the loss mask ----------------------------------------------------------------------------------


def test_prompt_is_tokenised_exactly_as_the_local_backend_does(local_model) -> None:
    messages = [
        {"role": "system", "content": "Answer with one word."},
        {"role": "user", "content": "Is 7 even or odd?"},
    ]
    example = encode_example(
        local_model.tokenizer, "t", [*messages, {"role": "assistant", "content": "odd"}], max_seq_length=512
    )
    assert example is not None
    assert list(example.input_ids[: example.prompt_len]) == local_model._chat_ids(messages, None)
    labels = example.labels
    assert labels[: example.prompt_len] == [IGNORE] * example.prompt_len
    answer = labels[example.prompt_len :]
    assert answer[-1] == local_model.tokenizer.eos_token_id
    assert local_model.tokenizer.decode(answer) == "odd<|im_end|>"
    assert (
        encode_example(
            local_model.tokenizer, "t", [*messages, {"role": "assistant", "content": "odd"}], max_seq_length=10
        )
        is None
    )


def test_answer_loss_equals_the_full_logits_loss_on_answer_tokens(local_model) -> None:
    tok = local_model.tokenizer
    convs = [
        [{"role": "user", "content": "Is a cat a mammal or a bird?"}, {"role": "assistant", "content": "mammal"}],
        [{"role": "user", "content": "Repeat: stone"}, {"role": "assistant", "content": "STONE, in capital letters"}],
    ]
    examples = [encode_example(tok, "t", c, max_seq_length=512) for c in convs]
    batch = collate(examples, tok.pad_token_id)
    model = local_model.hf_model
    with torch.no_grad():
        loss_sum, count = answer_loss(model, batch)
        reference = model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            position_ids=batch["position_ids"],
            labels=batch["labels"],
        ).loss
    assert count == sum(e.answer_len for e in examples)
    assert float(loss_sum) / count == pytest.approx(float(reference), rel=1e-4)


def test_task_without_training_messages_is_named(registry, local_model, tmp_path) -> None:
    from taskgrove.train.data import build_tasks, build_training_data

    config = _config(tmp_path, ["trainfix/no_sft"])
    with pytest.raises(ConfigError, match="task trainfix/no_sft cannot be used for supervised training"):
        build_training_data(build_tasks(registry, ["trainfix/no_sft"], config), local_model.tokenizer, config)


# --- SFT, resume, Ctrl-C --------------------------------------------------------------------------------


def _adapter(run_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(run_dir / "adapter_model.safetensors"))


def test_sft_resume_matches_an_uninterrupted_run(registry, tmp_path) -> None:
    from taskgrove.train.sft import TrainingInterrupted, train_sft

    tasks = ["trainfix/similar/parity", "trainfix/similar/animal"]
    small = {"max_steps": 3, "name": "run", "batch_size": 2, "limit": 4}
    straight = train_sft(_config(tmp_path / "a", tasks, **small), registry)
    assert straight.steps == 3
    run_a = tmp_path / "a" / "run"
    saved = json.loads((run_a / "train_config.json").read_text())
    assert (
        saved["lora_rank"] == 8
        and saved["tasks"] == tasks
        and saved["data"]["mixture"] == {"trainfix/similar/parity": 4, "trainfix/similar/animal": 4}
    )
    assert json.loads((run_a / "adapter_config.json").read_text())["base_model_name_or_path"] == "default"

    def interrupt(step: int) -> None:  # Ctrl-C after step 1: the step finishes, a checkpoint is written
        if step == 1:
            os.kill(os.getpid(), signal.SIGINT)

    config_b = _config(tmp_path / "b", tasks, **small)
    with pytest.raises(TrainingInterrupted) as stopped:
        train_sft(config_b, registry, on_step=interrupt)
    assert stopped.value.step == 1 and (tmp_path / "b" / "run" / "checkpoint-1").is_dir()
    with pytest.raises(ConfigError, match="--resume"):
        train_sft(config_b, registry)
    resumed = train_sft(config_b, registry, resume=True)
    assert resumed.resumed_from == 1 and resumed.steps == 3
    a, b = _adapter(run_a), _adapter(tmp_path / "b" / "run")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6), key
    assert [r["step"] for r in resumed.losses] == [1, 2, 3]
    assert [r["loss"] for r in resumed.losses] == pytest.approx([r["loss"] for r in straight.losses], rel=1e-4)


def test_checkpoint_of_the_earlier_loop_is_a_clear_error(registry, tmp_path) -> None:
    from taskgrove.train.sft import train_sft

    config = _config(tmp_path, ["trainfix/similar/parity"], name="old")
    old = tmp_path / "old" / "checkpoint-2"
    old.mkdir(parents=True)
    (old / "training_state.pt").write_bytes(b"")  # what taskgrove's own loop wrote
    with pytest.raises(ConfigError, match="earlier SFT loop.*start a new run"):
        train_sft(config, registry, resume=True)


def test_packing_trains_and_keeps_packed_examples_apart(registry, local_model, tmp_path) -> None:
    """TRL's packed rows (position ids, no padding) score each example as if it were alone: the
    attention of the CPU model (sdpa) does not cross example boundaries."""
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from taskgrove.train.sft import train_sft

    model, tokenizer = local_model.hf_model, local_model.tokenizer
    texts = ["The cat sat on the mat and looked around.", "Quarterly revenue rose twelve percent."]
    ids = [tokenizer(t)["input_ids"] for t in texts]
    with torch.no_grad():
        alone = sum(
            float(model(input_ids=torch.tensor([x]), labels=torch.tensor([x])).loss) * (len(x) - 1) for x in ids
        ) / sum(len(x) - 1 for x in ids)
        packed = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, padding_free=True)(
            [{"input_ids": x} for x in ids]
        )
        together = model(
            input_ids=packed["input_ids"], position_ids=packed["position_ids"], labels=packed["labels"], use_cache=False
        ).loss
    assert float(together) == pytest.approx(alone, abs=1e-4)

    result = train_sft(_config(tmp_path, ["trainfix/similar/parity"], packing=True, max_steps=2), registry)
    assert result.steps == 2 and [r["step"] for r in result.losses] == [1, 2]
    assert json.loads((result.run_dir / "train_config.json").read_text())["packing"] is True


def test_full_fine_tuning_runs_and_saves_loadable_weights(registry, tmp_path) -> None:
    from taskgrove.train.checkpoint import load_weights
    from taskgrove.train.sft import load_base, train_sft

    result = train_sft(
        _config(tmp_path, ["trainfix/similar/parity"], config_index=0, max_steps=1, batch_size=2, learning_rate=1e-5),
        registry,
    )
    run_dir = result.run_dir
    assert run_dir.name == "single_parity_similar_FullFT" and (run_dir / "model.safetensors").is_file()
    model, _ = load_base("default")
    before = model.model.layers[0].self_attn.q_proj.weight.clone()
    load_weights(model, run_dir)
    assert not torch.equal(before, model.model.layers[0].self_attn.q_proj.weight)


# --- train + evaluate through the CLI -------------------------------------------------------------------


def test_train_cli_writes_checkpoint_and_comparison(tmp_path, capsys) -> None:
    from taskgrove.cli import main

    common = [
        "--include-path",
        str(FIXTURES / "tasks.py"),
        "--config-index",
        "2",
        "--max-steps",
        "1",
        "--batch-size",
        "2",
        "--grad-accum",
        "1",
        "--limit",
        "4",
        "--lr",
        "1e-3",
        "--eval-limit",
        "3",
        "--eval-max-tokens",
        "3",
        "--output-dir",
        str(tmp_path),
    ]
    assert main(["train", "--tasks", "trainfix/similar/parity", *common, "--no-evaluate"]) == 0
    single = tmp_path / "single_parity_similar_LoRA_8"
    assert main(["train", "--tasks", "trainfix/similar/parity", *common, "--no-evaluate"]) == 2  # would overwrite
    # --resume by path needs neither --tasks nor --include-path: both come from train_config.json
    assert main(["train", "--resume", str(single), "--max-steps", "2", "--no-evaluate"]) == 0
    result = json.loads((single / "train_result.json").read_text())
    assert (result["resumed_from"], result["steps"]) == (1, 2)
    assert main(["train", "--tasks", "trainfix/similar", *common]) == 0
    out = capsys.readouterr().out
    comparison = json.loads((tmp_path / "similar_LoRA_8" / "comparison.json").read_text())
    assert comparison["tasks"] == ["trainfix/similar/animal", "trainfix/similar/parity"]
    labels = [(m["label"], m["kind"]) for m in comparison["models"]]
    assert labels == [("base", "base"), ("single_parity_similar_LoRA_8", "single"), ("similar_LoRA_8", "multi")]
    for model in comparison["models"]:
        for task in comparison["tasks"]:
            score = model["scores"][task]
            assert set(score) >= {"value", "ci_low", "ci_high"} and 0 <= score["value"] <= 1 and score["n"] == 3
    assert "| trainfix/similar/parity |" in out
    assert (tmp_path / "similar_LoRA_8" / "comparison.md").is_file()


# --- RL -----------------------------------------------------------------------------------------------------


def test_rl_step_samples_with_token_ids_and_updates_the_adapter(registry, tmp_path) -> None:
    from taskgrove.train.rl import RLConfig, train_rl

    config = RLConfig(
        tasks=["trainfix/similar/parity"],
        steps=2,
        scenarios_per_step=2,
        samples_per_scenario=3,
        max_tokens=4,
        output_dir=str(tmp_path),
        limit=4,
        learning_rate=1e-3,
        temperature=1.5,
    )
    result = train_rl(config, registry)
    assert result.steps == 2 and len(result.curve) == 2
    assert all(0 <= r["mean_reward"] <= 1 for r in result.curve)
    weights = _adapter(result.run_dir)
    lora_b = [v for k, v in weights.items() if "lora_B" in k]
    advantaged = sum(r["advantaged_replies"] for r in result.curve)
    # LoRA B starts at zero and only a non-zero advantage moves it (the KL to the base is flat there)
    assert (advantaged > 0) == any(float(v.abs().sum()) > 0 for v in lora_b)


def test_policy_batches_concurrent_calls_and_keeps_sampled_ids(local_model) -> None:
    import asyncio

    from taskgrove.train.policy import PolicyModel, SampledChoice

    policy = PolicyModel(local_model.hf_model, local_model.tokenizer)
    calls = []
    original = policy.sample
    policy.sample = lambda params, prompts: calls.append(len(prompts)) or original(params, prompts)  # type: ignore[method-assign]

    async def go():
        messages = [{"role": "user", "content": "Say hi"}]
        return await asyncio.gather(
            *(policy.generate(messages, temperature=1.0, max_tokens=5, seed=1) for _ in range(3))
        )

    replies = asyncio.run(go())
    assert calls == [3]
    for reply in replies:
        assert isinstance(reply, SampledChoice) and 0 < len(reply.completion_ids) <= 5
        assert reply.prompt_ids == local_model._chat_ids([{"role": "user", "content": "Say hi"}], None)
