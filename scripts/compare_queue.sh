#!/usr/bin/env bash
# The pre-registered real-model comparison (docs/findings.md section 4) as one resumable queue: SmolLM2's runs
# (5 seeds), then Gemma-3's (3), trained in a worktree pinned at COMMIT (made if missing), each finished run kept in
# this checkout's docs/realmodel/runs/ (`realmodel.py keep`) within two minutes of finishing, for you to commit.
# Start it again after a stop: a finished run is never trained again, an unfinished one resumes from its last
# checkpoint (on a new machine, whose worktree has no runs, the finished runs kept in this checkout are restored
# there first, `realmodel.py restore`, and the unfinished one starts from step 0 with its seed). The first start
# writes the installed libraries' versions to docs/realmodel/runs/versions.txt (commit it); a later start with other
# versions stops with one line.
# Usage: nohup bash scripts/compare_queue.sh COMMIT [WORKTREE] > compare-queue.log 2>&1 &
#        (WORKTREE defaults to ../eapo-exp beside this checkout; the runs go to WORKTREE/runs/realmodel/)
set -uo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "compare_queue: give the commit to pin the runs at (and optionally the worktree): compare_queue.sh COMMIT [WORKTREE]" >&2
  exit 2
fi
if ! pin="$(git -C "$repo" rev-parse --verify --quiet "$1^{commit}")"; then
  echo "compare_queue: $1 is not a commit of $repo: give one that git log shows" >&2
  exit 2
fi
# the libraries every run of the comparison trains with: written at its first start, checked at every later one
# (a new machine's install may take newer releases within pyproject's ranges, which would split the runs)
versions="${EAPO_COMPARE_VERSIONS:-$repo/docs/realmodel/runs/versions.txt}"
installed="$(python -m pip freeze --exclude-editable 2>/dev/null \
  | grep -iE '^(torch|transformers|trl|accelerate|datasets|peft|tokenizers|safetensors|numpy)==' | sort)"
if [ -f "$versions" ] && [ "$installed" != "$(grep -v '^#' "$versions")" ]; then
  echo "compare_queue: the installed libraries differ from the runs' ($versions): pip install -r $versions, then start again" >&2
  exit 2
fi
tree="${2:-$repo/../eapo-exp}"
if [ -e "$tree" ] && [ ! -d "$tree" ]; then
  echo "compare_queue: $tree is a file, not a worktree folder: give another WORKTREE" >&2
  exit 2
fi
[ -d "$tree" ] || git -C "$repo" worktree add --quiet --detach "$tree" "$pin" || exit 2
if [ "$(git -C "$tree" rev-parse HEAD 2>/dev/null)" != "$pin" ]; then
  echo "compare_queue: $tree is not a worktree at ${pin:0:10}: remove it or give another WORKTREE" >&2
  exit 2
fi
if [ ! -f "$versions" ]; then
  mkdir -p "$(dirname "$versions")"
  { echo "# the libraries the comparison's runs train with (scripts/compare_queue.sh), $(python --version)"
    echo "$installed"; } > "$versions"
fi
# a new machine's worktree holds no runs: the finished ones kept here go back first, so that none trains again
restored="$(cd "$repo" && python benchmarks/realmodel.py restore --runs "$tree/runs/realmodel")" || exit 2
grep -v " 0 run(s) restored" <<<"$restored"
keep() { (cd "$repo" && python benchmarks/realmodel.py keep --runs "$tree/runs/realmodel") | grep -v " 0 run(s) kept"; }
(while sleep 120; do keep; done) &
keeper=$!
trap 'kill $keeper 2>/dev/null' EXIT
# the seeds are given: the pinned worktree's compare (b5f41f0) defaults to 5 for either model
for spec in "smollm2 5" "gemma3 3"; do
  read -r model seeds <<<"$spec"
  echo "compare_queue: $(date -u '+%F %T') $model, $seeds seeds, at ${pin:0:10} in $tree"
  if ! (cd "$tree" && PYTHONPATH=src python benchmarks/realmodel.py compare --model "$model" --seeds "$seeds"); then
    keep
    echo "compare_queue: $model stopped (see above); start the queue again to resume" >&2
    exit 1
  fi
done
keep
echo "compare_queue: $(date -u '+%F %T') done; commit docs/realmodel/runs and run: python benchmarks/realmodel.py tables --runs docs/realmodel/runs"
