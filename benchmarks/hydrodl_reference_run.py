"""Reference timing run of hydroDL itself (PyPI hydroDL 0.1.5, CPU LSTM).

Runs under ``.venv-hydrodl/bin/python`` (made by benchmarks/setup_hydrodl_venv.sh),
never under the project venv: hydroDL is not a dependency of smfusion.

What it does, with hydroDL's own code throughout:
  * reads the hydroDL example CSV database (``<data>/conus_smap``) with
    ``hydroDL.data.dbCsv.DataframeCsv`` (subset CONUSv4f1), normalised with the
    database ``Statistics/`` exactly as hydroDL's example does (x, c: doNorm,
    rmNan; y: doNorm, NaNs kept);
  * trains ``hydroDL.model.rnn.CpuLstmModel(nx, ny=1, hiddenSize=256)`` with
    ``crit.RmseLoss`` through ``hydroDL.model.train.trainModel`` (Adadelta,
    minibatch [100, 30]) in chunks of ``--eval-every`` epochs;
  * after each chunk predicts the test year with ``hydroDL.model.test.testModel``
    (0.1.5 moved it out of ``hydroDL.model.train``),
    de-normalises with ``dbCsv.transNorm`` and scores against SMAP_AM with
    ``hydroDL.post.stat.statError`` (per-cell Pearson R on days with SMAP; median
    over the 412 cells);
  * stops once the median R reaches ``--target-r`` (0.841, the published hydroDL
    LSTM), or at ``--max-epochs`` / ``--max-seconds``.

Only training is timed (``train_seconds``); data reading and evaluation are in
``wall_seconds``. The last stdout line is one JSON object; everything hydroDL
prints goes to stderr.

The compatibility patches this needs (hydroDL 0.1.5 against numpy 2 / pandas 3)
and the two changes to trainModel's surroundings (persistent optimiser across
chunks, no 0.1 s cosmetic sleep per epoch) are applied in ``_patch_hydrodl`` and
``_chunk_trainer``; benchmarks/HYDRODL.md explains each one. hydroDL's
installed source is not modified.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import math
import os
import random
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]

# Settings of hydroDL's SMAP example (hydroDL.master.default.optTrainSMAP,
# optLstm): minibatch [batch 100, rho 30], hidden 256. The variable list repeats
# smfusion.io.hydrodl.FORCINGS because this script runs in the hydroDL venv,
# which has no smfusion (nor xarray) to import it from.
FORCINGS = [
    "APCP_FORA",
    "DLWRF_FORA",
    "DSWRF_FORA",
    "TMP_2_FORA",
    "SPFH_2_FORA",
    "VGRD_10_FORA",
    "UGRD_10_FORA",
]
TARGET = "SMAP_AM"
SUBSET = "CONUSv4f1"
TRAIN_RANGE = [20150401, 20160401]
TEST_RANGE = [20160401, 20170401]


def data_dir() -> Path:
    """SMFUSION_DATA_DIR (train_speed.py passes smfusion's own resolution), else ../shared/data."""
    env = os.environ.get("SMFUSION_DATA_DIR")
    if env:
        return Path(env)
    return (REPO_ROOT / ".." / "shared" / "data").resolve()


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--max-epochs", type=int, default=100)
    p.add_argument("--max-seconds", type=float, default=None,
                   help="stop (between chunks) once the total wall time passes this")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--seed", type=int, default=42,
                   help="random/numpy/torch seed, as hydroDL.master.train sets it")
    p.add_argument("--target-r", type=float, default=0.841)
    p.add_argument("--eval-every", type=int, default=1,
                   help="epochs per training chunk between two evaluations")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--rho", type=int, default=30)
    p.add_argument("--trainer", choices=["hydrodl", "replica"], default="hydrodl",
                   help="hydrodl: call hydroDL.model.train.trainModel per chunk "
                        "(default); replica: the same loop written out with "
                        "hydroDL's make_train_settings/load_data/ModelWrapper "
                        "(a cross-check: both give identical results)")
    return p.parse_args(argv)


