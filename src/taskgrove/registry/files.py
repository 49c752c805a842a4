"""Which files under an ``--include-path`` folder are task files: hidden folders and taskgrove's own
run folders are never entered (a results folder's ``config.yaml`` is not a task, and nothing under
``.git``, ``.venv`` or a run folder is imported)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

RUN_FOLDER_MARKERS = ("run.json", "config.yaml")
"""A folder holding both of these is a run folder written by taskgrove (``runs/store.py``)."""


def is_run_folder(folder: Path) -> bool:
    """True when ``folder`` holds ``run.json`` and ``config.yaml``: a run taskgrove wrote."""
    return all((folder / marker).is_file() for marker in RUN_FOLDER_MARKERS)


def included_files(root: Path, suffixes: Iterable[str]) -> list[Path]:
    """The files under ``root`` whose suffix is in ``suffixes``, sorted.

    ``root`` itself may be a file (returned as is when its suffix matches). Under a folder, folders
    whose name starts with ``.`` and run folders (and everything under them) are skipped, as are
    hidden files; symlinked folders are not followed.
    """
    wanted = tuple(suffixes)
    if root.is_file():
        return [root] if root.suffix in wanted else []
    if not root.is_dir() or is_run_folder(root):
        return []
    found: list[Path] = []
    for folder, subfolders, files in os.walk(root):
        here = Path(folder)
        subfolders[:] = sorted(d for d in subfolders if not d.startswith(".") and not is_run_folder(here / d))
        found.extend(here / f for f in files if not f.startswith(".") and Path(f).suffix in wanted)
    return sorted(found)
