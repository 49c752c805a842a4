"""Merging LoRA adapters through PEFT's own ``add_weighted_adapter`` (no merge arithmetic here).

:func:`merge_adapters` loads the adapters' common base model, loads every adapter into one
``PeftModel``, calls ``add_weighted_adapter(combination_type=METHOD)`` and saves the merged
adapter alone as an ordinary adapter folder (``adapter_config.json`` + weights naming the same
base), loadable like any trained adapter (``--model local:<adapter_dir>`` or
``local:<base>+<adapter_dir>``). ``merge_config.json`` beside it records the sources, method,
weights, density, seed and the PEFT version.

Defaults: weights ``1/n`` each for ``linear`` and ``svd`` (the average of the adapters), ``1.0``
each for ``ties`` and ``dare_ties`` (TIES already averages the values that agree in sign);
``density`` 0.5 for ``ties`` and ``dare_ties`` (the fraction of values each adapter keeps).
``dare_ties`` drops values at random: ``seed`` seeds torch before the merge.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taskgrove.errors import ConfigError

if TYPE_CHECKING:
    from taskgrove.train.evaluate import ModelEntry

METHODS = ("linear", "ties", "dare_ties", "svd")
MERGE_FILE = "merge_config.json"
DEFAULT_DENSITY = 0.5


def default_weights(method: str, n: int) -> list[float]:
    """``1/n`` each for linear and svd (an average), ``1.0`` each for ties and dare_ties."""
    return [1.0 / n] * n if method in ("linear", "svd") else [1.0] * n


def adapter_base(adapter: Path) -> str:
    """The base model an adapter folder names in its ``adapter_config.json``."""
    config_path = adapter / "adapter_config.json"
    if not config_path.is_file():
        raise ConfigError(f"--adapters: {adapter} is not a PEFT adapter folder (no adapter_config.json)")
    base = json.loads(config_path.read_text(encoding="utf-8")).get("base_model_name_or_path")
    if not base:
        raise ConfigError(f"--adapters: {adapter} does not name its base model; give --base")
    return str(base)


def check_merge(
    adapters: Sequence[Path],
    method: str,
    weights: Sequence[float] | None,
    density: float | None,
    output: Path,
    base: str | None = None,
) -> tuple[str, list[float], float | None]:
    """Validate a merge before anything is loaded or created: (base, weights, density)."""
    if method not in METHODS:
        raise ConfigError(f"--method {method!r}: expected one of {', '.join(METHODS)}")
    if len(adapters) < 2:
        raise ConfigError("--adapters: give at least two adapter folders to merge")
    if len({a.resolve() for a in adapters}) != len(adapters):
        raise ConfigError("--adapters: the same adapter is given twice")
    bases = {adapter_base(a) for a in adapters} if base is None else {base}
    if base is None and len(bases) > 1:
        raise ConfigError(f"--adapters name different base models ({', '.join(sorted(bases))}); give --base")
    if weights is not None and len(weights) != len(adapters):
        raise ConfigError(f"--weights: {len(weights)} weights for {len(adapters)} adapters")
    if method in ("ties", "dare_ties"):
        density = DEFAULT_DENSITY if density is None else density
        if not 0.0 < density <= 1.0:
            raise ConfigError(f"--density {density}: expected a fraction in (0, 1]")
    elif density is not None:
        raise ConfigError(f"--density applies to ties and dare_ties, not {method}")
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise ConfigError(f"--output {output} exists and is not empty")
    return bases.pop(), list(weights) if weights is not None else default_weights(method, len(adapters)), density


def load_for_merge(base: str, adapters: Sequence[Path]) -> tuple[Any, list[str]]:
    """The base model with every adapter loaded (named ``a0``, ``a1``...) in one ``PeftModel``."""
    from peft import PeftModel

    from taskgrove.models.errors import ModelError
    from taskgrove.models.loading import load_local
    from taskgrove.models.paths import cache_root

    try:
        model = load_local(base, None, cache_root()).model
    except ModelError as exc:
        raise ConfigError(f"base model of the adapters: {exc}") from None
    names = [f"a{i}" for i in range(len(adapters))]
    peft_model = PeftModel.from_pretrained(model, str(adapters[0]), adapter_name=names[0])
    for name, adapter in zip(names[1:], adapters[1:], strict=True):
        peft_model.load_adapter(str(adapter), adapter_name=name)
    return peft_model, names


def merge_adapters(
    adapters: Sequence[str | Path],
    method: str,
    output: str | Path,
    *,
    weights: Sequence[float] | None = None,
    density: float | None = None,
    base: str | None = None,
    seed: int = 0,
) -> Path:
    """Merge ``adapters`` with PEFT's ``add_weighted_adapter`` and save the result as an adapter in ``output``."""
    import peft
    import torch

    paths = [Path(a).expanduser() for a in adapters]
    out = Path(output).expanduser()
    base_model, weights_used, density_used = check_merge(paths, method, weights, density, out, base)
    peft_model, names = load_for_merge(base_model, paths)
    torch.manual_seed(seed)
    try:
        peft_model.add_weighted_adapter(names, weights_used, "default", combination_type=method, density=density_used)
    except ValueError as exc:  # PEFT's own checks: unequal ranks for linear/ties, target modules...
        raise ConfigError(f"PEFT cannot merge these adapters with {method}: {exc}") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        peft_model.save_pretrained(str(staging), selected_adapters=["default"])
        config_path = staging / "adapter_config.json"
        config = json.loads(config_path.read_text(encoding="utf-8"))
        config["base_model_name_or_path"] = base_model
        config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        record = {
            "adapters": [str(p.resolve()) for p in paths],
            "method": method,
            "weights": weights_used,
            "density": density_used,
            "seed": seed,
            "base_model": base_model,
            "merged_with": f"peft {peft.__version__} PeftModel.add_weighted_adapter",
        }
        (staging / MERGE_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        if out.exists():
            out.rmdir()  # checked empty above
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def merged_entry(singles: Sequence[ModelEntry], method: str, output_dir: Path, config_label: str) -> ModelEntry:
    """``train-compare --merge``: the single-task adapters merged into ``merged_<method>_<cfg>``, as a model entry.

    A merged folder left by an earlier run is reused when it merged the same adapters (same weight
    files) with the same method, and merged again (replaced) when they changed.
    """
    from taskgrove.train.evaluate import ModelEntry, weights_identity

    not_lora = [e.label for e in singles if e.path is None or not (e.path / "adapter_config.json").is_file()]
    if not singles or not_lora:
        raise ConfigError(f"--merge merges LoRA adapters; not adapters: {', '.join(not_lora) or 'none given'}")
    target = output_dir / f"merged_{method}_{config_label}"
    sources = [weights_identity(e) for e in singles]
    paths = [e.path for e in singles if e.path is not None]
    record_path = target / MERGE_FILE
    if record_path.is_file():
        record = json.loads(record_path.read_text(encoding="utf-8"))
        same = record.get("method") == method and record.get("sources") == sources
        if not same or record.get("adapters") != [str(p.resolve()) for p in paths]:
            shutil.rmtree(target)  # a merge of older weights: ours (it holds merge_config.json), redo it
    elif target.exists():
        raise ConfigError(f"{target} exists and is not a merged adapter (no {MERGE_FILE}); move it away")
    if not record_path.is_file():
        merge_adapters(paths, method, target)
        record = json.loads(record_path.read_text(encoding="utf-8"))
        record["sources"] = sources
        record_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    trained_on = sorted({task for e in singles for task in e.trained_on})
    return ModelEntry(target.name, "merged", target, singles[0].base_model, singles[0].config, trained_on)
