#!/usr/bin/env bash
# Parameter sweeps of the chapter book/scaling.ipynb with papermill (python -m learnlaw.sweep).
#
#   scripts/scaling_grid.sh seeds   CPU (about 15 min on two cores): the chapter's defaults for
#                                   seeds 0, 1, 2, collected into learnlaw/data/scaling_grid.json,
#                                   which is committed and shown in the chapter
#   scripts/scaling_grid.sh paper   GPU: the grid of the paper's Table 2 as perceptron runs, one
#                                   (T, N) point per run: T = 1000 ... 8000, N = 4.096 T (2^12 ...
#                                   2^15), 500 epochs with a linearly decaying step size;
#                                   collected into sweeps/scaling/grid.json (not run on a CPU)
#
# Each run executes the whole chapter in its own kernel and writes its results.json under the
# sweep folder (sweeps/ is git-ignored). A sweep skips finished runs, so running the script again
# after an interruption resumes it. JOBS=n sets the number of notebooks run at once (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
JOBS=${JOBS:-2}
export TQDM_DISABLE=1

case "${1:-}" in
  seeds)
    out=sweeps/scaling_seeds
    dest=learnlaw/data/scaling_grid.json
    args=(-p seed 0,1,2 -p strict False)
    ;;
  paper)
    out=sweeps/scaling
    dest=sweeps/scaling/grid.json
    args=(-p T_max 1000,2000,4000,8000 -p n_points 1 -p N_per_T 4.096 -p epochs 500
          -p outer_lr_N 0.1 -p schedule linear -p strict False)
    ;;
  *)
    echo "usage: $0 seeds|paper" >&2
    exit 2
    ;;
esac

cmd="python -m learnlaw.sweep book/scaling.ipynb ${args[*]} --out $out --jobs $JOBS"
echo "$cmd"
"$PY" -m learnlaw.sweep book/scaling.ipynb "${args[@]}" --out "$out" --jobs "$JOBS" --no-progress

# Collect the runs' parameters and results (no machine paths) into one JSON file.
"$PY" - "$out" "$dest" "$cmd" <<'PYEOF'
import json
import sys
from pathlib import Path

out, dest, cmd = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
sweep = json.loads((out / "sweep.json").read_text())
runs = [
    dict(
        run_id=rid,
        params=json.loads((out / rid / "params.json").read_text()),
        results=json.loads((out / rid / "results.json").read_text()),
    )
    for rid in sweep["runs"]
]
dest.parent.mkdir(parents=True, exist_ok=True)
dest.write_text(json.dumps(dict(command=cmd, grid=sweep["grid"], runs=runs), indent=1) + "\n")
print(f"{len(runs)} runs collected into {dest}")
PYEOF
