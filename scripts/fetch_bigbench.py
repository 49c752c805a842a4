#!/usr/bin/env python3
"""Fetch BIG-bench ``task.json`` files into the taskgrove cache.

BIG-bench is published on PyPI only as a 358 MB sdist (``bigbench==1.0.0``) that unpacks to
about 1.7 GB. This script downloads the sdist with ``pip download --no-deps`` and streams through
the archive with :mod:`tarfile`, writing out only ``bigbench/benchmark_tasks/**/task.json`` (or
only those of the tasks named with ``--tasks``). Nothing else is unpacked.

Usage::

    python scripts/fetch_bigbench.py          # all tasks -> ~/.cache/taskgrove/bigbench
    python scripts/fetch_bigbench.py --tasks anachronisms emoji_movie
    python scripts/fetch_bigbench.py --sdist bigbench-1.0.0.tar.gz --dest /data/bigbench

The resulting layout is ``<dest>/<task>/task.json`` and ``<dest>/<task>/<subtask>/task.json``,
which is what the ``bigbench:`` source scheme of taskgrove reads.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

BIGBENCH_VERSION = "1.0.0"
TASKS_MARKER = "bigbench/benchmark_tasks/"


def default_dest() -> Path:
    """The cache folder the ``bigbench:`` source reads by default."""
    env = os.environ.get("TASKGROVE_BIGBENCH_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "taskgrove" / "bigbench"


def download_sdist(workdir: Path, version: str = BIGBENCH_VERSION) -> Path:
    """Download the bigbench sdist into ``workdir`` with pip and return its path."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        "--no-build-isolation",
        f"bigbench=={version}",
        "-d",
        str(workdir),
    ]
    subprocess.run(cmd, check=True)
    found = sorted(workdir.glob("bigbench-*.tar.gz"))
    if not found:
        raise SystemExit(f"pip download finished but no bigbench-*.tar.gz in {workdir}")
    return found[0]


def task_relpath(member_name: str) -> Path | None:
    """Map an archive member to ``<task>[/<subtask>]/task.json``, or None if not a task file."""
    idx = member_name.find(TASKS_MARKER)
    if idx < 0 or not member_name.endswith("/task.json"):
        return None
    rel = Path(member_name[idx + len(TASKS_MARKER) :])
    # a task.json sits at depth 2 (task) or 3 (task/subtask); ignore anything odd
    if len(rel.parts) not in (2, 3) or any(p in ("", ".", "..") for p in rel.parts):
        return None
    return rel


def extract_task_files(sdist: Path, dest: Path, tasks: set[str] | None = None) -> list[Path]:
    """Stream ``sdist`` and write the selected task.json files under ``dest``."""
    written: list[Path] = []
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(sdist, mode="r|gz") as tar:  # streaming: no seeking, no full unpack
        for member in tar:
            if not member.isfile():
                continue
            rel = task_relpath(member.name)
            if rel is None or (tasks is not None and rel.parts[0] not in tasks):
                continue
            src = tar.extractfile(member)
            if src is None:
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".json.part")
            with src, open(tmp, "wb") as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
            tmp.replace(target)
            written.append(target)
    return written


def build_index(dest: Path) -> None:
    """Scan the tasks once so that later task listings read the cached index."""
    src = Path(__file__).resolve().parents[1] / "src"  # a source checkout without install
    if (src / "taskgrove").is_dir() and str(src) not in sys.path:
        sys.path.append(str(src))
    try:
        from taskgrove.tasks.sources import list_bigbench_tasks
    except ImportError:
        print("taskgrove is not importable here: the task index is built on first listing")
        return
    t0 = time.monotonic()
    infos = list_bigbench_tasks(dest, subtasks=False)
    kinds: dict[str, int] = {}
    for info in infos:
        kinds[info.kind] = kinds.get(info.kind, 0) + 1
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
    print(f"indexed {len(infos)} tasks in {time.monotonic() - t0:.1f}s: {summary}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dest",
        type=Path,
        default=None,
        help="output folder (default: $TASKGROVE_BIGBENCH_DIR or ~/.cache/taskgrove/bigbench)",
    )
    parser.add_argument("--tasks", nargs="*", default=None, help="only these task names")
    parser.add_argument("--sdist", type=Path, default=None, help="use an already downloaded sdist")
    parser.add_argument("--keep", type=Path, default=None, help="download the sdist into this folder and keep it")
    parser.add_argument("--version", default=BIGBENCH_VERSION)
    parser.add_argument("--no-index", action="store_true", help="skip building the task index")
    parser.add_argument(
        "--if-missing", action="store_true", help="download nothing when every task named with --tasks is there"
    )
    args = parser.parse_args(argv)
    dest: Path = (args.dest or default_dest()).expanduser()
    tasks = set(args.tasks) if args.tasks else None
    if args.if_missing and tasks and all((dest / name / "task.json").is_file() for name in tasks):
        print(f"already fetched: {', '.join(sorted(tasks))} in {dest}")
        return 0

    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bigbench-sdist-") as tmp:
        if args.sdist is not None:
            sdist = args.sdist
        else:
            workdir = args.keep or Path(tmp)
            workdir.mkdir(parents=True, exist_ok=True)
            sdist = download_sdist(workdir, args.version)
        t1 = time.monotonic()
        written = extract_task_files(sdist, dest, tasks)
    t2 = time.monotonic()

    n_tasks = len({p.relative_to(dest).parts[0] for p in written})
    print(f"download: {t1 - t0:.1f}s  extract: {t2 - t1:.1f}s")
    print(f"wrote {len(written)} task.json files ({n_tasks} tasks) to {dest}")
    if not args.no_index:
        build_index(dest)
    if tasks is not None:
        missing = sorted(tasks - {p.relative_to(dest).parts[0] for p in written})
        if missing:
            print(f"not found in the archive: {', '.join(missing)}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
