"""The CASM brightness-temperature path end to end on a tiny SYNTHETIC twin, through train / predict / evaluate:
masking of days without a pass, a source sensor trained through another run's product, the chained
product (no gap, no overlap, the right source), compositing of the passes, 25 km / 36 km output."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from smfusion.cli.main import main
from smfusion.config import parse_config
from smfusion.evaluation.report import evaluate
from smfusion.grids.ease2 import get_grid, latlon_to_rowcol
from smfusion.grids.regrid import site_weights
from smfusion.io.cf import cf_problems, read_product
from smfusion.runs import Run
from smfusion.training.run import train

pytestmark = pytest.mark.realdata
TWIN = dict(seed=2, n_cells=8, start="2009-06-01", end="2016-12-31")


def _cfg(twin, name, sensor, tags, train_p, test_p, input_p, context=False, **extra):
    """``context``: antecedent means of 3 and 7 days and the input climatologies as inputs (docs/casm.md)."""
    dyn = [f"tb_{p}_{sensor}{t}" for t in tags for p in ("h", "v")]
    pr = {f"pr_{sensor}{t}": [f"tb_h_{sensor}{t}", f"tb_v_{sensor}{t}"] for t in tags}
    ctx = {"antecedent": {v: [3, 7] for v in dyn}} if context else {}
    raw = {"name": name, "data": {"reader": "casm_twin", "adapter": "tb", "casm_twin": {"path": str(twin)},
                                  "dynamic": dyn, "target": ["sm_smap"]},
           "periods": {"train": train_p, **({"test": test_p} if test_p else {}), "warmup_days": 6 if context else 0},
           "features": {"polarization_ratio": pr, **ctx},
           "seasonal": {"target_mode": "anomaly", "input_mode": "anomaly", "input_period": input_p,
                        "climatology_inputs": dyn if context else []},
           "model": {"name": "mlp", "hidden_size": 8, "num_layers": 2, "dropout": 0.0},
           "training": {"epochs": 2, "iterations_per_epoch": 15, "batch_size": 8, "seq_len": 30, "ensemble": 2,
                        "progress": False, "threads": 1, "loss": "mse"},
           "evaluation": {"baselines": ["climatology"], "plots": False},
           "uncertainty": {"noise": 0.1, "noise_runs": 2}, **extra}
    return parse_config(raw)


@pytest.fixture(scope="module")
def runs(conus_root, tmp_path_factory):
    from smfusion.synthetic.casm_twin import write_casm_twin

    tmp = tmp_path_factory.mktemp("tbrun")
    twin = write_casm_twin(tmp / "twin.nc", root=conus_root, **TWIN)
    smos = train(_cfg(twin, "smos", "smos", [""], ["2015-04-01", "2016-06-30"], ["2016-07-01", "2016-12-31"],
                      ["2010-01-12", "2016-12-31"], context=True), tmp / "smos")
    assert main(["predict", str(smos), "--product", "--start", "2010-01-12", "--end", "2011-10-04",
                 "--out", str(tmp / "overlap.nc")]) == 0
    amsre = train(_cfg(twin, "amsre", "amsre", ["_06", "_10"], ["2010-01-12", "2011-10-04"], None,
                       ["2009-06-01", "2011-10-04"], tb={"target_product": str(tmp / "overlap.nc")},
                       transfer={"from_run": str(smos), "input_map": {"tb_h_amsre_06": "tb_h_smos",
                                                                      "tb_v_amsre_10": "tb_v_smos"}}), tmp / "amsre")
    return {"tmp": tmp, "twin": twin, "smos": smos, "amsre": amsre}


def test_days_without_a_pass_are_not_predicted_and_evaluation_prints_homogeneity(runs):
    run = Run.load(runs["smos"])
    pred = run.predict("2016-07-01", "2016-12-31")
    twin = xr.open_dataset(runs["twin"]).sel(time=slice("2016-07-01", "2016-12-31"))
    has = np.isfinite(twin["tb_h_smos"].values) & np.isfinite(twin["tb_v_smos"].values)
    assert np.array_equal(np.isfinite(pred["sm_smap"].values), has) and has.mean() > 0.2
    report = evaluate(runs["smos"]).text
    assert "Homogeneity of" in report and "vs sm_true" in report and "stable (|trend| <= 0.01" in report
    # the AMSR-E-like run learnt from the SMOS-like product where the target does not exist
    amsre = Run.load(runs["amsre"])
    data = amsre.adapter.load()
    assert np.isfinite(data["sm_smap"].sel(time=slice("2010-01-12", "2011-10-04")).values).mean() > 0.3
    assert amsre.adapter.seasonal.clims["sm_smap"].period == ("2015-04-01", "2016-06-30")  # the SMOS-like run's


def test_chained_product_has_no_gap_or_overlap_and_the_right_source(runs, capsys):
    tmp, out = runs["tmp"], runs["tmp"] / "chain.nc"
    assert main(["predict", "--product", "--era", str(runs["amsre"]), "2009-06-01", "2010-01-11",
                 "--era", str(runs["smos"]), "2010-01-12", "2016-12-31", "--composite-days", "3",
                 "--out", str(out), "--check"]) == 0
    printed = capsys.readouterr().out
    assert "jump@2010-01-12" in printed and "Skill per era vs sm_true" in printed
    p = read_product(out, load=True)
    assert not cf_problems(p)
    t = pd.DatetimeIndex(p["time"].values)
    assert (t == pd.date_range("2009-06-01", "2016-12-31", freq="3D")).all()  # every window once
    src, sm = p["source"].values, p["sm"].values
    first_smos = t >= pd.Timestamp("2010-01-12")
    assert (src[:, ~first_smos][np.isfinite(sm[:, ~first_smos])] == 0).all()
    assert (src[:, first_smos][np.isfinite(sm[:, first_smos])] == 1).all()
    assert (np.isnan(src) | (src >= 0))[np.isfinite(sm)].all() and np.isfinite(sm).mean() > 0.5
    assert p["source"].attrs["flag_meanings"] == "amsre smos"
    assert {"sm_epistemic_std", "sm_aleatoric_std", "sm_climatology"} <= set(p.data_vars)
    # compositing from the passes: each era's values are its run's prediction on the composited inputs
    for run_dir, (a, b) in ((runs["smos"], ("2015-03-29", "2015-06-29")),
                            (runs["amsre"], ("2009-06-01", "2009-08-30"))):
        run = Run.load(run_dir)
        run.adapter.set_composite(3, "2009-06-01")
        ref = run.predict(a, b)["sm_smap"].values
        np.testing.assert_allclose(p["sm"].sel(time=slice(a, b)).values, ref, rtol=1e-5, atol=1e-6)
        daily = Run.load(run_dir).predict(a, pd.Timestamp(b) + pd.Timedelta(days=2))["sm_smap"].values
        d3 = daily[:, : ref.shape[1] * 3].reshape(daily.shape[0], -1, 3)
        n = np.isfinite(d3).sum(-1)
        blocks = np.where(n > 0, np.nansum(d3, -1) / np.maximum(n, 1), np.nan)
        assert not np.allclose(np.nan_to_num(blocks), np.nan_to_num(ref), atol=1e-3)  # not a mean of daily output


def test_25_and_36_km_output_conserves_the_area_mean(runs):
    tmp = runs["tmp"]
    eras = ["--era", str(runs["amsre"]), "2009-06-01", "2010-01-11", "--era", str(runs["smos"]), "2010-01-12",
            "2010-03-31"]
    assert main(["predict", "--product", *eras, "--out", str(tmp / "site.nc")]) == 0
    assert main(["predict", "--product", *eras, "--out", str(tmp / "m36.nc"), "--layout", "grid", "--grid", "M36",
                 "--min-valid-fraction", "0"]) == 0
    site, grid = read_product(tmp / "site.nc", load=True), read_product(tmp / "m36.nc", load=True)
    assert grid.attrs["ease2_grid"] == "M36" and grid.attrs["regridded_from"] == "M25"
    r25, c25 = latlon_to_rowcol("M25", site["lat"].values, site["lon"].values)
    r36, c36 = latlon_to_rowcol("M36", grid["lat"].values, grid["lon"].values)
    w = site_weights("M25", "M36", r25, c25, r36.ravel(), c36.ravel())
    for k in (0, 100, 250):
        v = site["sm"].values[:, k].astype(float)
        ok = np.isfinite(v)
        covered = w[:, ok].sum(axis=1).A1
        g = grid["sm"].values[k].ravel().astype(float)
        np.testing.assert_allclose(np.nansum(np.where(covered > 0, g, 0) * covered),
                                   (v[ok] * get_grid("M25").cell_size ** 2).sum(), rtol=1e-5)
    src = grid["source"].values
    assert (src[np.isfinite(grid["sm"].values)] >= 0).all()


def test_chained_product_refuses_an_existing_output_and_leaves_no_scratch(runs, capsys):
    """--era writes nothing over a file smfusion did not write (exit 2, before any era is predicted) and
    leaves no scratch folder beside a finished product."""
    tmp = runs["tmp"]
    user = tmp / "mine.nc"
    user.write_bytes(b"a user's file")
    era = ["--era", str(runs["smos"]), "2016-01-01", "2016-03-31"]
    assert main(["predict", "--product", *era, "--out", str(user)]) == 2
    assert user.read_bytes() == b"a user's file" and "--overwrite" in capsys.readouterr().err
    assert main(["predict", "--product", *era, "--out", str(user), "--overwrite"]) == 2  # not smfusion's
    assert user.read_bytes() == b"a user's file"
    out = tmp / "short_chain.nc"
    assert main(["predict", "--product", *era, "--out", str(out)]) == 0
    assert main(["predict", "--product", *era, "--out", str(out), "--overwrite"]) == 0  # its own output
    assert not [p for p in tmp.iterdir() if ".chain" in p.name or p.name.endswith(".work")]
