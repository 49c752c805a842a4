"""The pydantic model of a declarative task file (see :mod:`taskgrove.tasks.spec`).

Kept apart from :mod:`taskgrove.tasks.spec` so that listing the task tree does not import pydantic.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

OutputType = Literal["generate", "multiple_choice"]
PromptStyle = Literal["chat", "completion"]
#: The fields whose values decide what a task scores (its spec hash covers them).
HASHED_FIELDS = (
    "version",
    "invalid",
    "system",
    "input",
    "messages_field",
    "expand",
    "constants",
    "reference",
    "fewshot",
    "output",
    "labels",
    "aliases",
    "choices",
    "choices_field",
    "prompt_style",
    "target_delimiter",
    "parser",
    "prediction_transform",
    "metrics",
    "reward",
    "primary_metric",
)
#: Keys of a declarative scenario (an expand variable is stored beside them).
SCENARIO_KEYS = frozenset({"id", "input", "messages", "reference", "choices", "fewshot"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _named(value: Any) -> Any:
    """``"name"`` -> ``{"name": "name"}`` for parser/metric/transform entries."""
    return {"name": value} if isinstance(value, str) else value


class SourceSpec(_Strict):
    """Where the rows come from: a source string for :func:`taskgrove.tasks.sources.load_rows`."""

    uri: str
    revision: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    def load_options(self) -> dict[str, Any]:
        """The keyword options for ``load_rows`` (``revision`` included when set)."""
        return {**self.options, **({"revision": self.revision} if self.revision else {})}


class NamedSpec(_Strict):
    """A parser, metric or transform by name, with its options.

    Options may also be written beside the name: ``{name: entities, types: [PER, ORG]}``.
    """

    name: str
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _flat_options(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            extra = {k: v for k, v in value.items() if k not in ("name", "options")}
            if extra:
                return {"name": value.get("name"), "options": {**dict(value.get("options") or {}), **extra}}
        return value


class ReferenceSpec(_Strict):
    """The gold answer of a row: a field (dotted path) or a template, then ``map`` and ``transform``.

    ``map`` replaces values (each element of a list value): keys are compared as strings, so
    ``{0: negative}`` matches the integer 0; a value missing from the map is an error.
    """

    field: str | None = None
    template: str | None = None
    map: dict[str, Any] | None = None
    transform: NamedSpec | None = None

    @field_validator("map", mode="before")
    @classmethod
    def _string_keys(cls, value: Any) -> Any:
        return {str(k): v for k, v in value.items()} if isinstance(value, Mapping) else value

    @field_validator("transform", mode="before")
    @classmethod
    def _transform_name(cls, value: Any) -> Any:
        return _named(value)

    @model_validator(mode="after")
    def _one_source(self) -> ReferenceSpec:
        if (self.field is None) == (self.template is None):
            raise ValueError("reference needs exactly one of 'field' or 'template'")
        return self


class FewShotSpec(_Strict):
    """Where demonstrations come from and how their answers are written.

    ``target`` is a template for the assistant's answer in demonstrations and SFT; it sees
    ``reference`` (the gold value), the expand variable and the constants, not the row. Without
    it the reference is shown as text (``(text, type)`` pairs as ``text - type`` lines).
    ``pool_size`` caps how many rows of ``split`` are read to draw demonstrations from.
    """

    split: str = "train"
    target: str | None = None
    pool_size: int = Field(1000, gt=0)


class TaskSpec(_Strict):
    """One declarative task (examples: ``taskgrove/tasks/catalog/**.yaml``).

    Fields:

    * ``name``: the task's path in the tree (``finance/fomc``); ``description``: its first line
      is the summary ``taskgrove tasks`` shows.
    * ``source``: a source string for :func:`taskgrove.tasks.sources.load_rows`
      (``hf:org/dataset[:config]``, ``file:data/{split}.jsonl``, ``openai-evals:NAME``...), or
      ``{uri, revision, options}``. ``splits`` maps task splits (``train``/``val``/``test``) to the
      source's split names (unmapped names pass through). ``id_field``: a row field (dotted path)
      that identifies a row; default: the row's index in its split.
    * The prompt: ``system`` (a template over ``constants``) and ``input`` (a Jinja2 template over
      the row), or ``messages_field`` for rows that hold their own chat messages. ``expand``
      ``{var: [values]}`` makes one scenario per row and value, with ``var`` visible to templates.
      ``constants`` are names every template sees.
    * ``reference``: the gold answer (see :class:`ReferenceSpec`); ``fewshot``: where
      demonstrations come from and how their answers are written (:class:`FewShotSpec`;
      ``null`` for none).
    * ``output``: ``generate`` (reply parsed by ``parser``) or ``multiple_choice`` (``labels``
      scored by log-likelihood when the model can score, else generated and parsed; ``choices``
      gives other continuation texts, one per label). ``aliases`` maps other answer forms to labels.
    * ``parser``: a parser of :func:`taskgrove.tasks.parsers.get_parser` by name with its
      options (the ``label`` parser gets ``labels`` and ``aliases``); ``prediction_transform``:
      a :mod:`~taskgrove.tasks.transforms` converter applied to the parsed answer.
    * ``metrics``: names of :func:`taskgrove.metrics.get_metric` with options; ``reward``: the
      metric whose per-sample value is ``Trajectory.reward`` (default: the first);
      ``primary_metric``: the one the task is known by (default: the first).
    * ``train``: :class:`~taskgrove.core.TaskTrainConfig` defaults.
    * ``invalid``: what an unparsable reply counts as: ``wrong`` (default: reward 0, a wrong
      answer in every metric) or ``drop`` (left out of every metric but ``unparsable``, as some
      papers do; a run may override it with the task option ``invalid``).
    * ``differences``: how the task differs from the paper or harness it reproduces
      (``taskgrove tasks -v`` shows it).
    * ``version``: the task's version (default 1); raise it when a change alters its scores.
      metrics.json records it with :meth:`spec_hash`.
    * ``prompt_style``: ``chat`` (messages through the model's chat template) or ``completion``
      (plain text as lm-eval builds it: system text, demonstrations ``input + target_delimiter
      + answer`` separated by blank lines, then the input; a multiple-choice continuation is
      ``target_delimiter + choice``). ``target_delimiter`` defaults to lm-eval's ``" "``.
    """

    name: str
    description: str = ""
    source: SourceSpec
    splits: dict[str, str] = Field(default_factory=dict)
    id_field: str | None = None
    system: str | None = None
    input: str | None = None
    messages_field: str | None = None
    expand: dict[str, list[Any]] | None = None
    constants: dict[str, Any] = Field(default_factory=dict)
    reference: ReferenceSpec
    fewshot: FewShotSpec | None = Field(default_factory=lambda: FewShotSpec.model_validate({}))
    output: OutputType = "generate"
    labels: list[str] | None = None
    aliases: dict[str, str] = Field(default_factory=dict)
    choices: list[str] | None = None
    choices_field: str | None = None
    """A row field (dotted path) listing that row's own options, for multiple choice whose
    options differ from row to row (BIG-bench, HellaSwag-style data). The gold reference must be
    one of them; a ``label`` parser reads replies against them. Replaces ``labels``/``choices``."""
    parser: NamedSpec = Field(default_factory=lambda: NamedSpec(name="text"))
    prediction_transform: NamedSpec | None = None
    metrics: list[NamedSpec]
    reward: str | None = None
    primary_metric: str | None = None
    train: dict[str, Any] = Field(default_factory=dict)
    invalid: Literal["wrong", "drop"] = "wrong"
    differences: str | None = None
    version: int = Field(1, ge=1)
    prompt_style: PromptStyle = "chat"
    target_delimiter: str = " "

    @field_validator("source", mode="before")
    @classmethod
    def _source_string(cls, value: Any) -> Any:
        return {"uri": value} if isinstance(value, str) else value

    @field_validator("reference", mode="before")
    @classmethod
    def _reference_field(cls, value: Any) -> Any:
        return {"field": value} if isinstance(value, str) else value

    @field_validator("parser", "prediction_transform", mode="before")
    @classmethod
    def _parser_name(cls, value: Any) -> Any:
        return _named(value)

    @field_validator("metrics", mode="before")
    @classmethod
    def _metric_names(cls, value: Any) -> Any:
        return [_named(v) for v in value] if isinstance(value, list) else value

    @model_validator(mode="after")
    def _consistent(self) -> TaskSpec:
        problems = []
        if (self.input is None) == (self.messages_field is None):
            problems.append("give exactly one of 'input' (a template) or 'messages_field' (rows holding chat messages)")
        if self.messages_field is not None and self.system is not None:
            problems.append("'system' cannot be combined with 'messages_field' (the rows hold their own messages)")
        if not self.metrics:
            problems.append("'metrics' must name at least one metric")
        names = [m.name for m in self.metrics]
        if len(set(names)) != len(names):
            problems.append(f"'metrics' names a metric twice: {names}")
        if self.reward is not None and self.reward not in names:
            problems.append(f"reward {self.reward!r} is not one of the task's metrics {names}")
        if self.primary_metric is not None and self.primary_metric not in (*names, "reward"):
            problems.append(
                f"primary_metric {self.primary_metric!r} is not one of the task's metrics {names} or 'reward'"
            )
        if self.expand is not None:
            if len(self.expand) != 1 or not next(iter(self.expand.values())):
                problems.append("'expand' maps exactly one variable name to a non-empty list of values")
            elif next(iter(self.expand)) in SCENARIO_KEYS:
                problems.append(f"the expand variable may not be called one of {sorted(SCENARIO_KEYS)}")
        if self.output == "multiple_choice" and not self.labels and self.choices_field is None:
            problems.append("a multiple_choice task needs 'labels' (or 'choices_field' for per-row options)")
        if self.choices_field is not None and (
            self.output != "multiple_choice" or self.labels or self.choices or self.aliases
        ):
            problems.append(
                "'choices_field' (per-row options) is for multiple_choice tasks without 'labels', 'choices' or 'aliases'"
            )
        if self.choices_field is not None and self.parser.name != "label":
            problems.append(
                "'choices_field' needs the label parser (parser: label), which reads replies against each row's options"
            )
        if self.choices is not None and (not self.labels or len(self.choices) != len(self.labels)):
            problems.append("'choices' must list one continuation per label")
        if self.labels is not None and len(set(self.labels)) != len(self.labels):
            problems.append("'labels' repeats a label")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def metric_names(self) -> list[str]:
        return [m.name for m in self.metrics]

    def spec_hash(self) -> str:
        """A hash of what decides the task's scores (prompt, parser, metrics, few-shot settings,
        version: :data:`HASHED_FIELDS`); stable across runs and machines, blind to the description,
        the data source and training defaults."""
        import hashlib
        import json

        resolved = self.model_dump(mode="json", include=set(HASHED_FIELDS))
        text = json.dumps(resolved, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
