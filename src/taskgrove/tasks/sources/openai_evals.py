"""The ``openai-evals:`` data source: sample files of the OpenAI evals registry.

``openai-evals:<name>``
    Samples of the OpenAI evals registry: ``<data>/<name>`` where ``<data>`` is the ``root``
    option (relative to ``base_dir``), else ``$TASKGROVE_OPENAI_EVALS_DIR``, else
    ``evals/registry/data`` of the installed ``evals`` package (found without importing it).
    ``<name>`` is a data folder (``ner_finance``), a file in it (``anagrams/fewshot.jsonl``,
    extension optional), or an eval name from ``<data>/../evals/*.yaml`` (``match_banking77``).
    Splits: an eval's ``samples_jsonl`` serves every split except ``train``, which reads its
    ``few_shot_jsonl`` when it has one; a folder with one ``.jsonl`` serves every split; in a
    folder with several, the split names a file stem (``test`` also means ``samples.jsonl``, and
    an eval of the folder's name adds its mapping), or option ``file`` names the file. A Git LFS
    pointer instead of data is an error. Rows: the raw JSON objects (``input`` chat messages,
    ``ideal`` ...) plus ``id`` = ``"<file stem>:<line index>"`` (a raw ``id`` field wins).
    ``yaml`` is imported only to read an eval's registry entry.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from taskgrove.tasks.sources._common import (
    OPENAI_EVALS_ENV,
    Row,
    SourceError,
    iter_jsonl,
    resolve_path,
)


@dataclass(frozen=True)
class _EvalsTarget:
    """Which jsonl file serves which split of an ``openai-evals:`` source."""

    default: Path | None
    by_split: Mapping[str, Path]

    def pick(self, source: str, split: str) -> Path:
        if split in self.by_split:
            return self.by_split[split]
        if self.default is not None:
            return self.default
        raise SourceError(
            f"{source}: the folder holds several files; split {split!r} matches none of "
            f"{', '.join(sorted(self.by_split))}. Use one of those split names or option file."
        )

    def splits(self) -> list[str]:
        return sorted(self.by_split)


def _openai_evals_data_root(source: str, root: str | os.PathLike[str] | None, base_dir: Path | None) -> Path:
    if root is None:
        root = os.environ.get(OPENAI_EVALS_ENV) or None
    if root is not None:
        path = resolve_path(os.fspath(root), base_dir)
        if not path.is_dir():
            raise SourceError(f"{source}: the openai-evals data folder {path} does not exist.")
        return path
    spec = importlib.util.find_spec("evals")
    if spec is None or not spec.submodule_search_locations:
        raise SourceError(
            f"{source}: the OpenAI `evals` package is not installed. Install it with "
            f"`pip install --no-deps evals`, or set option root / ${OPENAI_EVALS_ENV} to an "
            f"`evals/registry/data` folder."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "registry" / "data"
    if not path.is_dir():
        raise SourceError(f"{source}: the installed evals package has no {path}.")
    return path


def _find_eval_spec(source: str, registry: Path, name: str) -> Mapping[str, Any] | None:
    """The ``args`` of eval ``name`` from ``registry/*.yaml`` (following its ``id``), if any."""
    line = re.compile(rf"^{re.escape(name)}:\s*$", re.MULTILINE)
    for yaml_file in sorted(registry.glob("*.yaml")):
        text = yaml_file.read_text(encoding="utf-8")
        if not line.search(text):
            continue
        try:
            import yaml
        except ImportError as exc:
            raise SourceError(f"{source}: reading {yaml_file} needs PyYAML (`pip install pyyaml`).") from exc
        doc = yaml.safe_load(text) or {}
        entry = doc.get(name) or {}
        if isinstance(entry, dict) and "id" in entry and entry["id"] in doc:
            entry = doc[entry["id"]] or {}
        args = entry.get("args") if isinstance(entry, dict) else None
        if isinstance(args, dict) and "samples_jsonl" in args:
            return args
    return None


def _eval_target(source: str, data: Path, name: str) -> _EvalsTarget | None:
    """Files of the eval called ``name`` in ``<data>/../evals/*.yaml``, if there is one."""
    registry = data.parent / "evals"
    args = _find_eval_spec(source, registry, name) if registry.is_dir() else None
    if args is None:
        return None
    samples = data / str(args["samples_jsonl"])
    by_split = {}
    if args.get("few_shot_jsonl"):
        by_split["train"] = data / str(args["few_shot_jsonl"])
        by_split["test"] = samples
    for path in (samples, *by_split.values()):
        if not path.is_file():
            raise SourceError(f"{source}: eval {name!r} names {path}, which does not exist.")
    return _EvalsTarget(samples, MappingProxyType(by_split))


def _openai_evals_target(
    source: str,
    name: str,
    root: str | os.PathLike[str] | None,
    file: str | None,
    base_dir: Path | None,
) -> _EvalsTarget:
    if not name or ".." in Path(name).parts or Path(name).is_absolute():
        raise SourceError(f"{source}: expected openai-evals:<data folder or eval name>.")
    data = _openai_evals_data_root(source, root, base_dir)
    base = data / name
    if file is not None:
        chosen = base / file
        if not chosen.is_file() and (base / f"{file}.jsonl").is_file():
            chosen = base / f"{file}.jsonl"
        if not chosen.is_file():
            raise SourceError(f"{source}: option file={file!r}: {chosen} does not exist.")
        return _EvalsTarget(chosen, MappingProxyType({}))
    for candidate in (base, data / f"{name}.jsonl"):
        if candidate.is_file():
            return _EvalsTarget(candidate, MappingProxyType({}))
    if base.is_dir():
        files = sorted(base.glob("*.jsonl"))
        if not files:
            subdirs = sorted(p.name for p in base.iterdir() if p.is_dir())
            hint = f" Its subfolders: {', '.join(subdirs)}." if subdirs else ""
            raise SourceError(f"{source}: no .jsonl file in {base}.{hint}")
        if len(files) == 1:
            return _EvalsTarget(files[0], MappingProxyType({}))
        stems = {f.stem: f for f in files}
        if "samples" in stems and "test" not in stems:
            stems["test"] = stems["samples"]
        # an eval of the same name says which file is the samples and which the few-shot set
        named = _eval_target(source, data, name)
        if named is not None:
            return _EvalsTarget(named.default, MappingProxyType({**stems, **named.by_split}))
        return _EvalsTarget(None, MappingProxyType(stems))
    named = _eval_target(source, data, name)
    if named is not None:
        return named
    registry = data.parent / "evals"
    names = sorted(p.name for p in data.iterdir() if p.is_dir())
    close = difflib.get_close_matches(name, names, n=5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise SourceError(
        f"{source}: {name!r} is neither a folder or file under {data} nor an eval name in {registry}.{hint}"
    )


def openai_evals_rows(
    source: str,
    rest: str,
    split: str,
    base_dir: Path | None,
    *,
    root: str | os.PathLike[str] | None = None,
    file: str | None = None,
) -> Iterator[Row]:
    """Rows of the eval data ``rest`` for ``split`` (see the module docstring)."""
    path = _openai_evals_target(source, rest, root, file, base_dir).pick(source, split)
    stem = path.name.removesuffix(".gz").removesuffix(".jsonl")
    return ({"id": f"{stem}:{index}", **row} for index, row in iter_jsonl(source, path))


def openai_evals_splits(
    source: str,
    rest: str,
    base_dir: Path | None,
    *,
    root: str | os.PathLike[str] | None = None,
    file: str | None = None,
) -> list[str]:
    """Split names with a file of their own; empty when one file serves every split."""
    return _openai_evals_target(source, rest, root, file, base_dir).splits()
