"""How a declarative task judges a reply: parse it (the task's parser or the row's own choices),
score it with the per-sample metrics and the reward, and score stored replies again (evaluate)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from taskgrove.core import Choice, Message, Trajectory
from taskgrove.tasks.choice_scoring import normalized_metrics


class Judging:
    """Mixed into :class:`~taskgrove.tasks.declarative.DeclarativeTask`, which builds these parts."""

    _row_parser_options: dict[str, Any] | None
    _exact: dict[str, Any] | None
    _choice_labels: dict[str, Any]
    _choices: list[str]
    _parser: Callable[[str | None], Any]
    _prediction_transform: Any
    _sample_metrics: list[tuple[str, Any]]
    _reward_name: str
    _reward_is_sample: bool
    _reward_metric: Any

    @property
    def invalid(self) -> str:
        """``wrong`` (an unparsable reply scores 0) or ``drop`` (left out of the metrics)."""
        raise NotImplementedError

    def rescore(self, record: Mapping[str, Any]) -> list[Trajectory] | None:
        """Score a stored record's replies again without rebuilding prompts (evaluate's fast path).

        Gives the rewards, metrics and metadata that replaying :meth:`run` would give; ``None``
        when the record is not a plain single-reply record of this task (then the executor replays).
        """
        scenario = record.get("scenario")
        if not isinstance(scenario, Mapping) or "reference" not in scenario:
            return None
        row_choices = scenario.get("choices") if self._row_parser_options is not None else None
        reference = scenario["reference"]
        rescored = []
        for output in record.get("outputs") or ():
            messages = output["messages"]
            if len(messages) != 1 or "choice" not in messages[0] or "full" in output:
                return None
            metadata = output.get("metadata")
            stored = metadata.get("loglikelihoods") if metadata else None
            extra = {"loglikelihoods": stored} if stored is not None else None
            rescored.append(self._judge([], messages[0].get("content"), reference, extra, row_choices))
        return rescored

    def predict(self, text: str | None, choices: Sequence[str] | None = None) -> Any:
        """The parsed answer of a reply (``None`` when it does not parse); ``choices`` are the
        row's own options, for tasks with ``choices_field``."""
        if choices is not None:
            value = self._predict_row_choice(text, choices)
        else:
            if text is not None:
                exact = (self._exact or self._choice_labels).get(text.strip())
                if exact is not None:
                    return exact
            value = self._parser(text)
        if value is not None and self._prediction_transform is not None:
            try:
                value = self._prediction_transform(value, {})
            except ValueError:
                value = None
        return value

    def _predict_row_choice(self, text: str | None, choices: Sequence[str]) -> str | None:
        from taskgrove.tasks.parsers import get_parser

        if text is None:
            return None
        if text.strip() in choices:
            return text.strip()
        return get_parser("label", **{**(self._row_parser_options or {}), "labels": list(choices)})(text)

    def _score(
        self,
        messages: list[Message],
        choice: Choice,
        reference: Any,
        extra: dict[str, Any] | None = None,
        choices: Sequence[str] | None = None,
    ) -> Trajectory:
        return self._judge([*messages, choice], choice.content, reference, extra, choices)

    def _judge(
        self,
        conversation: list[Message],
        text: str | None,
        reference: Any,
        extra: dict[str, Any] | None,
        choices: Sequence[str] | None,
    ) -> Trajectory:
        """Parse a reply's ``text`` and score it: the trajectory's reward, metrics and metadata."""
        prediction = self.predict(text, choices)
        metrics: dict[str, Any]
        if prediction is None:  # unparsable: 0 in every per-sample score, or (invalid: drop) in none
            reward = math.nan if self.invalid == "drop" else 0.0
            metrics = dict.fromkeys((name for name, _ in self._sample_metrics), reward)
        else:
            metrics = {name: float(scorer([prediction], [reference])[0]) for name, scorer in self._sample_metrics}
            reward = (
                metrics[self._reward_name]
                if self._reward_is_sample
                else self._reward_metric.compute([(prediction, reference)])
            )
        metrics["unparsable"] = 1.0 if prediction is None else 0.0
        if extra and extra.get("loglikelihoods") is not None:
            options = list(choices) if choices is not None else self._choices
            metrics.update(
                normalized_metrics(extra["loglikelihoods"], options, lambda o: self.predict(o, choices) == reference)
            )
        metadata: dict[str, Any] = {"prediction": prediction}
        if extra:
            metadata.update(extra)
        return Trajectory(messages_and_choices=conversation, reward=float(reward), metrics=metrics, metadata=metadata)