# --------------------------------------------------------------------------
# hydroDL 0.1.5 compatibility patches (its installed source stays untouched)
# --------------------------------------------------------------------------
def _patch_hydrodl():
    """Import hydroDL with the patches it needs on numpy 2.x / pandas 3.x.

    1. ``np.float``: dbCsv reads every CSV with ``dtype=np.float``; the alias was
       deprecated in numpy 1.20 and removed in 1.24 (AttributeError). It meant
       the builtin ``float``, so ``np.float = float`` restores the old behaviour.
    2. ``hydroDL.utils.time``: dbCsv calls ``utils.time.tRange2Array`` but the
       0.1.5 wheel's ``hydroDL/utils/__init__.py`` is all commented out, so the
       submodule is never imported (AttributeError: module 'hydroDL.utils' has no
       attribute 'time'). Importing it explicitly binds it.
    3. ``dbCsv.readDBtime`` casts the date strings with ``.astype(np.datetime64)``;
       pandas >= 2 refuses a unit-less datetime64 ("Passing in 'datetime64'
       dtype with no precision is not allowed"). Replaced by the same function
       with ``datetime64[ns]`` (what old pandas produced). Only the length of
       this array is used (number of days in the year files).
    """
    if not hasattr(np, "float") or np.float is not float:  # noqa: NPY001
        np.float = float  # patch 1 (see docstring)

    import pandas as pd

    import hydroDL  # noqa: F401  (prints "loading package hydroDL")
    import hydroDL.utils.time  # noqa: F401  patch 2
    from hydroDL.data import dbCsv

    def readDBtime(*, rootDB, rootName, yrLst):  # patch 3: dbCsv.readDBtime
        tnum = np.empty(0, dtype="datetime64[ns]")
        for yr in yrLst:
            timeFile = os.path.join(rootDB, rootName, str(yr), "timeStr.csv")
            temp = (
                pd.read_csv(timeFile, dtype=str, header=None)
                .astype("datetime64[ns]")
                .values.flatten()
            )
            tnum = np.concatenate([tnum, temp], axis=0)
        return tnum

    dbCsv.readDBtime = readDBtime
    return hydroDL


def _chunk_trainer(hydro_train, torch):
    """Make ``trainModel`` resumable in chunks, without touching its loop.

    trainModel builds a fresh ``torch.optim.Adadelta(model.parameters())`` on
    every call, which would reset Adadelta's running averages at each chunk;
    a run of N chunks would then differ from one call with nEpoch=N. The
    factory below hands trainModel the same optimiser for the same model on
    every call, so chunked training equals one long call.

    trainModel also ends each epoch with ``sleep(0.1)`` (cosmetic, for its tqdm
    bar); it is replaced by a no-op so that the timing measures training.
    """
    real_adadelta = torch.optim.Adadelta
    cache: dict = {}

    def persistent_adadelta(params, *args, **kwargs):
        params = list(params)
        key = tuple(id(p) for p in params)
        if key not in cache:
            cache[key] = real_adadelta(params, *args, **kwargs)
        return cache[key]

    torch.optim.Adadelta = persistent_adadelta
    hydro_train.sleep = lambda _s: None
    return cache


def _replica_epochs(model, x, y, c, loss_fun, n_epoch, mini_batch, state):
    """trainModel's loop, written out with hydroDL's own pieces (no tqdm/sleep)."""
    import torch
    from hydroDL.model.data.load.train.default import load_data
    from hydroDL.model.settings import make_train_settings
    from hydroDL.model.wrappers.ModelWrapper import ModelWrapper

    if "optim" not in state:
        state["optim"] = torch.optim.Adadelta(model.parameters())
    optim = state["optim"]
    inputs, settings = make_train_settings(model, x, y, c, n_epoch, mini_batch, 0)
    wrapped = ModelWrapper(model)
    for _ in range(n_epoch):
        for _ in range(settings["nIterEp"]):
            wrapped.zero_grad()
            data, _igrid = load_data(inputs, settings)
            out = wrapped(data)
            loss = loss_fun(out["yP"], data["yTrain"])
            loss.backward()
            optim.step()
            loss.item()


