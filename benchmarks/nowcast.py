"""Issue 29 benchmark: nowcasts with data integration on the CONUS test year (real SMAP_AM + NLDAS).

Trains the recipe of ``configs/conus_di.yaml`` twice: with its ``data_integration`` section (the DI model: the
last SMAP retrieval known at d - lead is an input) and without it (the projection model of the same recipe),
then prints, per lead (1, 2, 3, 5, 7 days), the median over the test cells of R, ubRMSE and RMSE of the DI
model beside persistence of the last retrieval, climatology plus persisted anomaly and the projection model,
and the coverage of the DI model's central 68% / 95% intervals (raw and recalibrated: variance scaling fitted
per lead on the validation month). Protocol in the printed header (:mod:`smfusion.evaluation.nowcast`).

    OMP_NUM_THREADS=1 nice python benchmarks/nowcast.py [--config configs/conus_di.yaml] [--out runs/nowcast]
        [--members 2] [--leads 1 2 3 5 7] [--train-only] [--di-name di] [--train-leads 1 7] [--iterations 200] [--stations]
        [--set data_integration.retrievals=2 ...] [--tuning]

After training it prints each member's validation score every 5 epochs and the epoch kept (:func:`epoch_curves`).

``--tuning`` trains both runs on 2015-04-01..2015-11-30 and scores them on 2015-12-01..2016-03-31 (the recipe of
configs/conus_di.yaml was chosen there, docs/nowcast.md); ``--set`` changes a key of the DI run only (ablations).

Training resumes from checkpoints in ``--out``; a finished run is not retrained.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


TUNING = {"train": ("2015-04-01", "2015-11-30"), "validation": ("2015-12-01", "2016-03-31")}


def configs(path: str, members: int | None, train_leads=None, iterations=None, sets=(), tuning: bool = False):
    """The DI config and its projection twin (the same without ``data_integration``); ``train_leads``,
    ``iterations`` (per epoch) and ``sets`` (``dotted.key=yaml value``) change the DI run only; ``tuning``
    moves both runs to the tuning split (:data:`TUNING`: the recipe is chosen there, the test year untouched)."""
    import yaml

    from smfusion.config import load_config, parse_config

    di = load_config(path)
    if members is not None:
        di.training = di.training.model_copy(update={"ensemble": members})
    if tuning:
        di = parse_config({**di.to_dict(), "periods": {**di.to_dict()["periods"], **TUNING}})
    proj = di.model_copy(deep=True, update={"data_integration": None, "name": f"{di.name}_projection"})
    if train_leads is not None:
        di.data_integration = di.data_integration.model_copy(update={"train_leads": tuple(train_leads)})
    if iterations is not None:
        di.training = di.training.model_copy(update={"iterations_per_epoch": iterations})
    if sets:
        d = di.to_dict()
        for kv in sets:
            key, value = kv.split("=", 1)
            *parents, last = key.split(".")
            node = d
            for k in parents:
                node = node[k]
            node[last] = yaml.safe_load(value)
        di = parse_config(d, source="--set")
    return di, proj


def epoch_curves(run_dir: Path, every: int = 5) -> str:
    """Each member's validation score over its epochs (``history.json``: RMSE of the normalised prediction at
    the run's lead on the validation period, the score that selects the kept epoch), every ``every``-th epoch,
    with the selected epoch (the weights kept unless ``swa_epochs`` averages them): whether longer training
    still improves the held-out period or over-fits."""
    lines = [f"{run_dir.name}: validation RMSE (normalised) by epoch, the lowest is kept"]
    for hist in sorted(run_dir.glob("member_*/history.json")):
        val = [row.get("val_rmse") for row in json.loads(hist.read_text())]
        if not val or None in val:
            continue
        best = min(range(len(val)), key=val.__getitem__)
        shown = " ".join(f"{e + 1}:{val[e]:.3f}" for e in range(len(val)) if (e + 1) % every == 0 or e == 0)
        lines.append(f"  {hist.parent.name}: {shown} | kept epoch {best + 1} of {len(val)} ({val[best]:.4f})")
    return "\n".join(lines)


def stations(out: Path, di_name: str, leads: list[int], data_dir: Path) -> str:
    """The gap-free daily DI product (per lead) beside the projection model and SMAP_AM against the USCRN
    stations over the test year, each product on all of its days and on the days where SMAP_AM exists."""
    from smfusion.evaluation.validation import ValidationOptions, validate_series
    from smfusion.io.stations import read_stations
    from smfusion.runs import Run

    di = Run.load(out / di_name)
    test = di.cfg.periods.test.as_tuple()
    products = [(f"DI lead {k}", di.at_lead(k).predict(*test)) for k in leads]
    proj = Run.load(out / "projection").predict(*test)
    smap = di.adapter.load(*test)[["SMAP_AM"]]
    products += [("projection", proj), ("SMAP_AM", smap)]
    st = read_stations(data_dir / "uscrn")
    lines = [f"USCRN stations ({data_dir / 'uscrn'}), test year {test[0]}..{test[1]}: nearest of the 412 cells within "
             "60 km, daily matching, >= 20 pairs"]
    for common in (False, True):
        opts = ValidationOptions(max_distance_km=60.0, start=test[0], end=test[1], common_dates=common, n_boot=200,
                                 seed=0)
        res = validate_series(st, products, opts, variables=["SMAP_AM"] * len(products))
        t = res.table[["product", "station", "distance_km", "n", "R", "ubRMSE", "bias"]]
        lines += [f"--- {'days every product has (those with a SMAP_AM retrieval)' if common else 'each on all its days'}",
                  t.to_string(index=False, float_format=lambda v: f"{v:.3f}")]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/conus_di.yaml")
    ap.add_argument("--out", default="runs/nowcast")
    ap.add_argument("--members", type=int, default=None, help="members per run (default: the config's)")
    ap.add_argument("--leads", type=int, nargs="+", default=[1, 2, 3, 5, 7])
    ap.add_argument("--train-only", action="store_true")
    ap.add_argument("--stations", action="store_true", help="also validate against the USCRN stations")
    ap.add_argument("--di-name", default="di", help="folder of the DI run under --out (variants side by side)")
    ap.add_argument("--train-leads", type=int, nargs=2, default=None, help="override data_integration.train_leads")
    ap.add_argument("--iterations", type=int, default=None, help="override training.iterations_per_epoch (DI run)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config key of the DI run (dotted, YAML value), e.g. data_integration.retrievals=2")
    ap.add_argument("--tuning", action="store_true", help="train on 2015-04-01..2015-11-30 and score on the "
                    "validation period 2015-12-01..2016-03-31 (choosing a recipe without the test year)")
    args = ap.parse_args(argv)
    from smfusion.training.run import train

    out = Path(args.out)
    di_cfg, proj_cfg = configs(args.config, args.members, args.train_leads, args.iterations, args.set, args.tuning)
    t0 = time.time()
    for cfg, name in ((di_cfg, args.di_name), (proj_cfg, "projection")):
        train(cfg, out / name)
        print(f"trained {name} ({time.time() - t0:.0f} s so far)", flush=True)
        print(epoch_curves(out / name), flush=True)
    if args.train_only:
        return 0
    from smfusion.evaluation.nowcast import format_lead_table, lead_table

    res = lead_table(out / args.di_name, out / "projection", args.leads, on="validation" if args.tuning else "test")
    (out / f"nowcast_{args.di_name}.json").write_text(json.dumps(res, indent=1))
    (out / args.di_name / "metrics").mkdir(exist_ok=True)
    (out / args.di_name / "metrics" / "nowcast.json").write_text(json.dumps(res, indent=1))  # `smfusion report` shows it
    print(format_lead_table(res))
    if args.stations:
        from smfusion.settings import data_dir

        print(stations(out, args.di_name, [1, 3], data_dir()))
    print(f"{time.time() - t0:.0f} s in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
