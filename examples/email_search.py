"""Pattern 2, multi-turn with tools: search and read a small local inbox, then submit an answer.

Reward 1 for the right answer, 0 for a wrong one, -0.5 when no answer is submitted.

The conversation opens with one worked example (``DEMONSTRATION``: a question answered by
search, read and submit calls), which small local models need to follow the tool-call format.

    taskgrove run --include-path examples/email_search.py --tasks examples/email_search
"""

import json
from collections.abc import Iterator
from typing import Any

from taskgrove import Model, Task, Trajectory, TrajectoryGroup, register_task

INBOX = [
    {"id": "e1", "from": "cfo@acme.com", "subject": "Q3 budget", "body": "The Q3 marketing budget is 120,000 USD."},
    {"id": "e2", "from": "hr@acme.com", "subject": "Offsite", "body": "The offsite is in Lisbon on 14 May."},
    {"id": "e3", "from": "it@acme.com", "subject": "Password reset", "body": "Your VPN token expires on Friday."},
    {"id": "e4", "from": "ceo@acme.com", "subject": "Board meeting", "body": "The board meets on 2 June at 9am."},
]
QUERIES = [
    {"id": "q1", "question": "What is the Q3 marketing budget?", "email_id": "e1", "answer": "120,000 USD"},
    {"id": "q2", "question": "Where is the offsite?", "email_id": "e2", "answer": "Lisbon"},
    {"id": "q3", "question": "When does the board meet?", "email_id": "e4", "answer": "2 June"},
]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "search_emails",
            "description": "Search subjects and bodies by keywords.",
            "parameters": {"type": "object", "properties": {"keywords": {"type": "string"}}, "required": ["keywords"]},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "read_email",
            "description": "Read one email by id.",
            "parameters": {"type": "object", "properties": {"email_id": {"type": "string"}}, "required": ["email_id"]},
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

SYSTEM = "You answer questions about the user's inbox. Use the tools, then call submit_answer."


def _call(call_id: str, name: str, **arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}


DEMONSTRATION: list[dict[str, Any]] = [
    {"role": "user", "content": "Who sent the password reset email?"},
    {"role": "assistant", "content": "", "tool_calls": [_call("demo1", "search_emails", keywords="password")]},
    {"role": "tool", "tool_call_id": "demo1", "content": '[{"id": "e3", "subject": "Password reset"}]'},
    {"role": "assistant", "content": "", "tool_calls": [_call("demo2", "read_email", email_id="e3")]},
    {"role": "tool", "tool_call_id": "demo2", "content": json.dumps(INBOX[2])},
    {"role": "assistant", "content": "", "tool_calls": [_call("demo3", "submit_answer", answer="it@acme.com")]},
    {"role": "tool", "tool_call_id": "demo3", "content": '"answer received"'},
]


def search_emails(keywords: str) -> list[dict[str, str]]:
    words = [w.lower() for w in keywords.split()]
    hits = [m for m in INBOX if any(w in (m["subject"] + " " + m["body"]).lower() for w in words)]
    return [{"id": m["id"], "subject": m["subject"]} for m in hits]


def read_email(email_id: str) -> dict[str, str] | str:
    return next((m for m in INBOX if m["id"] == email_id), f"no email with id {email_id}")


def normalise(text: str) -> str:
    return " ".join(text.lower().replace(",", "").split())


@register_task("examples/email_search", description="multi-turn tool use over a local inbox")
class EmailSearchTask(Task[dict[str, Any]]):
    max_turns = 6

    def get_dataset(self, split: str) -> Iterator[dict[str, Any]]:
        yield from QUERIES

    async def run(self, model: Model, scenario: dict[str, Any], num_samples: int = 1) -> TrajectoryGroup:
        return TrajectoryGroup([await self.episode(model, scenario) for _ in range(num_samples)])

    async def episode(self, model: Model, scenario: dict[str, Any]) -> Trajectory:
        trajectory = Trajectory(
            [{"role": "system", "content": SYSTEM}, *DEMONSTRATION, {"role": "user", "content": scenario["question"]}],
            metadata={"query_id": scenario["id"]},
        )
        submitted: str | None = None
        read: list[str] = []
        turns = 0
        for turns in range(1, self.max_turns + 1):  # noqa: B007 (the count is reported after the loop)
            choice = await model.generate(trajectory.messages(), tools=TOOLS)
            trajectory.messages_and_choices.append(choice)
            if not choice.tool_calls:
                break
            for call in choice.tool_calls:
                name = call["function"]["name"]
                try:
                    arguments = json.loads(call["function"].get("arguments") or "{}")
                    if name == "search_emails":
                        result: Any = search_emails(arguments["keywords"])
                    elif name == "read_email":
                        read.append(arguments["email_id"])
                        result = read_email(arguments["email_id"])
                    elif name == "submit_answer":
                        submitted = str(arguments["answer"])
                        result = "answer received"
                    else:
                        result = f"unknown tool {name}"
                except (KeyError, json.JSONDecodeError) as exc:
                    result = f"bad arguments: {exc}"
                trajectory.messages_and_choices.append(
                    {"role": "tool", "tool_call_id": call.get("id", ""), "content": json.dumps(result)}
                )
            if submitted is not None:
                break
        if submitted is None:
            trajectory.reward = -0.5
        else:
            trajectory.reward = 1.0 if normalise(scenario["answer"]) in normalise(submitted) else 0.0
        trajectory.metrics = {
            "found_answer": submitted is not None,
            "read_right_email": scenario["email_id"] in read,
            "turns_used": turns,
            "correct": trajectory.reward > 0,
        }
        return trajectory
