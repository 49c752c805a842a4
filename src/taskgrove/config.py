"""RunConfig: every run parameter, validated, merged with precedence CLI > YAML > defaults."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from taskgrove.errors import ConfigError

Mode = Literal["inference", "evaluate", "run"]
PromptFormat = Literal["zero_shot", "few_shot"]
PromptStyle = Literal["chat", "completion"]
FailedSamples = Literal["wrong", "exclude"]

SAMPLING_KEYS = ("max_tokens", "temperature", "top_p", "top_k", "repetition_penalty", "stop", "seed")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TaskOverrides(_Strict):
    """Per-task settings (``task_config: {fomc: {max_tokens: 16}}``); unset keys inherit the run's."""

    max_tokens: int | None = Field(None, gt=0)
    temperature: float | None = Field(None, ge=0)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, gt=0)
    repetition_penalty: float | None = Field(None, gt=0)
    stop: list[str] | None = None
    batch_size: int | None = Field(None, gt=0)
    prompt_format: PromptFormat | None = None
    num_fewshot: int | None = Field(None, ge=0)
    prompt_style: PromptStyle | None = None
    split: str | None = None
    limit: int | None = Field(None, gt=0)
    num_samples: int | None = Field(None, gt=0)
    seed: int | None = None
    concurrency: int | None = Field(None, gt=0)
    max_sample_errors: float | None = Field(None, ge=0)
    invalid: Literal["wrong", "drop"] | None = None
    options: dict[str, Any] = Field(default_factory=dict)


