"""Predict a period with a trained run (any adapter) and write it as a product file.

Series runs (sequence, multiscale) give a CF NetCDF (or Zarr for ``.zarr``) of
``(site, time)``; point runs a CSV with one row per example
(:func:`smfusion.products.points.write_points_csv`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from smfusion.errors import ConfigError
from smfusion.io import cf
from smfusion.runs import Run


def predict_to_file(
    run_dir: str | Path, start: str, end: str, out: str | Path, sites: Optional[np.ndarray] = None
) -> Path:
    """Predict every site (or ``sites``; sensors for point runs) from ``start`` to ``end`` into ``out``."""
    run = Run.load(run_dir)
    ds = run.predict(start, end, ids=sites)
    out = Path(out)
    if run.layout == "points":
        from smfusion.products.points import write_points_csv

        if out.suffix != ".csv":
            raise ConfigError(f"--out '{out}': point runs predict examples, written as CSV (name ending .csv)")
        return write_points_csv(ds, run.cfg.data.target[0], out)
    ds = ds.assign_coords(site=ds["site"].astype("int64"))
    kw = dict(title=f"smfusion {run.cfg.name} prediction {start} .. {end}", config=run.cfg.to_dict(),
              inputs=[str(run.run_dir)])
    if out.suffix == ".zarr":
        cf.write_zarr(ds, out, **kw)
    else:
        cf.write_netcdf(ds, out, **kw)
    return out
