"""An agent with a real tool, written against the OpenAI SDK: answer questions about a staff
database by running SQL (``sql_query``) on a SQLite file, then ``submit_answer``.

The database is built by ``pre_train()`` (or on first use) from ``STAFF``; queries run read-only.
Reward 1 for the right answer, 0 for a wrong one, -0.5 when no answer is submitted.

The agent code uses ``model.openai_client()`` (an ``openai.AsyncOpenAI``), so the same loop runs
against the embedded local model, an API model, or anything taskgrove can load:

    taskgrove run --include-path examples/sql_agent.py --tasks examples/sql_agent --model local
    taskgrove run --include-path examples/sql_agent.py --tasks examples/sql_agent --model openai/gpt-4o-mini
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from taskgrove import Model, Task, Trajectory, TrajectoryGroup, register_task
from taskgrove.models.openai_client import to_choice

STAFF = [
    ("Ana", "Sales", 52000, "Lisbon"),
    ("Ben", "Sales", 48000, "Porto"),
    ("Chen", "Engineering", 91000, "Lisbon"),
    ("Dana", "Engineering", 87000, "Berlin"),
    ("Eli", "Engineering", 78000, "Berlin"),
    ("Fay", "Support", 41000, "Porto"),
    ("Gus", "Sales", 56000, "Berlin"),
]
QUESTIONS = [
    {"id": "s1", "question": "How many employees work in Sales?", "answer": "3"},
    {"id": "s2", "question": "What is the highest salary in Engineering?", "answer": "91000"},
    {"id": "s3", "question": "In which city does Dana work?", "answer": "Berlin"},
    {"id": "s4", "question": "Who earns the least?", "answer": "Fay"},
]
SCHEMA = "employees(name TEXT, department TEXT, salary INTEGER, city TEXT)"
SYSTEM = f"You answer questions about a company database with one table: {SCHEMA}. Run SQL, then submit_answer."
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "sql_query",
            "description": f"Run one read-only SQLite query on {SCHEMA}; returns the rows.",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "submit_answer",
            "description": "Submit the final answer.",
            "parameters": {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]},
        },
    },
]


def _call(call_id: str, name: str, **arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}


DEMONSTRATION: list[dict[str, Any]] = [  # one worked example: small models need it to follow the format
    {"role": "user", "content": "How many employees work in Support?"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            _call("demo1", "sql_query", query="SELECT COUNT(*) FROM employees WHERE department = 'Support'")
        ],
    },
    {"role": "tool", "tool_call_id": "demo1", "content": "[[1]]"},
    {"role": "assistant", "content": "", "tool_calls": [_call("demo2", "submit_answer", answer="1")]},
    {"role": "tool", "tool_call_id": "demo2", "content": '"answer received"'},
]


def build_database(path: Path) -> Path:
    """Write the staff table to a fresh SQLite file at ``path``."""
    path.unlink(missing_ok=True)
    with sqlite3.connect(path) as db:
        db.execute(f"CREATE TABLE {SCHEMA}")
        db.executemany("INSERT INTO employees VALUES (?, ?, ?, ?)", STAFF)
    return path


def run_sql(path: Path, query: str, max_rows: int = 20) -> list[list[Any]] | str:
    """The rows of ``query`` (read-only), or the SQLite error as text for the model to read."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [list(row) for row in db.execute(query).fetchmany(max_rows)]
    except sqlite3.Error as exc:
        return f"SQL error: {exc}"
    finally:
        db.close()


def normalise(text: str) -> str:
    return " ".join(text.lower().replace(",", "").replace("$", "").split())


@register_task("examples/sql_agent", description="multi-turn SQL tool use over a local SQLite database")
class SqlAgentTask(Task[dict[str, Any]]):
    max_turns = 5

    def __init__(self, name: str = "") -> None:
        super().__init__(name)
        self.database: Path | None = None

    def pre_train(self) -> None:
        """Build the database (also done on first use)."""
        self.database = build_database(Path(tempfile.mkdtemp(prefix="taskgrove-sql-")) / "staff.sqlite")

    def get_dataset(self, split: str) -> Iterator[dict[str, Any]]:
        if self.database is None:
            self.pre_train()
        yield from QUESTIONS

    async def run(self, model: Model, scenario: dict[str, Any], num_samples: int = 1) -> TrajectoryGroup:
        return TrajectoryGroup([await self.episode(model, scenario) for _ in range(num_samples)])

    async def episode(self, model: Model, scenario: dict[str, Any]) -> Trajectory:
        if self.database is None:  # evaluate re-runs stored scenarios without loading the dataset
            self.pre_train()
        assert self.database is not None
        client = model.openai_client()  # type: ignore[attr-defined]
        trajectory = Trajectory(
            [{"role": "system", "content": SYSTEM}, *DEMONSTRATION, {"role": "user", "content": scenario["question"]}],
            metadata={"question_id": scenario["id"]},
        )
        submitted: str | None = None
        queries = errors = turns = 0
        for turns in range(1, self.max_turns + 1):  # noqa: B007 (the count is reported after the loop)
            completion = await client.chat.completions.create(
                model=model.name, messages=trajectory.messages(), tools=TOOLS
            )
            choice = to_choice(completion)
            trajectory.messages_and_choices.append(choice)
            if not choice.tool_calls:
                break
            for call in choice.tool_calls:
                name, raw = call["function"]["name"], call["function"].get("arguments") or "{}"
                try:
                    arguments = json.loads(raw)
                    if name == "sql_query":
                        queries += 1
                        result: Any = run_sql(self.database, str(arguments["query"]))
                        errors += isinstance(result, str)
                    elif name == "submit_answer":
                        submitted = str(arguments["answer"])
                        result = "answer received"
                    else:
                        result = f"unknown tool {name}"
                except (KeyError, json.JSONDecodeError) as exc:
                    result = f"bad arguments: {exc}"
                trajectory.messages_and_choices.append(
                    {"role": "tool", "tool_call_id": call.get("id") or "", "content": json.dumps(result)}
                )
            if submitted is not None:
                break
        if submitted is None:
            trajectory.reward = -0.5
        else:
            trajectory.reward = 1.0 if normalise(submitted) == normalise(scenario["answer"]) else 0.0
        trajectory.metrics = {
            "submitted": submitted is not None,
            "correct": trajectory.reward > 0,
            "queries": queries,
            "sql_errors": errors,
            "turns_used": turns,
        }
        return trajectory
