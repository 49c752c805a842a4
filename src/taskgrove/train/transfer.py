"""``taskgrove transfer``: one adapter per source leaf, every adapter and the base evaluated on every
target leaf, and the source x target matrix of deltas vs base (:mod:`taskgrove.report.transfer`).

The adapters are the single-task runs ``train-compare`` makes (``single_<leaf>_<type>_<cfg>`` in the
output dir, the same config), so either command reuses the other's finished runs; a run with the same
name but another config is an error, never silently overwritten. Each evaluation is an ordinary run
folder (:func:`taskgrove.train.evaluate.evaluate_model`: ``<adapter>/eval-<key>``,
``<output_dir>/base-eval-<key>``), reused when the weights and evaluation settings are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from taskgrove.errors import ConfigError
from taskgrove.train import checkpoint as ckpt
from taskgrove.train.evaluate import EvalSettings, ModelEntry, compare
from taskgrove.train.presets import TrainConfig

Say = Callable[[str], None]


def train_sources(
    configs: Sequence[TrainConfig], registry: Any, *, say: Say, log: Callable[[dict[str, Any]], None]
) -> list[ModelEntry]:
    """Train (or reuse) one single-task adapter per config, in order."""
    from taskgrove.train.sft import train_sft

    entries = []
    for config in configs:
        if config.method != "lora":
            raise ConfigError(f"transfer trains LoRA adapters; {config.label} is not LoRA (use --config-index 1-5)")
        run_dir = Path(config.output_dir) / config.run_name
        if ckpt.finished_same(run_dir, config):
            say(f"{config.run_name}: already trained with this config, reusing {run_dir}")
        else:
            say(f"training {config.run_name} ({config.label}) on {config.tasks[0]}")
            result = train_sft(config, registry, resume=bool(ckpt.checkpoints(run_dir)), log=log, say=say)
            say(f"  {result.steps} steps, {result.tokens} tokens, {result.seconds:.1f}s")
            run_dir = result.run_dir
        entries.append(ModelEntry.from_run(run_dir))
    return entries


def run_transfer(
    configs: Sequence[TrainConfig],
    targets: Sequence[str],
    registry: Any,
    settings: EvalSettings,
    output_dir: Path,
    *,
    n_resamples: int = 10000,
    say: Say,
    log: Callable[[dict[str, Any]], None],
) -> tuple[dict[str, Any], Path]:
    """Train or reuse the adapters, evaluate them and the base on ``targets``, write ``transfer.json``.

    Returns the matrix data and the path of ``transfer.json``.
    """
    from taskgrove.report.collect import load_run
    from taskgrove.report.transfer import transfer_matrix, write_transfer

    if not configs:
        raise ConfigError("transfer needs at least one source task")
    adapters = train_sources(configs, registry, say=say, log=log)
    base = ModelEntry("base", "base", None, configs[0].base_model)
    comparison = compare([base, *adapters], targets, registry, settings, output_dir, log=say)
    runs = {m["label"]: Path(m["run_dir"]) for m in comparison["models"]}
    sources = {}
    for config, entry in zip(configs, adapters, strict=True):
        sources[config.tasks[0]] = load_run(runs[entry.label], entry.label)
    data = transfer_matrix(load_run(runs["base"], "base"), sources, n_resamples=n_resamples, seed=settings.seed)
    for source, entry in zip(data["sources"], adapters, strict=True):
        source["path"] = str(entry.path)
        source["config"] = entry.config
    data["settings"] = {**settings.__dict__, "config": configs[0].label, "base_model": configs[0].base_model}
    json_path, _ = write_transfer(output_dir, data)
    return data, json_path
