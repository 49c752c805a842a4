"""Training configuration: TreeMark's presets, ``--config-index`` and the precedence of layers.

Layers, lowest first: the preset of the task family and method < each task's
``get_train_config()`` (values all trained tasks agree on) < a saved run's config (``--resume``)
< YAML (``--config``) < the command line.

The family decides the preset: ``classification`` (TreeMark's *similar* tasks) or
``generation`` (everything else). A task may name its family with a ``train_family`` attribute;
otherwise a task whose path has a ``similar`` segment (``treemark/similar/sst2``) is
classification and every other task is generation. A run that mixes the two families uses the
generation preset.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import fields as dataclass_fields
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from taskgrove.errors import ConfigError
from taskgrove.train.taskconfig import check_targets
from taskgrove.train.trackers import ReportTo

Method = Literal["full", "lora"]
Family = Literal["classification", "generation"]
MixtureStrategy = Literal["concatenate", "proportional", "temperature", "equal", "transfer"]
TaskType = Literal["similar", "dissimilar", "mixed"]

#: ``--config-index`` -> (method, LoRA rank); 0 is full fine-tuning, 3 is TreeMark's baseline.
CONFIG_INDEX: dict[int, tuple[Method, int | None]] = {
    0: ("full", None),
    1: ("lora", 4),
    2: ("lora", 8),
    3: ("lora", 16),
    4: ("lora", 32),
    5: ("lora", 64),
}
DEFAULT_CONFIG_INDEX = 3

_LORA = {"lora_dropout": 0.1, "target_modules": ["q_proj", "v_proj"]}

#: TreeMark's training parameters per (family, method).
PRESETS: dict[tuple[Family, Method], dict[str, Any]] = {
    ("classification", "full"): {
        "batch_size": 128,
        "learning_rate": 1e-5,
        "weight_decay": 0.0,
        "gradient_accumulation_steps": 4,
    },
    ("classification", "lora"): {
        "batch_size": 32,
        "learning_rate": 1e-5,
        "weight_decay": 0.01,
        "gradient_accumulation_steps": 4,
        **_LORA,
    },
    ("generation", "full"): {
        "batch_size": 32,
        "learning_rate": 1e-5,
        "weight_decay": 0.01,
        "gradient_accumulation_steps": 4,
    },
    ("generation", "lora"): {
        "batch_size": 32,
        "learning_rate": 1e-5,
        "weight_decay": 0.01,
        "gradient_accumulation_steps": 4,
        **_LORA,
    },
}


class TrainConfig(BaseModel):
    """Every parameter of a training run, resolved. Saved as ``train_config.json`` with the checkpoint."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    tasks: list[str] = Field(default_factory=list, description="full task names trained on")
    requests: list[str] = Field(default_factory=list, description="the --tasks values as given")
    name: str | None = Field(None, description="checkpoint name (default single_<task>_<cfg> or <type>_<cfg>)")
    kind: Literal["single", "multi"] | None = None
    family: Family | None = None
    task_type: TaskType | None = Field(None, description="TreeMark's TYPE in the name: similar, dissimilar or mixed")
    config_index: int | None = Field(None, ge=0, le=5)
    method: Method = "lora"
    lora_rank: int = Field(16, gt=0)
    lora_alpha: int | None = Field(None, gt=0, description="default 2 x rank")
    lora_dropout: float = Field(0.1, ge=0, lt=1)
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "v_proj"])
    learning_rate: float = Field(1e-5, gt=0)
    batch_size: int = Field(32, gt=0, description="examples per batch (per process)")
    micro_batch_size: int | None = Field(
        None, gt=0, description="examples per forward pass, a divisor of batch_size (memory only)"
    )
    gradient_accumulation_steps: int = Field(4, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    num_epochs: float = Field(1.0, gt=0)
    max_steps: int | None = Field(None, gt=0, description="optimizer steps; overrides num_epochs")
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    lr_scheduler: Literal["linear", "cosine", "constant"] = "linear"
    max_grad_norm: float | None = Field(1.0, gt=0)
    max_seq_length: int = Field(1024, gt=8)
    group_by_length: bool = True
    packing: bool = Field(False, description="pack examples into max_seq_length sequences (TRL's packing)")
    gradient_checkpointing: bool = Field(False, description="recompute activations in the backward pass (memory)")
    seed: int = 0
    include_path: list[str] = Field(default_factory=list, description="task files or folders added to the tree")
    base_model: str = Field("default", description="'default' (embedded SmolLM2), a model dir, .gguf file or hub id")
    output_dir: str = "checkpoints"
    limit: int | None = Field(None, gt=0, description="training scenarios read per task")
    split: str = "train"
    task_config: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="per-task settings as `run` takes them, by full task name"
    )
    prompt_format: Literal["zero_shot", "few_shot"] = "zero_shot"
    num_fewshot: int = Field(3, ge=0)
    mixture: MixtureStrategy = "concatenate"
    mixture_temperature: float = Field(2.0, gt=0)
    mixture_cap: int | None = Field(None, gt=0, description="examples per task at most (T5-style cap)")
    mixture_size: int | None = Field(None, gt=0, description="examples in the mixture (sampled strategies)")
    mixture_transfer: str | None = Field(None, description="transfer.json (or its dir) of --mixture transfer")
    mixture_multipliers: dict[str, float] | None = Field(
        None, description="--mixture transfer: each task's multiplier m_i, read from the transfer matrix"
    )
    save_steps: int | None = Field(None, gt=0, description="checkpoint every N steps (always at the end and on Ctrl-C)")
    save_total_limit: int = Field(2, gt=0)
    logging_steps: int = Field(10, gt=0)
    evaluate: bool = True
    eval_every: int | None = Field(None, gt=0, description="evaluate a checkpoint every N steps (train/curve.py)")
    eval_tasks: list[str] = Field(default_factory=list, description="tasks evaluated in the loop (default: trained)")
    eval_split: str = "test"
    eval_limit: int | None = Field(None, gt=0)
    eval_max_tokens: int | None = Field(None, gt=0)
    eval_batch_size: int = Field(16, gt=0)
    report_to: ReportTo = Field(default_factory=list, description="tensorboard, wandb, mlflow (train/trackers.py)")
    notes: list[str] = Field(default_factory=list, description="how layers were resolved")

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.micro_batch_size is not None and self.batch_size % self.micro_batch_size:
            raise ValueError(f"micro_batch_size {self.micro_batch_size} does not divide batch_size {self.batch_size}")
        return self

    @property
    def alpha(self) -> int:
        """The LoRA alpha in force (``lora_alpha`` or twice the rank)."""
        return self.lora_alpha or 2 * self.lora_rank

    @property
    def label(self) -> str:
        """``FullFT`` or ``LoRA_<rank>``."""
        return config_label(self.method, self.lora_rank)

    @property
    def run_name(self) -> str:
        """The checkpoint's name: ``name`` if set, else derived from the tasks and the method."""
        if self.name:
            return self.name
        return model_name(self.tasks, self.task_type or "dissimilar", self.method, self.lora_rank)


