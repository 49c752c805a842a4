"""Loading user code: a Python file by path, or an object by ``module:attr`` / ``file.py:attr``."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import traceback
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
        line = _line_in(exc, file)
        where = f" (line {line})" if line else ""
        raise ConfigError(f"{path}{where} failed to import: {type(exc).__name__}: {_one_line(exc)}") from exc
    return module


def _line_in(exc: BaseException, file: Path) -> int | None:
    """The line of ``file`` where ``exc`` arose: a syntax error's own line, else the innermost
    traceback frame in ``file``."""
    if isinstance(exc, SyntaxError) and exc.filename == str(file) and exc.lineno:
        return exc.lineno
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(file)]
    return frames[-1].lineno if frames else None


def _one_line(exc: BaseException) -> str:
    """The exception's message on one line (a syntax error's bare message), at most 300 characters."""
    text = exc.msg if isinstance(exc, SyntaxError) and exc.msg else str(exc)
    return " ".join(text.split())[:300] or "(no message)"


def load_object(reference: str) -> Any:
    """``package.module:attr`` or ``path/to/file.py:attr`` -> the object."""
    target, sep, attribute = reference.rpartition(":")
    if not sep or not target or not attribute:
        raise ConfigError(f"{reference!r}: expected MODULE:ATTRIBUTE or FILE.py:ATTRIBUTE")
    if target.endswith(".py"):
        module = import_file(target)
    else:
        try:
            module = importlib.import_module(target)
        except Exception as exc:
            raise ConfigError(f"cannot import module {target}: {type(exc).__name__}: {_one_line(exc)}") from exc
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ConfigError(f"{target} has no attribute {attribute!r}") from None
