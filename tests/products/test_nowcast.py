"""Data integration on real CONUS cells (issue 29): no output depends on a retrieval after d - lead (prediction
and product), the product with its carried state equals per-site prediction at any lead, ``predict --lead``,
a run without the section keeps its inputs and draws, and the daily job (``smfusion nowcast``) appends days
that equal the product."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from smfusion.cli.main import main
from smfusion.config import parse_config
from smfusion.data.sampling import sample_batch
from smfusion.io.cf import read_product
from smfusion.products.daily import append_day
from smfusion.products.longterm import predict_product
from smfusion.runs import Run
from smfusion.training.run import train

pytestmark = pytest.mark.realdata
PERIOD = ("2016-04-01", "2016-07-31")
CUT = 61  # 2016-06-01: index of the first scrambled day in the 2016 file (which starts 2016-04-01)
LEAD = 2


def _cfg(root, di: bool = True) -> dict:
    cfg = {
        "name": "nowcast_test",
        "data": {"root": str(root), "dynamic": ["APCP_FORA", "TMP_2_FORA"], "static": ["Sand"], "target": ["SMAP_AM"]},
        "periods": {"train": ["2015-04-01", "2016-01-31"], "validation": ["2016-02-01", "2016-03-31"],
                    "test": ["2016-04-01", "2017-03-31"], "warmup_days": 40},
        "normalization": {"target": "site"},
        "model": {"name": "lstm", "hidden_size": 8, "dropout": 0.0, "head": "gaussian"},
        "training": {"epochs": 1, "batch_size": 4, "seq_len": 20, "iterations_per_epoch": 8, "ensemble": 2,
                     "loss": "gaussian_nll", "progress": False, "threads": 1, "lr": 0.01},
        "uncertainty": {"recalibration": "variance", "quantiles": [0.05, 0.95]},
        "evaluation": {"baselines": ["climatology"]},
    }
    if di:
        cfg["data_integration"] = {"lead": LEAD, "max_age": 6, "thin": 0.3, "train_leads": [1, 3], "retrievals": 2}
    return cfg


@pytest.fixture(scope="module")
def db(mini_db, tmp_path_factory):
    return mini_db(tmp_path_factory.mktemp("nowcast_db"), n_sites=6, years=(2015, 2016))


@pytest.fixture(scope="module")
def run_dir(db, tmp_path_factory):
    return train(parse_config(_cfg(db)), tmp_path_factory.mktemp("nowcast") / "run")


def _scramble(db, seed: int = 0) -> None:
    """Replace every SMAP_AM value from 2016-06-01 on (new values, new gaps) in the mini database."""
    path = db / "CONUSv4f1" / "2016" / "SMAP_AM.csv"
    rng = np.random.default_rng(seed)
    rows = []
    for line in path.read_text().splitlines():
        v = line.split(",")
        for j in range(CUT, len(v)):
            v[j] = f"{rng.uniform(0.05, 0.45):.6f}" if rng.random() < 0.5 else "-9999"
        rows.append(",".join(v))
    path.write_text("\n".join(rows) + "\n")


def _outputs(run_dir, tmp_path, name: str, lead: int) -> dict:
    run = Run.load(run_dir).at_lead(lead)
    pred = run.predict(*PERIOD)
    prod = read_product(predict_product(run_dir, *PERIOD, tmp_path / f"{name}.nc", chunk_days=30, chunk_sites=4,
                                        progress=False, lead=lead), load=True)
    return {"predict": {v: pred[v].values for v in pred.data_vars},
            "product": {v: prod[v].values for v in prod.data_vars if prod[v].dims == ("site", "time")}}


def test_no_output_depends_on_a_retrieval_after_d_minus_lead(db, run_dir, tmp_path):
    before = {lead: _outputs(run_dir, tmp_path, f"a{lead}", lead) for lead in (LEAD, 5)}
    _scramble(db)
    try:
        for lead, ref in before.items():
            after = _outputs(run_dir, tmp_path, f"b{lead}", lead)
            keep = CUT + lead  # days before 2016-06-01 + lead read no scrambled retrieval
            for kind in ("predict", "product"):
                assert set(after[kind]) == set(ref[kind]) and len(ref[kind]) >= 5
                for var, a in after[kind].items():
                    np.testing.assert_array_equal(a[:, :keep], ref[kind][var][:, :keep], err_msg=f"{kind} {var}")
                assert not np.array_equal(after[kind]["SMAP_AM" if kind == "predict" else "sm"][:, keep:],
                                          ref[kind]["SMAP_AM" if kind == "predict" else "sm"][:, keep:])
    finally:
        _scramble(db, seed=1)  # the fixture's database stays scrambled after the cut: later tests use it whole


def test_product_with_carried_state_equals_prediction_and_lead_changes_it(run_dir, tmp_path):
    for lead in (1, 4):
        out = _outputs(run_dir, tmp_path, f"c{lead}", lead)
        for suffix in ("", "_std", "_q05", "_q95"):
            np.testing.assert_allclose(out["product"][f"sm{suffix}"], out["predict"][f"SMAP_AM{suffix}"],
                                       rtol=1e-5, atol=1e-6)
    assert (run_dir / "recalibration_variance_noise0_lead1.json").is_file()
    assert (run_dir / "recalibration_variance_noise0_lead4.json").is_file()
    a, b = (Run.load(run_dir).at_lead(k).predict(*PERIOD)["SMAP_AM"].values for k in (1, 4))
    assert not np.allclose(a, b)


def test_predict_cli_lead(run_dir, db, tmp_path, capsys):
    out = tmp_path / "lead3.nc"
    assert main(["predict", str(run_dir), "--start", PERIOD[0], "--end", PERIOD[1], "--out", str(out),
                 "--lead", "3"]) == 0
    got = read_product(out, load=True)
    ref = Run.load(run_dir).at_lead(3).predict(*PERIOD)
    np.testing.assert_array_equal(got["SMAP_AM"].values, ref["SMAP_AM"].values)
    assert got.attrs["lead_days"] == 3
    default = tmp_path / "default.nc"
    assert main(["predict", str(run_dir), "--start", PERIOD[0], "--end", PERIOD[1], "--out", str(default)]) == 0
    assert read_product(default).attrs["lead_days"] == LEAD
    assert main(["predict", str(run_dir), "--start", PERIOD[0], "--end", PERIOD[1], "--out", str(tmp_path / "x.nc"),
                 "--lead", "9"]) == 2
    assert "max_age" in capsys.readouterr().err


def test_without_the_section_inputs_and_draws_are_unchanged(db, tmp_path, capsys):
    cfg = parse_config(_cfg(db, di=False))
    run = Run.load(train(cfg.model_copy(update={"training": cfg.training.model_copy(update={"ensemble": 1})}),
                         tmp_path / "plain"))
    assert run.adapter.lead is None and run.adapter.input_names() == ["APCP_FORA", "TMP_2_FORA", "Sand"]
    data = run.load_data(*PERIOD)
    b = run.adapter.eval_batches(data, run.split.test, PERIOD)
    assert b.inputs["x_dynamic"].shape[-1] == 2
    sampler = run.adapter.train_batches(run.adapter.load(), run.split, run.cfg.training)
    got = sampler.sample(np.random.default_rng(5))
    ref = sample_batch(sampler.arrays, sampler.batch_size, sampler.seq_len, np.random.default_rng(5))
    for key in ref:
        np.testing.assert_array_equal(got[key], ref[key])
    assert main(["predict", str(run.run_dir), "--start", PERIOD[0], "--end", PERIOD[1], "--out",
                 str(tmp_path / "p.nc"), "--lead", "1"]) == 2
    assert "no data_integration section" in capsys.readouterr().err


def test_daily_appends_equal_the_product_and_refuse_gaps(run_dir, tmp_path, capsys):
    days = pd.date_range("2016-04-01", "2016-04-04").strftime("%Y-%m-%d")
    store = tmp_path / "daily.zarr"
    for d in days:
        append_day(run_dir, d, store)
    got = xr.open_zarr(store, consolidated=False).load()
    ref = read_product(predict_product(run_dir, days[0], days[-1], tmp_path / "ref.nc", chunk_days=1, chunk_sites=8,
                                       progress=False), load=True)
    np.testing.assert_array_equal(got.time.values, ref.time.values)
    for name in ("sm", "sm_std", "sm_q05"):
        np.testing.assert_allclose(got[name].values, ref[name].values, rtol=1e-5, atol=1e-7)
    assert sorted(p.name for p in (tmp_path / "daily.zarr.state").iterdir()) == ["state_2016-04-04.npz"]
    assert main(["nowcast", str(run_dir), "--day", "2016-04-07", "--out", str(store)]) == 2
    assert "the next day to append is 2016-04-05" in capsys.readouterr().err
    assert main(["nowcast", str(run_dir), "--day", "2016-04-05", "--out", str(store), "--lead", "3"]) == 2
    assert "another lead" in capsys.readouterr().err
    assert main(["nowcast", str(run_dir), "--day", "2016-04-05", "--out", str(store)]) == 0
    assert xr.open_zarr(store, consolidated=False).time.size == 5


def test_evaluate_and_report_show_skill_against_lead(run_dir, tmp_path, capsys):
    assert main(["evaluate", str(run_dir), "--no-plots"]) == 0
    text = capsys.readouterr().out
    assert "Skill against lead" in text and "climatology + persisted anomaly" in text
    res = json.loads((run_dir / "metrics" / "nowcast.json").read_text())
    assert sorted(res["leads"]) == ["1", "2", "3", "5"]  # lead 7 > max_age 6 is left out
    assert main(["report", str(run_dir), "--out", str(tmp_path / "rep")]) == 0
    page = (tmp_path / "rep" / "index.html").read_text()
    assert "Skill against lead (data integration)" in page and "nowcast_ubrmse" in page


def test_lead_table_on_the_validation_period(run_dir):
    from smfusion.evaluation.nowcast import format_lead_table, lead_table

    res = lead_table(run_dir, None, [1, 2], on="validation")
    assert res["protocol"]["scored"] == "validation" and res["protocol"]["test"] == ["2016-02-01", "2016-03-31"]
    assert sorted(res["leads"]) == [1, 2] and res["leads"][1]["_n"] > 0
    assert "scored on the VALIDATION period 2016-02-01..2016-03-31" in format_lead_table(res)
    with pytest.raises(ValueError, match="on='train'"):
        lead_table(run_dir, None, [1], on="train")


def test_error_budget_and_probes_run(run_dir, db, tmp_path, capsys):
    """benchmarks/nowcast_probes.py (errors, members, blends, residuals, neighbours, cells) on the tiny run: the
    tables docs/nowcast.md quotes come out, with their protocol."""
    import runpy
    from pathlib import Path

    probes = runpy.run_path(str(Path(__file__).resolve().parents[2] / "benchmarks" / "nowcast_probes.py"))["main"]
    assert probes(["errors", str(run_dir), "--lead", "1"]) == 0
    out = capsys.readouterr().out
    assert "test 2016-04-01..2017-03-31, 6 cells, 2 members" in out and "age 1, dry" in out and "wet" in out
    assert "random error std" in out
    assert probes(["members", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "k  1 from member 1" in out and "k  2 from member 0" in out and "infinite-ensemble estimate" in out
    proj = train(parse_config(_cfg(db, di=False)), tmp_path / "projection")
    assert probes(["blends", str(run_dir), str(proj)]) == 0
    out = capsys.readouterr().out
    assert "DI + 0.3 x (projection - DI)" in out and "own last residual" in out
    assert probes(["residuals", str(run_dir), str(proj)]) == 0
    out = capsys.readouterr().out
    assert "odd months -> even months: DI R" in out and "the other half" in out and "corrected R" in out
    assert probes(["neighbours", str(run_dir), "--radius", "5000"]) == 0
    assert "within 5000 km (median 5 cells), neighbours 1 day(s) before" in capsys.readouterr().out
    small = train(parse_config({**_cfg(db), "data": {**_cfg(db)["data"], "sites": [0, 1, 2]}}), tmp_path / "small")
    assert probes(["cells", str(small), str(run_dir), "--members", "2", "--lead", "1"]) == 0
    out = capsys.readouterr().out
    assert "trained on 3 cells, 2 members, scored on 3 cells" in out and "trained on 6 cells" in out
