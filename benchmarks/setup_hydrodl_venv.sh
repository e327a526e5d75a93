#!/usr/bin/env bash
# Create .venv-hydrodl (repo root): a separate venv holding the PyPI release of
# hydroDL (0.1.5) for the reference timing run in benchmarks/hydrodl_reference_run.py.
#
# hydroDL 0.1.5 pins torch==2.1.1 and pandas==2.1.1, so it is installed with
# --no-deps on top of the project's torch (CPU wheel, pinned: an unpinned torch
# would pull a multi-GB CUDA build) and current numpy/pandas/scipy.
# Idempotent: re-running only installs what is missing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${HYDRODL_VENV:-$ROOT/.venv-hydrodl}"
PYTHON="${PYTHON:-python3}"
PY="$VENV/bin/python"

if [ ! -x "$PY" ]; then
    "$PYTHON" -m venv "$VENV"
    "$PY" -m pip install -q --upgrade pip
fi

# 1. torch first, pinned (the CPU wheel on local disk).
"$PY" -m pip install -q "torch==2.13.0"
# 2. the scientific stack hydroDL uses (unpinned; torch is already satisfied).
"$PY" -m pip install -q numpy pandas scipy tqdm matplotlib
# 3. hydroDL itself, without its (obsolete) pins.
"$PY" -m pip install -q --no-deps "hydroDL==0.1.5"
# 4. Nothing else: hydroDL, hydroDL.data.dbCsv, hydroDL.model.{rnn,crit,train,test}
#    and hydroDL.post.stat import with the packages above (checked by importing them
#    below). Its optional imports (cartopy, statsmodels, psycopg2, gdal,
#    torch_scatter) sit in modules the reference run never loads.

"$PY" - <<'PYEOF'
import importlib.metadata as md
import torch
import hydroDL, hydroDL.data.dbCsv, hydroDL.model.rnn, hydroDL.model.crit
import hydroDL.model.train, hydroDL.model.test, hydroDL.post.stat
print("torch", torch.__version__, "| hydroDL", md.version("hydroDL"))
PYEOF