def main(argv=None) -> int:
    args = parse_args(argv)
    t_start = time.perf_counter()
    real_stdout = sys.stdout

    root_db = data_dir() / "conus_smap"
    if not (root_db / "Subset" / f"{SUBSET}.csv").is_file():
        print(f"hydroDL reference: no CSV database under {root_db} "
              "(set SMFUSION_DATA_DIR)", file=sys.stderr)
        return 2
    root_db = str(root_db)

    # hydroDL prints to stdout (import banner, every file it reads): keep stdout
    # for the final JSON line only.
    with contextlib.redirect_stdout(sys.stderr):
        import torch

        torch.set_num_threads(args.threads)
        hydroDL = _patch_hydrodl()
        from hydroDL.data import dbCsv
        from hydroDL.model import crit, rnn
        from hydroDL.model import test as hydro_test  # testModel lives here in 0.1.5
        from hydroDL.model import train as hydro_train
        from hydroDL.post import stat

        # statError warns (scipy ConstantInputWarning) for cells whose series is
        # constant; their R is NaN and the median skips them (nanmedian).
        warnings.filterwarnings("ignore", message="An input array is constant")

        # seeding as hydroDL.master.train does
        random.seed(args.seed)
        np.random.seed(args.seed)
        torch.manual_seed(args.seed)

        var_const = dbCsv.readVarLst(rootDB=root_db, varLst="varConstLst")
        df = dbCsv.DataframeCsv(rootDB=root_db, subset=SUBSET, tRange=TRAIN_RANGE)
        x = df.getDataTs(FORCINGS, doNorm=True, rmNan=True)
        y = df.getDataTs(TARGET, doNorm=True, rmNan=False)
        c = df.getDataConst(var_const, doNorm=True, rmNan=True)
        df_t = dbCsv.DataframeCsv(rootDB=root_db, subset=SUBSET, tRange=TEST_RANGE)
        x_t = df_t.getDataTs(FORCINGS, doNorm=True, rmNan=True)
        c_t = df_t.getDataConst(var_const, doNorm=True, rmNan=True)
        obs_t = df_t.getDataTs(TARGET, doNorm=False, rmNan=False)[:, :, 0]

        nx = x.shape[-1] + c.shape[-1]
        model = rnn.CpuLstmModel(nx=nx, ny=1, hiddenSize=args.hidden)
        loss_fun = crit.RmseLoss()
        mini_batch = [args.batch, args.rho]
        if args.trainer == "hydrodl":
            _chunk_trainer(hydro_train, torch)
        replica_state: dict = {}

        tmpdir = tempfile.TemporaryDirectory(prefix="hydrodl_ref_")
        out_csv = os.path.join(tmpdir.name, "out0.csv")

        def evaluate():
            # testModel (batchSize=None: all 412 cells in one batch) returns the
            # normalised prediction [ngrid, nt, ny]. It does not disable autograd;
            # no_grad changes no number, only keeps the 365-step graph out of RAM.
            with torch.no_grad():
                yp = hydro_test.testModel(model, x_t, c_t, filePathLst=[out_csv])
            pred = dbCsv.transNorm(yp.numpy()[:, :, 0], rootDB=root_db,
                                   fieldName=TARGET, fromRaw=False)
            err = stat.statError(pred, obs_t)
            return float(np.nanmedian(err["Corr"])), float(np.nanmedian(err["RMSE"]))

        history = []
        train_seconds = 0.0
        epochs = 0
        median_r = float("nan")
        median_rmse = float("nan")
        reached = False
        while epochs < args.max_epochs:
            k = min(args.eval_every, args.max_epochs - epochs)
            # testModel leaves the model in eval mode and trainModel never sets
            # train mode: put dropout back on for the next chunk.
            model.train()
            t0 = time.perf_counter()
            if args.trainer == "hydrodl":
                hydro_train.trainModel(model, x, y, c, loss_fun, nEpoch=k,
                                       miniBatch=mini_batch)
            else:
                _replica_epochs(model, x, y, c, loss_fun, k, mini_batch, replica_state)
            dt = time.perf_counter() - t0
            train_seconds += dt
            epochs += k
            median_r, median_rmse = evaluate()
            history.append([epochs, round(train_seconds, 3), round(median_r, 5)])
            print(f"epoch {epochs}: chunk {dt:.2f} s ({dt / k:.2f} s/epoch), "
                  f"train {train_seconds:.1f} s, median R {median_r:.4f}, "
                  f"median RMSE {median_rmse:.4f}", file=sys.stderr, flush=True)
            if median_r >= args.target_r:
                reached = True
                break
            if args.max_seconds is not None and time.perf_counter() - t_start >= args.max_seconds:
                break
        tmpdir.cleanup()

    result = {
        "tool": "hydroDL",
        "version": importlib.metadata.version("hydroDL"),
        "reached": reached,
        "epochs": epochs,
        "train_seconds": round(train_seconds, 3),
        "wall_seconds": round(time.perf_counter() - t_start, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "median_r": None if math.isnan(median_r) else round(median_r, 5),
        "median_rmse": None if math.isnan(median_rmse) else round(median_rmse, 5),
        "history": history,
        "settings": {
            "model": "hydroDL.model.rnn.CpuLstmModel",
            "hidden": args.hidden, "mini_batch": mini_batch, "loss": "RmseLoss",
            "optimizer": "Adadelta (trainModel default)", "trainer": args.trainer,
            "threads": args.threads, "seed": args.seed, "target_r": args.target_r,
            "eval_every": args.eval_every, "torch": torch.__version__,
            "numpy": np.__version__,
        },
    }
    print(json.dumps(result), file=real_stdout, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
