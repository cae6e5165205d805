#!/usr/bin/env bash
# The README's Quickstart, as a new user runs it: a fresh venv, `bash scripts/setup.sh && eapo train` (base
# install only, no extras), in a scratch folder. Fails if the command fails or leaves no summary or report.
# Usage: bash scripts/quickstart_check.sh   (about 5-8 minutes on 2 cores)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python -m venv "$work/venv"
# shellcheck disable=SC1091
source "$work/venv/bin/activate"
export PIP_DISABLE_PIP_VERSION_CHECK=1
cd "$repo"
start=$(date +%s)
bash scripts/setup.sh
cd "$work"
eapo train 2>&1 | tee "$work/quickstart.log"
grep -q "avg@8: " "$work/quickstart.log" || { echo "quickstart: no before/after summary" >&2; exit 1; }
grep -q "^report: .*report.html" "$work/quickstart.log" || { echo "quickstart: no report.html" >&2; exit 1; }
test -s "$work/runs/eapo-seed0/report.html"
echo "quickstart: passed in $(( $(date +%s) - start )) s (fresh venv, base install only)"
