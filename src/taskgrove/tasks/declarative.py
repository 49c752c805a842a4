"""The Task compiled from a declarative spec: rows -> scenarios -> messages -> parsed, scored answers.

Everything that does not depend on a sample is done once, when the task is built: templates are
compiled, the parser and metrics are bound, the system message is rendered. ``get_dataset``
renders each scenario's prompt text and draws its few-shot demonstrations (kept inside the
scenario, so a stored scenario rebuilds exactly the same conversation), and ``run`` only
assembles messages, calls the model, parses and scores.

Scenario (JSON-serialisable)::

    {"id": "17", "input": "<user text>", "reference": <gold>, "fewshot": [[user, assistant], ...]}

(``messages`` replaces ``input`` for tasks whose rows hold chat messages; ``choices`` holds the
row's own options for multiple choice with ``choices_field``). Each trajectory stores
its parsed answer in ``metadata["prediction"]`` and its per-sample scores in ``metrics``, so
:meth:`DeclarativeTask.aggregate` can compute corpus metrics (F1, BLEU...) from stored records.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from taskgrove.core import (
    Choice,
    Message,
    Model,
    Task,
    TaskTrainConfig,
    TrajectoryGroup,
    supports_loglikelihood,
)
from taskgrove.errors import ConfigError
from taskgrove.tasks.choice_scoring import check_prompt_style, completion_text, score_choices
from taskgrove.tasks.fewshot_pool import FewShotPool
from taskgrove.tasks.judging import Judging
from taskgrove.tasks.prompts import build_messages, compile_template, insert_fewshot, make_environment
from taskgrove.tasks.rows import DataError, as_text, get_path
from taskgrove.tasks.schema import TaskSpec

Scenario = dict[str, Any]

#: Options a run may pass to this task (``task_config: {TASK: {options: {...}}}``).
TASK_OPTIONS = frozenset({"source", "source_options", "mc_scoring", "invalid"})
MC_SCORING = ("auto", "generate")
INVALID = ("wrong", "drop")
#: Settings the executor always passes.
RUN_SETTINGS = frozenset({"prompt_format", "num_fewshot", "seed", "split", "prompt_style"})


class DeclarativeTask(Judging, Task[Scenario]):
    """A :class:`~taskgrove.core.Task` built from a :class:`~taskgrove.tasks.schema.TaskSpec`."""

    def __init__(self, spec: TaskSpec, *, base_dir: Path | None = None) -> None:
        super().__init__(spec.name)
        self.spec = spec
        self.description = spec.description
        self.primary_metric = spec.primary_metric or spec.metrics[0].name
        self.version = spec.version
        self.prompt_style = spec.prompt_style
        self.base_dir = base_dir
        env = make_environment(spec.constants)
        self._input = compile_template(f"{spec.name}: input", spec.input, env) if spec.input is not None else None
        self._system: Message | None = None
        if spec.system is not None:
            self._system = {
                "role": "system",
                "content": compile_template(f"{spec.name}: system", spec.system, env).render({}),
            }
        ref = spec.reference
        self._ref_template = (
            compile_template(f"{spec.name}: reference", ref.template, env) if ref.template is not None else None
        )
        self._ref_transform = self._transform(ref.transform) if ref.transform is not None else None
        target = spec.fewshot.target if spec.fewshot is not None else None
        self._target = compile_template(f"{spec.name}: fewshot target", target, env) if target is not None else None
        self._expand_var: str | None = None
        self._expand_values: list[Any] = [None]
        if spec.expand:
            self._expand_var, self._expand_values = next(iter(spec.expand.items()))
        # per-row options (choices_field): the label parser is bound to each row's options
        self._row_parser_options = dict(spec.parser.options) if spec.choices_field is not None else None
        self._parser = self._build_parser()
        self._prediction_transform = self._transform(spec.prediction_transform) if spec.prediction_transform else None
        if self._prediction_transform is not None and self._prediction_transform.needs_row:
            transform_name = spec.prediction_transform.name if spec.prediction_transform else ""
            raise ConfigError(
                f"task {spec.name}: prediction_transform {transform_name!r} reads row fields; only reference transforms may"
            )
        self._mc = spec.output == "multiple_choice"
        labels = spec.labels or []
        self._choices = list(spec.choices or labels)
        self._choice_labels = dict(zip(self._choices, labels, strict=False)) if self._mc else {}
        # Replies that are exactly a label, alias or choice resolve without running the parser
        # (the label parser would return the same label, only slower).
        self._exact: dict[str, str] = {}
        if spec.parser.name == "label" and "labels" not in spec.parser.options and "aliases" not in spec.parser.options:
            self._exact = {**{label: label for label in labels}, **spec.aliases, **self._choice_labels}
        self._metrics = [(m.name, self._metric(m.name, m.options)) for m in spec.metrics]
        self._sample_metrics = [(name, metric.sample_scorer) for name, metric in self._metrics if metric.kind == "mean"]
        self._corpus_metrics = [(name, metric) for name, metric in self._metrics if metric.kind != "mean"]
        reward_name = spec.reward or spec.metrics[0].name
        self._reward_name = reward_name
        self._reward_metric = dict(self._metrics)[reward_name]
        self._reward_is_sample = self._reward_metric.kind == "mean"
        self.reward_range = self._reward_metric.range

    # --- building blocks ------------------------------------------------------------------------
    def _build_parser(self) -> Any:
        from taskgrove.tasks.parsers import get_parser

        options = dict(self.spec.parser.options)
        if self._row_parser_options is not None:
            options.setdefault("labels", ["<each row's options>"])  # checks the other options now
        if self.spec.parser.name == "label":
            if not self.spec.labels and "labels" not in options:
                raise ConfigError(f"task {self.name}: the label parser needs the task's 'labels'")
            options.setdefault("labels", list(self.spec.labels or []))
            if self.spec.aliases:
                options.setdefault("aliases", dict(self.spec.aliases))
        try:
            return get_parser(self.spec.parser.name, **options)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"task {self.name}: parser {self.spec.parser.name!r}: {exc}") from None

    def _metric(self, name: str, options: dict[str, Any]) -> Any:
        from taskgrove.metrics import get_metric

        try:
            return get_metric(name, **options)
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"task {self.name}: metric {name!r}: {exc.args[0] if exc.args else exc}") from None

    def _transform(self, spec: Any) -> Any:
        from taskgrove.tasks.transforms import get_transform

        try:
            return get_transform(spec.name, **spec.options)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"task {self.name}: transform {spec.name!r}: {exc}") from None

    # --- configuration --------------------------------------------------------------------------
    def configure(self, **settings: Any) -> None:
        """Run settings (``prompt_format``, ``num_fewshot``, ``seed``, ``split``) and task options
        ``source`` (a source string replacing the spec's, e.g. a local fixture),
        ``source_options`` (its load options), ``mc_scoring`` (``auto``: a multiple-choice
        task scores its choices by log-likelihood when the model can; ``generate``: it always
        generates and parses, e.g. when there are many long choices) and ``invalid``
        (``wrong``/``drop``: overrides the spec's handling of unparsable replies)."""
        unknown = sorted(set(settings) - RUN_SETTINGS - TASK_OPTIONS)
        if unknown:
            raise ConfigError(
                f"task {self.name}: unknown option(s) {', '.join(unknown)}; this task takes {', '.join(sorted(TASK_OPTIONS))}"
            )
        if settings.get("mc_scoring", "auto") not in MC_SCORING:
            raise ConfigError(
                f"task {self.name}: mc_scoring must be one of {', '.join(MC_SCORING)}, not {settings['mc_scoring']!r}"
            )
        if settings.get("invalid", "wrong") not in INVALID:
            raise ConfigError(
                f"task {self.name}: invalid must be one of {', '.join(INVALID)}, not {settings['invalid']!r}"
            )
        if "source_options" in settings and "source" not in settings:
            raise ConfigError(f"task {self.name}: option source_options applies to an overriding 'source'; give both")
        self.prompt_style = check_prompt_style(
            self.name,
            settings.get("prompt_style") or self.spec.prompt_style,
            multiple_choice=self._mc,
            has_input=self._input is not None,
            mc_scoring=settings.get("mc_scoring", "auto"),
        )
        if settings.get("prompt_format") == "few_shot" and self.spec.fewshot is None:
            raise ConfigError(
                f"task {self.name} has no few-shot examples (its spec sets fewshot: null); run it zero_shot"
            )
        super().configure(**settings)

    @property
    def invalid(self) -> str:
        """``wrong`` or ``drop``: how unparsable replies count (the run's option, else the spec's)."""
        return str(self.settings.get("invalid") or self.spec.invalid)

    def spec_hash(self) -> str:
        """The hash of the task's resolved spec (:meth:`TaskSpec.spec_hash`)."""
        return self.spec.spec_hash()

    def get_train_config(self) -> TaskTrainConfig:
        try:
            return TaskTrainConfig(**self.spec.train)
        except TypeError as exc:
            raise ConfigError(f"task {self.name}: train: {exc}") from None

    # --- data -----------------------------------------------------------------------------------
    def rows(self, split: str) -> Iterator[dict[str, Any]]:
        """The raw rows of a task split (after the spec's split mapping and any source override)."""
        from taskgrove.tasks.sources import load_rows

        source_split = self.spec.splits.get(split, split)
        if "source" in self.settings:
            return load_rows(
                str(self.settings["source"]), source_split, **dict(self.settings.get("source_options") or {})
            )
        return load_rows(self.spec.source.uri, source_split, base_dir=self.base_dir, **self.spec.source.load_options())

    def get_dataset(self, split: str) -> Iterator[Scenario]:
        """Scenarios of ``split``; with ``prompt_format: few_shot`` each carries ``num_fewshot``
        demonstrations drawn (seeded by the run seed) from the first ``pool_size`` rows of the
        few-shot split, never the item itself (rows of the same source split with its id)."""
        k = int(self.settings.get("num_fewshot") or 0) if self.settings.get("prompt_format") == "few_shot" else 0
        pool = self._pool(split) if k else None
        rng = random.Random(int(self.settings.get("seed") or 0))
        for index, row in enumerate(self.rows(split)):
            row_id = str(get_path(row, self.spec.id_field)) if self.spec.id_field else str(index)
            for value in self._expand_values:
                extra = {self._expand_var: value} if self._expand_var else {}
                scenario: Scenario = {"id": f"{row_id}/{value}" if self._expand_var else row_id}
                if self._expand_var:
                    scenario[self._expand_var] = value
                if self._input is not None:
                    scenario["input"] = self._input.render(row, **extra)
                else:
                    scenario["messages"] = self._row_messages(row)
                scenario["reference"] = self._reference(row, extra, row_id)
                if self.spec.choices_field is not None:
                    scenario["choices"] = self._row_choices(row, scenario["reference"], row_id)
                if pool is not None:
                    scenario["fewshot"] = pool.draw(rng, k, row_id, value)
                yield scenario

    def _row_messages(self, row: Mapping[str, Any]) -> list[Message]:
        messages = get_path(row, self.spec.messages_field or "")
        if not isinstance(messages, list) or not all(
            isinstance(m, Mapping) and "role" in m and "content" in m for m in messages
        ):
            raise DataError(
                f"task {self.name}: field {self.spec.messages_field!r} must hold chat messages [{{role, content}}, ...]"
            )
        return [{"role": m["role"], "content": m["content"]} for m in messages]

    def _reference(self, row: Mapping[str, Any], extra: Mapping[str, Any], row_id: str) -> Any:
        ref = self.spec.reference
        try:
            value = get_path(row, ref.field) if ref.field is not None else self._ref_template.render(row, **extra)  # type: ignore[union-attr]
            if ref.map is not None:
                value = [self._mapped(v) for v in value] if isinstance(value, list) else self._mapped(value)
            if self._ref_transform is not None:
                value = self._ref_transform(value, row)
        except (DataError, ValueError) as exc:
            raise DataError(f"task {self.name}, row {row_id}: reference: {exc}") from None
        return value

    def reference_of(self, row: Mapping[str, Any], value: Any = None, row_id: str = "?") -> Any:
        """The gold of a data row (with the expand variable's ``value``), as scenarios carry it."""
        return self._reference(row, {self._expand_var: value} if self._expand_var else {}, row_id)

    def _row_choices(self, row: Mapping[str, Any], reference: Any, row_id: str) -> list[str]:
        choices = get_path(row, self.spec.choices_field or "")
        if not isinstance(choices, list) or not choices or not all(isinstance(c, str) for c in choices):
            raise DataError(
                f"task {self.name}, row {row_id}: field {self.spec.choices_field!r} must hold a non-empty list of strings"
            )
        if reference not in choices:
            raise DataError(
                f"task {self.name}, row {row_id}: the reference {reference!r} is not one of the row's options {choices}"
            )
        return list(choices)

    def _mapped(self, value: Any) -> Any:
        table = self.spec.reference.map or {}
        key = str(value)
        if key not in table:
            raise ValueError(f"value {value!r} is not in the reference map (keys: {', '.join(table)})")
        return table[key]

    def _pool(self, split: str) -> FewShotPool:
        assert self.spec.fewshot is not None
        pool_split = self.spec.fewshot.split
        same_rows = self.spec.splits.get(pool_split, pool_split) == self.spec.splits.get(split, split)
        rows = []
        for index, row in enumerate(self.rows(pool_split)):
            if index >= self.spec.fewshot.pool_size:
                break
            rows.append((str(get_path(row, self.spec.id_field)) if self.spec.id_field else str(index), row))
        return FewShotPool(self, rows, exclude_item=same_rows)

    def demonstration(self, row: Mapping[str, Any], value: Any, row_id: str) -> list[str]:
        """``[user, assistant]`` of a few-shot example made from a pool row."""
        extra = {self._expand_var: value} if self._expand_var else {}
        if self._input is not None:
            user = self._input.render(row, **extra)
        else:
            turns = [m for m in self._row_messages(row) if m["role"] == "user"]
            if not turns:
                raise DataError(f"task {self.name}, few-shot row {row_id}: its messages have no user turn")
            user = str(turns[-1]["content"])
        return [user, self.target_text(self._reference(row, extra, row_id), value)]

    def target_text(self, reference: Any, value: Any = None) -> str:
        """The gold answer as the assistant would write it: the spec's ``fewshot.target`` template
        (which sees ``reference`` and the expand variable), else :func:`as_text`."""
        if self._target is None:
            return as_text(reference)
        extra = {self._expand_var: value} if self._expand_var else {}
        return self._target.render({"reference": reference, **extra})

    def training_messages(self, scenario: Scenario) -> list[Message]:
        """The prompt exactly as :meth:`run` sends it, then the gold answer (for SFT)."""
        value = scenario.get(self._expand_var) if self._expand_var else None
        return [
            *self.messages(scenario),
            {"role": "assistant", "content": self.target_text(scenario["reference"], value)},
        ]

    # --- running --------------------------------------------------------------------------------
    def messages(self, scenario: Scenario) -> list[Message]:
        """The prompt of ``scenario`` (the same for the same scenario, whenever it is built)."""
        examples = scenario.get("fewshot") or ()
        if self.prompt_style == "completion":  # plain text, one message holding it verbatim
            return [{"role": "user", "content": completion_text(self._system, examples, scenario["input"], self.spec)}]
        if "messages" in scenario:
            return insert_fewshot(scenario["messages"], examples) if examples else list(scenario["messages"])
        return build_messages(self._system, examples, scenario["input"])

    async def run(self, model: Model, scenario: Scenario, num_samples: int = 1) -> TrajectoryGroup:
        messages = self.messages(scenario)
        reference = scenario["reference"]
        row_choices: list[str] | None = scenario["choices"] if self._row_parser_options is not None else None
        completion = self.prompt_style == "completion"
        if (
            self._mc
            and self.settings.get("mc_scoring", "auto") == "auto"
            and (completion or supports_loglikelihood(model))
        ):
            options = row_choices if row_choices is not None else self._choices
            scores = await score_choices(
                model, messages, options, style=self.prompt_style, target_delimiter=self.spec.target_delimiter
            )
            best = max(range(len(scores)), key=scores.__getitem__)
            extra = {"loglikelihoods": [float(s) for s in scores]}
            return TrajectoryGroup(
                [
                    self._score(
                        messages, Choice(options[best], finish_reason="loglikelihood"), reference, extra, row_choices
                    )
                    for _ in range(num_samples)
                ]
            )
        if num_samples == 1:
            return TrajectoryGroup(
                [self._score(messages, await model.generate(messages), reference, None, row_choices)]
            )
        replies = await asyncio.gather(*(model.generate(messages) for _ in range(num_samples)), return_exceptions=True)
        return TrajectoryGroup(
            [
                r if isinstance(r, BaseException) else self._score(messages, r, reference, None, row_choices)
                for r in replies
            ]
        )

    # --- scoring --------------------------------------------------------------------------------
    def aggregate(self, records: list[dict[str, Any]], *, n_resamples: int = 1000) -> dict[str, dict[str, float]]:
        """Mean reward and per-sample metrics (with bootstrap 95% intervals), plus each corpus
        metric (F1, BLEU, entity F1...) over every stored (prediction, reference) pair, resampled
        by item (all outputs of an item together)."""
        from taskgrove.metrics.aggregate import corpus_metrics, mean_metrics

        result = mean_metrics(records, n_resamples=n_resamples)
        drop = self.invalid == "drop"  # unparsable replies left out, as the task's paper does
        result.update(corpus_metrics(records, self._corpus_metrics, n_resamples=n_resamples, drop_unparsed=drop))
        return result
