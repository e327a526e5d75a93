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
from smfusion.io.formats import output_kind, write_product
from smfusion.io.ownership import check_output
from smfusion.runs import Run


def predict_to_file(
    run_dir: str | Path, start: str, end: str, out: str | Path, sites: Optional[np.ndarray] = None,
    overwrite: bool = False, recalibration: Optional[str] = None, lead: Optional[int] = None,
) -> Path:
    """Predict every site (or ``sites``; sensors for point runs) from ``start`` to ``end`` into ``out``, with the
    predictive-distribution layers (``recalibration``: none, variance, isotonic; None: the run's config);
    ``lead``: data-integration runs predict day d from the retrievals up to d - lead (None: the run's lead).

    An existing ``out`` is refused unless ``overwrite`` (and then replaced only when smfusion wrote it;
    never the run directory or anything in it: :mod:`smfusion.io.ownership`), checked before any work."""
    check_output(out, overwrite=overwrite, protect=[run_dir], kind=output_kind(out))
    run = Run.load(run_dir).at_lead(lead)
    ds = run.predict(start, end, ids=sites, recalibration=recalibration)
    out = Path(out)
    if run.layout == "points":
        from smfusion.products.points import write_points_csv

        if out.suffix != ".csv":
            raise ConfigError(f"--out '{out}': point runs predict examples, written as CSV (name ending .csv)")
        return write_points_csv(ds, run.cfg.data.target[0], out, overwrite=overwrite, protect=[run_dir])
    ds = ds.assign_coords(site=ds["site"].astype("int64"))
    if getattr(run.adapter, "lead", None) is not None:
        ds.attrs["lead_days"] = run.adapter.lead  # every value uses retrievals up to lead_days before its day
    kw = dict(title=f"smfusion {run.cfg.name} prediction {start} .. {end}", config=run.cfg.to_dict(),
              inputs=[str(run.run_dir)], overwrite=overwrite, protect=[run_dir])
    write_product(ds, out, **kw)
    return out