def config_label(method: Method, rank: int | None) -> str:
    """``FullFT`` for full fine-tuning, ``LoRA_<rank>`` for LoRA."""
    return "FullFT" if method == "full" else f"LoRA_{rank}"


def leaf(task_name: str) -> str:
    """The last segment of a task path (``treemark/similar/sst2`` -> ``sst2``)."""
    return task_name.rsplit("/", 1)[-1]


def multi_type(tasks: list[str], requests: list[str]) -> str:
    """TYPE of a multi-task name: the group's last segment when ``requests`` is one group, else ``multi``."""
    if len(requests) == 1:
        group = requests[0].strip().strip("/")
        if len(tasks) > 1 and all(t.startswith(group + "/") or f"/{group}/" in f"/{t}" for t in tasks):
            return leaf(group)
    return "multi"


def model_name(tasks: list[str], task_type: TaskType, method: Method, rank: int | None) -> str:
    """TreeMark's names: ``single_<TASK>_<TYPE>_<CONFIG>`` for one task, ``<TYPE>_<CONFIG>`` for several."""
    label = config_label(method, rank)
    if len(tasks) == 1:
        return f"single_{leaf(tasks[0])}_{task_type}_{label}"
    return f"{task_type}_{label}"


def task_type_of(tasks: Mapping[str, Any]) -> TaskType:
    """TreeMark's TYPE: ``similar`` (classification), ``dissimilar`` (generation), or ``mixed``."""
    families = {task_family(name, task) for name, task in tasks.items()}
    if len(families) > 1:
        return "mixed"
    return "similar" if families == {"classification"} else "dissimilar"


def method_of(values: Mapping[str, Any]) -> tuple[Method, int, int | None]:
    """(method, rank, config index) from ``config_index`` and/or ``method``/``lora_rank``; conflicts are errors."""
    index = values.get("config_index")
    method = values.get("method")
    rank = values.get("lora_rank")
    if index is not None:
        if int(index) not in CONFIG_INDEX:
            raise ConfigError(
                f"--config-index {index}: expected 0..5 (0 full fine-tuning, 1-5 LoRA rank 4, 8, 16, 32, 64)"
            )
        by_index, by_rank = CONFIG_INDEX[int(index)]
        if method is not None and method != by_index:
            raise ConfigError(
                f"--config-index {index} means {config_label(by_index, by_rank)}, but --method {method} was given"
            )
        if rank is not None and by_rank is not None and int(rank) != by_rank:
            raise ConfigError(f"--config-index {index} means LoRA rank {by_rank}, but --rank {rank} was given")
        return by_index, int(rank or by_rank or 16), int(index)
    if method is None:
        method = "lora" if rank is not None else CONFIG_INDEX[DEFAULT_CONFIG_INDEX][0]
    if method not in ("full", "lora"):
        raise ConfigError(f"--method {method!r}: expected full or lora")
    rank = int(rank) if rank is not None else 16
    index = next((i for i, (m, r) in CONFIG_INDEX.items() if m == method and (m == "full" or r == rank)), None)
    return method, rank, index


