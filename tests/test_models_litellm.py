"""The litellm backend with a monkeypatched ``litellm.acompletion`` (no network)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest

from taskgrove.models import ModelError, create_model, parse_spec
from taskgrove.models.litellm_backend import LiteLLMModel, import_litellm
from taskgrove.models.retry import RetryPolicy

pytest.importorskip("litellm", reason="the api extra is not installed (pip install 'taskgrove[api]')")
litellm = import_litellm()
FAST = RetryPolicy(base_delay=0.001, max_delay=0.01)
SPEC = "together_ai/meta-llama/Llama-4-Scout-17B-16E-Instruct"


def response(text: str) -> Any:
    return litellm.ModelResponse(
        choices=[{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        usage={"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6},
    )


def rate_limited(retry_after: str) -> Exception:
    reply = httpx.Response(429, headers={"retry-after": retry_after}, request=httpx.Request("POST", "http://x"))
    return litellm.RateLimitError("slow down", llm_provider="together_ai", model=SPEC, response=reply)


class FakeProvider:
    """Stands in for ``litellm.acompletion``; ``faults`` lists what the first attempts raise."""

    def __init__(self, faults: list[Exception] | None = None, *, always: Exception | None = None) -> None:
        self.faults = faults or []
        self.always = always
        self.attempts: Counter[str] = Counter()
        self.calls: list[dict[str, Any]] = []

    async def __call__(self, **kwargs: Any) -> Any:
        prompt = kwargs["messages"][-1]["content"]
        self.attempts[prompt] += 1
        self.calls.append(kwargs)
        await asyncio.sleep(0)
        if self.always is not None:
            raise self.always
        attempt = self.attempts[prompt]
        if attempt <= len(self.faults):
            raise self.faults[attempt - 1]
        return response(f"re: {prompt}")


def run(model: LiteLLMModel, prompts: list[str], **sampling: Any) -> list[Any]:
    async def main() -> list[Any]:
        return await asyncio.gather(
            *(model.generate([{"role": "user", "content": p}], **sampling) for p in prompts), return_exceptions=True
        )

    return asyncio.run(main())


def test_spec_goes_to_litellm() -> None:
    assert parse_spec(SPEC).kind == "litellm"


def test_success_passes_params_and_disables_litellm_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeProvider()
    monkeypatch.setattr(litellm, "acompletion", fake)
    model = LiteLLMModel(SPEC, retry_policy=FAST, request_timeout=7.0)
    [choice] = run(model, ["hi"], max_tokens=9, temperature=0, stop=["\n"], bogus=True)
    assert choice.content == "re: hi" and choice.usage == {"prompt_tokens": 4, "completion_tokens": 2}
    call = fake.calls[0]
    assert call["model"] == SPEC and call["max_tokens"] == 9 and call["stop"] == ["\n"] and call["timeout"] == 7.0
    assert call["num_retries"] == 0 and call["max_retries"] == 0 and "bogus" not in call


def test_transient_errors_are_retried_with_retry_after(
    monkeypatch: pytest.MonkeyPatch, requested_sleeps: list[float]
) -> None:
    faults = [
        rate_limited("0.4"),
        litellm.InternalServerError("boom", llm_provider="together_ai", model=SPEC),
        litellm.Timeout("slow", model=SPEC, llm_provider="together_ai"),
        litellm.APIConnectionError("reset", llm_provider="together_ai", model=SPEC),
    ]
    fake = FakeProvider(faults)
    monkeypatch.setattr(litellm, "acompletion", fake)
    model = LiteLLMModel(SPEC, retry_policy=FAST, max_retries=4)
    results = run(model, ["a", "b"])
    assert [r.content for r in results] == ["re: a", "re: b"]
    assert sorted(requested_sleeps)[-2:] == [0.4, 0.4], "the first retry of each waits the Retry-After: 0.4"
    assert all(s <= FAST.max_delay for s in sorted(requested_sleeps)[:-2])
    assert fake.attempts == {"a": 5, "b": 5}


def test_exhausted_retries_raise_model_error(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeProvider(always=litellm.ServiceUnavailableError("down", llm_provider="together_ai", model=SPEC))
    monkeypatch.setattr(litellm, "acompletion", fake)
    model = LiteLLMModel(SPEC, retry_policy=FAST, max_retries=2)
    results = run(model, ["a", "b"])
    for error in results:
        assert isinstance(error, ModelError) and error.status == 503 and error.attempts == 3
        assert SPEC in str(error) and "503" in str(error)
    assert fake.attempts == {"a": 3, "b": 3}


def test_bad_request_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeProvider(always=litellm.BadRequestError("no such param", model=SPEC, llm_provider="together_ai"))
    monkeypatch.setattr(litellm, "acompletion", fake)
    [error] = run(LiteLLMModel(SPEC, retry_policy=FAST), ["a"])
    assert isinstance(error, ModelError) and error.status == 400 and "BadRequestError" in str(error)
    assert fake.attempts == {"a": 1}


def test_concurrency_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    active = 0
    peak = 0

    async def slow(**kwargs: Any) -> Any:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.02)
        active -= 1
        return response("ok")

    monkeypatch.setattr(litellm, "acompletion", slow)
    results = run(LiteLLMModel(SPEC, concurrency=4), [str(i) for i in range(20)])
    assert all(r.content == "ok" for r in results) and peak == 4


def test_create_model_litellm(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setattr(litellm, "acompletion", FakeProvider())
    model = create_model(SPEC, cache_dir=tmp_path)
    assert model.name == SPEC
    choice = asyncio.run(model.generate([{"role": "user", "content": "x"}]))
    assert choice.content == "re: x"
