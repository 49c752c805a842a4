"""Each example task runs through the real executor with a scripted model, and its rewards are right."""

import json
from pathlib import Path

import pytest

from scripted import ScriptedModel
from taskgrove.config import build_config
from taskgrove.core import Choice
from taskgrove.runner.executor import Executor
from taskgrove.runner.progress import PlainProgress
from taskgrove.tasks.builtin import new_registry

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(tmp_path, file, task, model, **values):
    registry = new_registry()
    registry.add_path(EXAMPLES / file)
    config = build_config({"mode": "run", "tasks": [task], "output_dir": str(tmp_path), **values})
    executor = Executor(config, registry, model=model, progress=PlainProgress(interval=1e9))
    executor.run()
    task_dir = executor.store.root.joinpath(*executor.task_names[0].split("/"))
    records = [json.loads(line) for line in (task_dir / "samples.jsonl").read_text().splitlines()]
    return {r["id"]: r for r in records}, json.loads((task_dir / "metrics.json").read_text())


def test_single_turn_qa(tmp_path):
    answers = {"3 boxes": "3*12-7 = 29", "200 to 250": "It grew by 25%", "1,200": "Profit: 1,250"}

    def reply(messages, tools):
        return next((a for k, a in answers.items() if k in messages[-1]["content"]), "no idea")

    records, _metrics = run_example(
        tmp_path, "single_turn_qa.py", "examples/arithmetic", ScriptedModel(reply), split="train"
    )
    assert {k: r["reward"] for k, r in records.items()} == {"p0": 1.0, "p4": 0.0}
    records, _ = run_example(tmp_path, "single_turn_qa.py", "examples/arithmetic", ScriptedModel(reply))
    assert records["p1"]["reward"] == 1.0 and records["p3"]["reward"] == 0.0 and records["p2"]["reward"] == 0.0


def tool_call(name, **arguments):
    return {"id": f"call_{name}", "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}


def test_multi_turn_tools(tmp_path):
    def agent(messages, tools):
        assert tools and {t["function"]["name"] for t in tools} == {"search_emails", "read_email", "submit_answer"}
        asked = max(i for i, m in enumerate(messages) if m["role"] == "user")
        question = messages[asked]["content"]
        step = sum(m["role"] == "assistant" for m in messages[asked:])
        if "budget" in question:  # search, read, answer right
            plan = [
                tool_call("search_emails", keywords="budget"),
                tool_call("read_email", email_id="e1"),
                tool_call("submit_answer", answer="120,000 USD"),
            ]
            return Choice("", tool_calls=[plan[step]])
        if "offsite" in question:  # answers wrong straight away
            return Choice("", tool_calls=[tool_call("submit_answer", answer="Paris")])
        return Choice("I am not sure.")  # never submits

    records, metrics = run_example(tmp_path, "email_search.py", "examples/email_search", ScriptedModel(agent))
    assert records["q1"]["reward"] == 1.0
    assert records["q1"]["metrics"] == {
        "found_answer": True,
        "read_right_email": True,
        "turns_used": 3,
        "correct": True,
    }
    assert records["q2"]["reward"] == 0.0
    assert records["q3"]["reward"] == -0.5 and records["q3"]["metrics"]["found_answer"] is False
    tool_messages = [m for m in records["q1"]["outputs"][0]["messages"] if m["role"] == "tool"]
    assert json.loads(tool_messages[0]["content"]) == [{"id": "e1", "subject": "Q3 budget"}]
    assert metrics["metrics"]["reward"]["value"] == pytest.approx(0.5 / 3)


def test_comparative_scoring(tmp_path):
    outputs = iter(["Acme profit up 12% on cloud", "Acme profit rises", "Something else entirely"] * 3)
    records, _ = run_example(
        tmp_path,
        "comparative.py",
        "examples/headlines",
        ScriptedModel(lambda m, t: next(outputs)),
        num_samples=3,
        limit=1,
        concurrency=1,
    )
    rewards = [o["reward"] for o in records["h1"]["outputs"]]
    assert rewards == pytest.approx([1.0, 2 / 3, 1 / 3])
    assert records["h1"]["group_metadata"] == {"scoring": "rank"}
    single, _ = run_example(
        tmp_path, "comparative.py", "examples/headlines", ScriptedModel(lambda m, t: "Acme profit up 12%"), limit=1
    )
    assert single["h1"]["reward"] == pytest.approx(0.75)


def test_code_execution_reward(tmp_path):
    programs = {
        "sum": "```python\nimport sys\nprint(sum(int(x) for x in sys.stdin.read().split()))\n```",
        "reverse": "```python\nprint(input()[::-1].upper())\n```",  # passes only the palindrome... upper-cased: none
        "max": "```python\nwhile True:\n    pass\n```",  # never ends: the sandbox stops it
    }

    def reply(messages, tools):
        problem = messages[-1]["content"]
        return programs["sum" if "sum" in problem else "reverse" if "reversed" in problem else "max"]

    records, _metrics = run_example(
        tmp_path,
        "code_execution.py",
        "examples/stdin_programs",
        ScriptedModel(reply),
        task_config={"stdin_programs": {"options": {"timeout_s": 1.5}}},
    )
    assert records["sum"]["reward"] == 1.0 and records["sum"]["metrics"]["passed_tests"] == 3
    assert records["reverse"]["reward"] == 0.0
    assert records["max"]["reward"] == 0.0
    assert set(records["max"]["outputs"][0]["metadata"]["statuses"]) == {"timeout"}
    assert {r["outputs"][0]["metadata"]["isolation"] for r in records.values()} == {"bwrap"}
