#!/usr/bin/env bash
# Install eapo (editable) from this checkout. Keeps an already-installed torch (CPU or CUDA build);
# with none, installs torch 2.13.0 first so that pip does not pick a build on its own.
# Usage: bash scripts/setup.sh [EXTRAS]      e.g. bash scripts/setup.sh dev
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
python -c "import torch" 2>/dev/null || python -m pip install --quiet "torch==2.13.0"
if [ -n "${1:-}" ]; then
  python -m pip install --quiet -e ".[$1]"
else
  python -m pip install --quiet -e .
fi
