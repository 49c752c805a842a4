"""Loading user code: a Python file by path, or an object by ``module:attr`` / ``file.py:attr``."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from taskgrove.errors import ConfigError


def import_file(path: str | Path) -> ModuleType:
    """Import a Python file once (by its resolved path) and return the module."""
    file = Path(path).resolve()
    if not file.is_file():
        raise ConfigError(f"Python file not found: {path}")
    name = f"taskgrove_user_{file.stem}_{hashlib.sha1(str(file).encode()).hexdigest()[:8]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise ConfigError(f"Cannot import {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's file is at fault: one line naming it, no traceback
        del sys.modules[name]
        line = next((f" (line {f.lineno})" for f in _frames_in(exc, file)), "")
        raise ConfigError(f"{path}{line} failed to import: {type(exc).__name__}: {exc}") from exc
    return module


def _frames_in(exc: BaseException, file: Path) -> list[Any]:
    """The traceback frames of ``exc`` that are in ``file``, innermost first."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    return [f for f in reversed(frames) if f.filename == str(file)]


def load_object(reference: str) -> Any:
    """``package.module:attr`` or ``path/to/file.py:attr`` -> the object."""
    target, sep, attribute = reference.rpartition(":")
    if not sep or not target or not attribute:
        raise ConfigError(f"{reference!r}: expected MODULE:ATTRIBUTE or FILE.py:ATTRIBUTE")
    module = import_file(target) if target.endswith(".py") else importlib.import_module(target)
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ConfigError(f"{target} has no attribute {attribute!r}") from None
