"""Issue 13 diagnostic: how well the amplitude of the series is predicted at held-out and at seen cells.

For a regional CV directory written by ``smfusion cv`` / ``benchmarks/ungauged.py`` (with its ``temporal/``
run), prints per fold the median and quartiles over the fold's held-out cells of
``std(prediction) / std(SMAP_AM)`` over the test period (days with an observation, cells with >= 30 of them),
from the fold's model (the cells unseen) and from the temporal run (the same cells seen).

    OMP_NUM_THREADS=1 python benchmarks/ungauged_amplitude.py runs/ungauged_e1c/final
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def std_ratios(pred, obs, sites) -> np.ndarray:
    """``std(pred) / std(obs)`` per site on the days ``obs`` is finite (sites with >= 30 days, std > 0)."""
    out = []
    for s in sites:
        o = obs.sel(site=s).values
        ok = np.isfinite(o)
        if ok.sum() < 30 or np.std(o[ok]) == 0:
            continue
        out.append(np.std(pred.sel(site=s).values[ok]) / np.std(o[ok]))
    return np.asarray(out)


def main() -> None:
    from smfusion.runs import Run

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("cv_dir")
    args = p.parse_args()
    root = Path(args.cv_dir)
    temporal = Run.load(root / "temporal")
    start, end = (str(d) for d in temporal.cfg.periods.test.as_tuple())
    data = temporal.load_data(start, end)
    target = temporal.cfg.data.target[0]
    obs = data[target].sel(time=slice(start, end))
    seen = temporal.predict(start, end, data=data)[target].sel(time=obs.time)
    print(f"{root}: std(prediction) / std({target}) over {start}..{end}, median [quartiles] over held-out cells")
    for fold in json.loads((root / "folds.json").read_text())["folds"]:
        run = Run.load(root / f"fold_{fold['fold']}")
        unseen = run.predict(start, end, data=data)[target].sel(time=obs.time)  # folds differ only in their split
        h, t = std_ratios(unseen, obs, fold["test"]), std_ratios(seen, obs, fold["test"])
        print(f"fold {fold['fold']}: held out {np.median(h):.3f} [{np.percentile(h, 25):.2f}-{np.percentile(h, 75):.2f}]"
              f"   seen (temporal run) {np.median(t):.3f} [{np.percentile(t, 25):.2f}-{np.percentile(t, 75):.2f}]"
              f"   ({h.size} cells)")


if __name__ == "__main__":
    main()
