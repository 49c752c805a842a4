"""Token logprobs: asked with generate(logprobs=True), carried on the Choice, stored with the
trajectory, and read from (and sent to) OpenAI-compatible servers."""

from __future__ import annotations

from typing import Any

import pytest

from scripted import ScriptedModel
from taskgrove.core import Choice
from taskgrove.models.openai_format import parse_completion, request_params
from taskgrove.models.sampling import Sampling

LOGPROBS = [{"token": "Par", "logprob": -0.5, "token_id": 11}, {"token": "is", "logprob": -0.01, "token_id": 12}]


def test_choice_keeps_logprobs_and_notes_through_the_store() -> None:
    choice = Choice("Paris", logprobs=LOGPROBS, metadata={"tool_call_parse_note": "x"})
    record = choice.to_record()
    assert record["choice"]["logprobs"] == LOGPROBS and record["choice"]["metadata"] == {"tool_call_parse_note": "x"}
    again = Choice.from_record(record)
    assert again.logprobs == LOGPROBS and again.metadata == {"tool_call_parse_note": "x"}
    assert (
        "logprobs" not in Choice("x").to_record()["choice"]
        and Choice.from_record(Choice("x").to_record()).logprobs is None
    )


def test_sampling_logprobs_flag() -> None:
    assert Sampling.from_kwargs({"logprobs": True}).logprobs is True
    assert "logprobs" not in Sampling().as_dict()  # cache keys of ordinary requests are unchanged
    assert Sampling.from_kwargs({"logprobs": True}).as_dict()["logprobs"] is True
    with pytest.raises(ValueError, match="logprobs must be True or False"):
        Sampling.from_kwargs({"logprobs": 5})
    assert request_params(Sampling(logprobs=True))["logprobs"] is True
    assert "logprobs" not in request_params(Sampling())


def test_parse_completion_reads_logprobs() -> None:
    body: dict[str, Any] = {
        "choices": [
            {
                "message": {"role": "assistant", "content": "Paris"},
                "finish_reason": "stop",
                "logprobs": {"content": [{"token": "token_id:11", "logprob": -0.5}, {"token": "is", "logprob": -0.01}]},
            }
        ]
    }
    choice = parse_completion(body, latency_s=0.0)
    assert choice.logprobs == [
        {"token": "token_id:11", "logprob": -0.5, "token_id": 11},
        {"token": "is", "logprob": -0.01},
    ]
    body["choices"][0]["logprobs"] = None
    assert parse_completion(body, latency_s=0.0).logprobs is None


def test_openai_compatible_backend_asks_for_and_returns_logprobs() -> None:
    import asyncio

    pytest.importorskip("openai")
    from taskgrove.models.openai_http import OpenAICompatibleModel
    from test_openai_client import ScriptedOpenAIServer

    scripted = ScriptedModel(lambda messages, tools: Choice("Paris", logprobs=LOGPROBS))
    server = ScriptedOpenAIServer(scripted)
    try:
        model = OpenAICompatibleModel("scripted", base_url=server.url, max_retries=0)

        async def main() -> Choice:
            try:
                return await model.generate([{"role": "user", "content": "capital?"}], logprobs=True)
            finally:
                await model.aclose()

        choice = asyncio.run(main())
    finally:
        server.close()
    assert scripted.calls[0]["sampling"]["logprobs"] is True  # the request said logprobs: true
    assert [(t["token"], t["logprob"]) for t in choice.logprobs] == [("Par", -0.5), ("is", -0.01)]
