"""Spec parsing, sampling normalisation and the import-cheapness of taskgrove.models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from taskgrove.models import ModelError, ModelSpec, Sampling, create_model, parse_spec

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (None, ModelSpec("local", "default")),
        ("local", ModelSpec("local", "default")),
        ("local:", ModelSpec("local", "default")),
        ("local:default", ModelSpec("local", "default")),
        ("local:HuggingFaceTB/SmolLM2-360M-Instruct", ModelSpec("local", "HuggingFaceTB/SmolLM2-360M-Instruct")),
        ("local:/ckpt/run1", ModelSpec("local", "/ckpt/run1")),
        ("local:default+/ckpt/lora", ModelSpec("local", "default", "/ckpt/lora")),
        ("openai/gpt-4o-mini", ModelSpec("openai", "gpt-4o-mini")),
        ("openai/meta-llama/Llama-3.1-8B-Instruct", ModelSpec("openai", "meta-llama/Llama-3.1-8B-Instruct")),
    ],
)
def test_parse_spec(spec: str | None, expected: ModelSpec) -> None:
    assert parse_spec(spec) == expected


@pytest.mark.parametrize("spec", ["gpt-4o", "openai/", "/model", "local:base+", "no-such-provider/model"])
def test_unknown_specs_are_clear_errors(spec: str) -> None:
    with pytest.raises(ModelError, match="local|openai"):
        parse_spec(spec)
    with pytest.raises(ModelError):
        create_model(spec, cache=False)


def test_sampling_normalises_and_ignores_unknown_keys() -> None:
    given = {"max_tokens": 8, "stop": "###", "top_k": 5, "response_format": "json", "temperature": None}
    params = Sampling.from_kwargs(given)
    assert params == Sampling(max_tokens=8, stop=("###",), top_k=5)
    assert params.greedy and hash(params) == hash(Sampling(max_tokens=8, stop=("###",), top_k=5))
    assert Sampling.from_kwargs({**given, "logprobs": True}).logprobs  # a known key since logprobs are returned
    assert Sampling.from_kwargs({"stop": ["a", "", "a", "b"]}).stop == ("a", "b")
    assert not Sampling.from_kwargs({"temperature": 0.7}).greedy
    assert Sampling.from_kwargs({}).as_dict()["stop"] == []


@pytest.mark.parametrize(
    "bad", [{"max_tokens": 0}, {"max_tokens": 2.5}, {"temperature": -1}, {"top_p": 0}, {"top_k": 0}, {"stop": [1]}]
)
def test_sampling_rejects_bad_values(bad: dict) -> None:
    with pytest.raises(ValueError):
        Sampling.from_kwargs(bad)


def test_models_package_imports_no_heavy_library() -> None:
    code = (
        "import sys\n"
        "import taskgrove.models, taskgrove.models.local, taskgrove.models.loading, taskgrove.models.openai_http\n"
        "import taskgrove.models.litellm_backend, taskgrove.models.cache, taskgrove.models.batching\n"
        "import taskgrove.models.stopping, taskgrove.models.retry\n"
        "heavy = [m for m in ('torch', 'transformers', 'httpx', 'openai', 'litellm', 'peft') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": str(SRC)})