class RunConfig(_Strict):
    """All parameters of a run. Defaults follow the FLaME multi-task guide where it names one."""

    mode: Mode | None = None
    tasks: list[str] = Field(default_factory=list)
    file_name: str | None = None
    model: str | None = None
    max_tokens: int = Field(128, gt=0)
    temperature: float = Field(0.0, ge=0)
    top_p: float = Field(0.9, gt=0, le=1)
    top_k: int | None = Field(None, gt=0)
    repetition_penalty: float = Field(1.0, gt=0)
    stop: list[str] | None = None
    batch_size: int = Field(10, gt=0)
    prompt_format: PromptFormat = "zero_shot"
    num_fewshot: int = Field(3, ge=0)
    prompt_style: PromptStyle | None = Field(
        None,
        description="chat (chat template) or completion (plain text, lm-eval style); default: each task's own",
    )
    split: str = "test"
    limit: int | None = Field(None, gt=0)
    num_samples: int = Field(1, gt=0)
    seed: int = 0
    output_dir: str = "results"
    run_id: str | None = None
    resume: str | None = None
    allow_changed_resume: bool = Field(
        False,
        description="let --resume continue with another model, sampling or prompt settings; "
        "each sample then records its model",
    )
    concurrency: int = Field(32, gt=0)
    max_sample_errors: float = Field(
        0.1, ge=0, description="a task fails past this many failed samples: a count (>= 1) or a fraction (< 1)"
    )
    invalid: Literal["wrong", "drop"] | None = Field(
        None,
        description="unparsable replies: wrong (reward 0, a wrong answer) or drop (left out of the scores, as FLaME "
        "does for some tasks); default: each task's own setting (wrong unless its spec says otherwise)",
    )
    failed_samples: FailedSamples = Field(
        "wrong",
        description="a sample that failed (model or task error) counts as wrong (default) or is excluded from the scores",
    )
    bootstrap_resamples: int = Field(1000, ge=1, description="bootstrap resamples behind every interval")
    rescore_changed: bool = Field(
        False, description="evaluate: re-score even when a task's spec hash differs from the stored one"
    )
    include_path: list[str] = Field(default_factory=list)
    cache: bool = True
    cache_dir: str | None = Field(
        None, description="response cache and converted models (default $TASKGROVE_CACHE or ~/.cache/taskgrove)"
    )
    base_url: str | None = None
    api_key_env: str | None = Field(
        None, description="name of the environment variable holding the API key (the key itself is never stored)"
    )
    request_timeout: float = Field(60.0, gt=0)
    max_retries: int = Field(5, ge=0)
    progress: bool = True
    html_report: bool = Field(
        False, description="after a command-line run, write the HTML report to <run dir>/report/index.html"
    )
    next_step: str | None = Field(None, description="a line the command line prints at the end of the run")
    batch: bool = Field(
        False,
        description="send requests through the provider's batch API (openai/..., anthropic/...): "
        "up to --concurrency requests a batch, batch ids kept in the run folder for --resume",
    )
    replicas: int = Field(1, gt=0, description="vllm:<model>: start this many vLLM servers, load-balanced")
    batch_poll_interval: float = Field(10.0, gt=0, description="seconds before the first batch status poll (backs off)")
    task_config: dict[str, TaskOverrides] = Field(default_factory=dict)

    @field_validator("tasks", "include_path", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("run_id")
    @classmethod
    def _plain_run_id(cls, value: str | None) -> str | None:
        from taskgrove.names import check_run_id

        if value is None:
            return None
        try:
            return check_run_id(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        from urllib.parse import urlsplit

        if value is None:
            return None
        for url in value.split(","):  # several: replicas of one model (data parallel)
            try:
                parts = urlsplit(url.strip())
                parts.port  # noqa: B018 (raises on a malformed port)
            except ValueError:
                raise ValueError("not a valid URL") from None
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(
                    "expected an http:// or https:// URL with a host (or several, comma-separated), "
                    "e.g. http://localhost:8000/v1"
                )
        return value

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="before")
    @classmethod
    def _batch_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("batch") and data.get("concurrency") is None:
            return {**data, "concurrency": 1000}  # a batch holds the requests in flight: let many be
        return data

    @model_validator(mode="after")
    def _batch_needs_remote(self) -> RunConfig:
        if self.batch and self.mode != "evaluate" and not (self.model or "").startswith(("openai/", "anthropic/")):
            raise ValueError("--batch works with --model openai/<model> or anthropic/<model>")
        if self.batch and self.base_url and "," in self.base_url:
            raise ValueError("--batch takes one --base-url, not a list of replicas")
        if self.replicas > 1 and not (self.model or "").startswith("vllm:"):
            raise ValueError(
                "--replicas starts vLLM servers: use it with --model vllm:<model> (or list --base-url URLs)"
            )
        return self

    @model_validator(mode="after")
    def _evaluate_needs_source(self) -> RunConfig:
        if self.mode == "evaluate" and not self.file_name and not self.resume:
            raise ValueError("File name is required for evaluation mode (--file_name RUN_DIR_OR_FILE)")
        return self

    def own_overrides(self, task_name: str, alias: str | None = None) -> TaskOverrides | None:
        """The task's own ``task_config`` entry (by full name, else by the name it was asked by)."""
        return self.task_config.get(task_name) or (self.task_config.get(alias) if alias else None)

    def for_task(self, task_name: str, alias: str | None = None) -> TaskOverrides:
        """The effective settings of one task: its overrides on top of the run's values."""
        own = self.own_overrides(task_name, alias)
        merged = {key: getattr(self, key) for key in TaskOverrides.model_fields if key != "options"}
        if own is not None:
            # a None (as config.yaml stores every unset key) inherits the run value, as on the first run
            merged.update(own.model_dump(exclude_unset=True, exclude_none=True, exclude={"options"}))
            merged["options"] = dict(own.options)
        return TaskOverrides(**merged)

    def max_failed_samples(self, total: int, overrides: TaskOverrides | None = None) -> int:
        """How many failed samples a task of ``total`` samples tolerates."""
        limit = (
            overrides.max_sample_errors
            if overrides and overrides.max_sample_errors is not None
            else self.max_sample_errors
        )
        return int(limit) if limit >= 1 else int(limit * total)

    def to_yaml_dict(self) -> dict[str, Any]:
        """The resolved config as plain data, for ``config.yaml`` in the run directory."""
        return self.model_dump(mode="json", exclude_none=False)


# ---------------------------------------------------------------------------------------------
# Loading and merging


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file into a dict, with errors that name the file and the line."""
    import yaml

    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"Config file not found: {file}")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        raise ConfigError(f"Malformed YAML in {file}{where}: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a mapping of parameters at the top level, got {type(data).__name__}")
    return data


def build_config(
    cli: dict[str, Any] | None = None,
    *,
    yaml_file: str | Path | None = None,
    yaml_data: dict[str, Any] | None = None,
) -> RunConfig:
    """Merge defaults < YAML < CLI into a validated RunConfig.

    ``cli`` holds only the values the user gave (``None`` there means an explicit None).
    """
    source = str(yaml_file) if yaml_file else "command line"
    merged: dict[str, Any] = {}
    if yaml_file is not None:
        merged.update(load_yaml(yaml_file))
    if yaml_data:
        merged.update(yaml_data)
    yaml_keys = set(merged)
    for key, value in (cli or {}).items():
        if key == "task_config" and isinstance(value, dict):
            combined = {name: dict(opts or {}) for name, opts in (merged.get("task_config") or {}).items()}
            for name, opts in value.items():
                combined.setdefault(name, {}).update(opts)
            merged["task_config"] = combined
        else:
            merged[key] = value
    try:
        return RunConfig(**merged)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, yaml_keys, (cli or {}).keys(), source)) from None


def _explain(exc: ValidationError, yaml_keys: set[str], cli_keys: Any, yaml_source: str) -> str:
    lines = []
    known = list(RunConfig.model_fields)
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        key = ".".join(loc) if loc else "(config)"
        top = loc[0] if loc else ""
        origin = "command line" if top in cli_keys else (yaml_source if top in yaml_keys else "config")
        if error["type"] == "extra_forbidden":
            field_names = known if len(loc) == 1 else list(TaskOverrides.model_fields)
            close = difflib.get_close_matches(loc[-1], field_names, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            lines.append(f"unknown key '{key}' in {origin}{hint}")
        elif not loc:
            lines.append(error["msg"].removeprefix("Value error, "))
        else:
            from taskgrove.redact import redact_text

            got = redact_text(repr(error.get("input")))
            lines.append(f"key '{key}' in {origin}: {error['msg']} (got {got})")
    if len(lines) == 1:
        return f"Invalid configuration: {lines[0]}"
    return "Invalid configuration:\n  " + "\n  ".join(lines)
