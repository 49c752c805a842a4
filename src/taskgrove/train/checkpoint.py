"""Run directories of training: weights (adapter or full), resumable state, the saved config.

``<output_dir>/<name>/`` holds the final model (a PEFT adapter or full weights, plus the
tokenizer), ``train_config.json``, ``train_result.json`` and ``log.jsonl``; intermediate
``checkpoint-<step>/`` dirs hold the same weights plus the resumable state, so ``--resume``
continues exactly where a run stopped: SFT's are the HF trainer's (``trainer_state.json``,
optimizer, scheduler, RNG states), RL's are ours (``training_state.pt``).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

from taskgrove.errors import ConfigError

CONFIG_FILE = "train_config.json"
RESULT_FILE = "train_result.json"
STATE_FILE = "training_state.pt"
TRAINER_STATE_FILE = "trainer_state.json"  # the HF trainer writes it last: its checkpoint is complete
LOG_FILE = "log.jsonl"
CONFIGS_DIR = "configs"  # <output dir>/configs/<name>.json, as TreeMark saves its configurations
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (a reader sees the old or the new file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """``(step, dir)`` of every complete intermediate checkpoint, oldest first."""
    found = []
    if run_dir.is_dir():
        for child in run_dir.iterdir():
            match = _CHECKPOINT.match(child.name)
            if match and ((child / STATE_FILE).is_file() or (child / TRAINER_STATE_FILE).is_file()):
                found.append((int(match.group(1)), child))
    return sorted(found)


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = checkpoints(run_dir)
    return found[-1][1] if found else None


def trainer_progress(checkpoint: Path) -> tuple[int, int]:
    """(optimizer step, non-padding tokens trained on) at an HF trainer checkpoint."""
    state = read_json(checkpoint / TRAINER_STATE_FILE)
    return int(state["global_step"]), int(state.get("num_input_tokens_seen") or 0)


def truncate_log(run_dir: Path, step: int) -> None:
    """Drop ``log.jsonl`` records after ``step`` (a run resumed there logs those steps again)."""
    path = run_dir / LOG_FILE
    if not path.is_file():
        return
    kept = [line for line in path.read_text(encoding="utf-8").splitlines() if line and json.loads(line)["step"] <= step]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    os.replace(tmp, path)


def find_run_dir(resume: str, output_dir: str) -> Path:
    """The run dir ``--resume`` names: a path, or a name under ``output_dir``."""
    for candidate in (Path(resume), Path(output_dir) / resume):
        if (candidate / CONFIG_FILE).is_file():
            return candidate
    raise ConfigError(
        f"--resume {resume}: no training run found (looked for {CONFIG_FILE} in {resume} and {Path(output_dir) / resume})"
    )


def save_weights(model: Any, tokenizer: Any, directory: Path, *, base_model: str) -> None:
    """Save the adapter (PEFT) or the full model, and the tokenizer, loadable by ``local:<directory>``."""
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    adapter_config = directory / "adapter_config.json"
    if adapter_config.is_file():  # point the adapter at the base model as the user named it
        config = read_json(adapter_config)
        config["base_model_name_or_path"] = base_model
        write_json(adapter_config, config)


def load_weights(model: Any, directory: Path) -> None:
    """Load weights saved by :func:`save_weights` into ``model`` (the same architecture)."""
    from safetensors.torch import load_file

    if (directory / "adapter_model.safetensors").is_file():
        from peft import set_peft_model_state_dict

        result = set_peft_model_state_dict(model, load_file(str(directory / "adapter_model.safetensors")))
        unexpected = getattr(result, "unexpected_keys", None)
        if unexpected:
            raise ConfigError(f"{directory}: adapter weights do not fit the model ({len(unexpected)} unexpected keys)")
        return
    files = sorted(directory.glob("model*.safetensors"))
    if not files:
        raise ConfigError(f"{directory} holds neither adapter_model.safetensors nor model*.safetensors")
    state: dict[str, Any] = {}
    for file in files:
        state.update(load_file(str(file)))
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = {"lm_head.weight"} if getattr(model.config, "tie_word_embeddings", False) else set()
    if unexpected or set(missing) - tied:
        raise ConfigError(
            f"{directory}: weights do not fit the model (missing {sorted(set(missing) - tied)[:3]}, unexpected {unexpected[:3]})"
        )
    if tied:
        model.tie_weights()


def save_checkpoint(
    run_dir: Path, step: int, model: Any, tokenizer: Any, state: dict[str, Any], *, base_model: str, keep: int
) -> Path:
    """Write ``checkpoint-<step>`` (weights + ``training_state.pt``) and prune all but the newest ``keep``."""
    import torch

    final = run_dir / f"checkpoint-{step}"
    tmp = run_dir / f".checkpoint-{step}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    save_weights(model, tokenizer, tmp, base_model=base_model)
    rng = {"python": random.getstate(), "torch": torch.get_rng_state()}
    torch.save({**state, "step": step, "rng": rng}, tmp / STATE_FILE)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for _, old in checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_state(checkpoint: Path) -> dict[str, Any]:
    """The ``training_state.pt`` of a checkpoint (optimizer, scheduler, step, RNG states)."""
    import torch

    return torch.load(checkpoint / STATE_FILE, map_location="cpu", weights_only=False)


def restore_rng(state: dict[str, Any]) -> None:
    import torch

    rng = state.get("rng") or {}
    if "python" in rng:
        random.setstate(rng["python"])
    if "torch" in rng:
        torch.set_rng_state(rng["torch"])


def finished_same(run_dir: Path, config: Any) -> bool:
    """Whether ``run_dir`` holds a finished run of exactly ``config`` (a TrainConfig; evaluation and
    tracker settings aside), so it need not train again.

    A run there with another config raises :class:`ConfigError` (it is not ours to overwrite).
    """
    if not (run_dir / RESULT_FILE).is_file() or not (run_dir / CONFIG_FILE).is_file():
        return False
    result = read_json(run_dir / RESULT_FILE)
    saved = read_json(run_dir / CONFIG_FILE)
    differ = [
        k
        for k, v in config.model_dump(mode="json").items()
        if k not in ("notes", "evaluate", "report_to") and not k.startswith("eval_") and saved.get(k) != v
    ]
    if differ:
        raise ConfigError(
            f"{run_dir} holds a run with a different config ({', '.join(differ[:4])}); "
            "use another --output-dir or remove it"
        )
    return bool(result.get("steps") == result.get("total_steps"))
