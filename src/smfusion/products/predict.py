"""Predict a period with a trained run and write it as a CF product file."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from smfusion.io import cf
from smfusion.training.run import TrainedRun


def predict_to_file(
    run_dir: str | Path, start: str, end: str, out: str | Path, sites: Optional[np.ndarray] = None
) -> Path:
    """Predict every site (or ``sites``) from ``start`` to ``end``; write CF NetCDF (or Zarr for ``.zarr``)."""
    run = TrainedRun.load(run_dir)
    ds = run.predict(start, end, sites=sites)
    ds = ds.assign_coords(site=ds["site"].astype("int64"))
    kw = dict(title=f"smfusion {run.cfg.name} prediction {start} .. {end}", config=run.cfg.to_dict(),
              inputs=[str(run.run_dir)])
    out = Path(out)
    if out.suffix == ".zarr":
        cf.write_zarr(ds, out, **kw)
    else:
        cf.write_netcdf(ds, out, **kw)
    return out