def task_family(name: str, task: Any) -> Family:
    """``classification`` or ``generation`` for one task (its ``train_family`` attribute, else its path)."""
    declared = task.train_family
    if declared is not None:
        if declared not in ("classification", "generation"):
            raise ConfigError(f"task {name}: train_family {declared!r} must be classification or generation")
        return declared
    return "classification" if "similar" in name.split("/")[:-1] else "generation"


def run_family(tasks: Mapping[str, Any]) -> Family:
    """The family of a run: classification only when every task is classification."""
    families = {task_family(name, task) for name, task in tasks.items()}
    return "classification" if families == {"classification"} else "generation"


def _task_layer(tasks: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Values every task's ``get_train_config()`` agrees on, and notes about the ones they don't."""
    known = set(TrainConfig.model_fields)
    per_task: list[dict[str, Any]] = []
    for task in tasks.values():
        config = task.get_train_config()
        values: dict[str, Any] = {}
        for f in dataclass_fields(config):
            if f.name in ("extra", "samples_per_scenario"):
                continue
            value = getattr(config, f.name)
            if value is not None:
                values[f.name] = value
        for key, value in (getattr(config, "extra", None) or {}).items():
            if key in known:
                values[key] = value
        per_task.append(values)
    layer: dict[str, Any] = {}
    notes: list[str] = []
    for key in sorted({k for values in per_task for k in values}):
        seen = [values.get(key) for values in per_task]
        if all(v == seen[0] for v in seen):
            layer[key] = seen[0]
        else:
            notes.append(f"tasks disagree on {key} ({seen}); the preset's value is used")
    return layer, notes


def resolve_train_config(
    tasks: Mapping[str, Any],
    *,
    requests: Iterable[str] = (),
    yaml_data: Mapping[str, Any] | None = None,
    cli: Mapping[str, Any] | None = None,
    saved: Mapping[str, Any] | None = None,
) -> TrainConfig:
    """Resolve the config of a run on ``tasks`` (full name -> Task) from every layer."""
    user: dict[str, Any] = {}
    for layer in (saved, yaml_data, cli):
        if layer:
            user.update({k: v for k, v in layer.items() if v is not None or k in ("max_steps", "name")})
    _check_keys(user)
    method, rank, index = method_of(user)
    family: Family = user.get("family") or run_family(tasks)
    merged: dict[str, Any] = dict(PRESETS[(family, method)])
    task_values, notes = _task_layer(tasks)
    merged.update(task_values)
    merged.update({k: v for k, v in user.items() if k != "notes"})
    names = list(tasks)
    check_targets(merged.get("task_config") or {}, [*names, *(merged.get("eval_tasks") or [])])
    merged.update(
        tasks=names,
        requests=list(requests) or list(user.get("requests") or names),
        family=family,
        task_type=task_type_of(tasks),
        method=method,
        lora_rank=rank,
        config_index=index,
        kind="single" if len(names) == 1 else "multi",
        notes=notes,
    )
    if merged.get("mixture") == "transfer" and not (saved or {}).get("mixture_multipliers"):
        merged["mixture_multipliers"] = _transfer_multipliers(merged, names)  # a resumed run keeps its own
    elif merged.get("mixture_transfer"):
        raise ConfigError("--mixture-transfer is read by --mixture transfer only")
    try:
        return TrainConfig(**merged)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']} (got {e.get('input')!r})" for e in exc.errors()
        )
        raise ConfigError(f"Invalid training configuration: {problems}") from None


def _transfer_multipliers(values: Mapping[str, Any], tasks: list[str]) -> dict[str, float]:
    """``--mixture transfer``: the multipliers from ``--mixture-transfer`` or ``<output_dir>/transfer.json``."""
    from taskgrove.report.transfer import TRANSFER_JSON, find_transfer_file, load_transfer
    from taskgrove.train.mixture import transfer_multipliers

    given = values.get("mixture_transfer")
    where = given or str(values.get("output_dir") or "checkpoints")
    if find_transfer_file(where) is None:
        hint = (
            ""
            if given
            else f" (looked for {where}/{TRANSFER_JSON}); run `taskgrove transfer` or give --mixture-transfer"
        )
        raise ConfigError(f"--mixture transfer needs a transfer matrix: none at {where}{hint}")
    return transfer_multipliers(load_transfer(where), tasks)


def _check_keys(values: Mapping[str, Any]) -> None:
    known = list(TrainConfig.model_fields)
    for key in values:
        if key not in TrainConfig.model_fields:
            close = difflib.get_close_matches(key, known, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ConfigError(f"unknown training option {key!r}{hint}")
