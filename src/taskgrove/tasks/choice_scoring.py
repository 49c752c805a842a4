"""Multiple choice by log-likelihood in either prompt style, and its length-normalised variants.

* ``chat`` (the default): the prompt messages go through the model's chat template and each
  choice is scored as the assistant's reply (``model.loglikelihood``).
* ``completion``: the prompt is plain text built as lm-evaluation-harness builds it
  (:func:`taskgrove.tasks.prompts.completion_prompt`) and each continuation is
  ``target_delimiter + choice`` (``model.loglikelihood_text``): how lm-eval evaluates base models.

Each scored trajectory reports ``acc_norm`` and ``acc_bytes`` beside the task's metrics (see
:mod:`taskgrove.metrics.choice`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, cast

from taskgrove.core import Message, Model
from taskgrove.errors import ConfigError, TaskgroveError
from taskgrove.tasks.prompts import completion_prompt

PROMPT_STYLES = ("chat", "completion")


def check_prompt_style(
    task: str, style: Any, *, multiple_choice: bool, has_input: bool, mc_scoring: str
) -> Literal["chat", "completion"]:
    """``style`` when the task can use it, else a :class:`ConfigError` saying why."""
    if style not in PROMPT_STYLES:
        raise ConfigError(f"task {task}: prompt_style must be chat or completion, not {style!r}")
    if style == "completion" and not (multiple_choice and has_input and mc_scoring == "auto"):
        raise ConfigError(
            f"task {task}: prompt_style completion is for multiple-choice tasks with an input template, "
            "scored by log-likelihood (mc_scoring auto)"
        )
    return cast(Literal["chat", "completion"], style)


def completion_text(system: Message | None, examples: Sequence[Sequence[str]], user: str, spec: Any) -> str:
    """The completion-style prompt of a scenario (see :func:`completion_prompt`)."""
    content = system.get("content") if system else None
    return completion_prompt(str(content) if content else None, examples, user, target_delimiter=spec.target_delimiter)


async def score_choices(
    model: Model, messages: list[Message], options: Sequence[str], *, style: str, target_delimiter: str
) -> list[float]:
    """The log-likelihood of each option after the prompt ``messages``: through the chat template,
    or (completion) after the plain text the one message holds, each option after the delimiter."""
    if style != "completion":
        return [float(s) for s in await model.loglikelihood(messages, list(options))]  # type: ignore[attr-defined]
    scorer = getattr(model, "loglikelihood_text", None)
    if scorer is None:
        raise TaskgroveError(f"model {model.name} cannot score plain text (prompt_style completion)")
    text = str(messages[0]["content"])
    return [float(s) for s in await scorer(text, [target_delimiter + option for option in options])]


def normalized_metrics(
    loglikelihoods: Sequence[float], options: Sequence[str], correct: Callable[[str], bool]
) -> dict[str, float]:
    """``acc_norm`` and ``acc_bytes`` of one item: 1.0 when the option they pick is correct."""
    from taskgrove.metrics.choice import picks

    return {
        key: float(correct(options[index])) for key, index in picks(loglikelihoods, options).items() if key != "acc"
    }
