"""The HTML report: built from a tiny run's files only, then opened in headless Chromium."""

from markupsafe import escape as _esc
import json
import os
import shutil
from pathlib import Path

import pytest
import xarray as xr

from smfusion.cli.main import main
from smfusion.errors import DataError, OutputError
from smfusion.evaluation.htmlreport import SECTION_IDS, build_report

pytestmark = pytest.mark.realdata


def _copy_files_only(run: Path, dest: Path) -> Path:
    """The run's report inputs without models, scaler or checkpoints: the report must not need them."""
    dest.mkdir(parents=True)
    for rel in ("config.yaml", "metrics", "predictions"):
        src = run / rel
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / rel)
    return dest


def _section(html: str, sid: str) -> str:
    start = html.index(f'<section id="{sid}">')
    return html[start:html.index("</section>", start)]


def test_report_builds_from_files_and_passes_the_browser(tiny_run, validation_table, tmp_path, open_in_browser,
                                                         capsys):
    files = _copy_files_only(tiny_run, tmp_path / "run_files")
    out = tmp_path / "report"
    assert main(["report", str(files), "--validation", str(validation_table), "--out", str(out),
                 "--sites", "260", "--quiet"]) == 0
    assert "wrote" in capsys.readouterr().out
    html = (out / "index.html").read_text()
    assert "http://" not in html and "https://" not in html and "<script" not in html  # nothing fetched at view time
    images = ("map_skill", "map_coverage", "timeseries", "scatter_density", "calibration_SMAP_AM_reliability",
              "calibration_SMAP_AM_spread_skill", "reliability", "pit", "stations_map")
    for name in images:
        assert (out / "img" / f"{name}.png").stat().st_size > 5000, name
    for text in ("baseline: training-period climatology", "site 260 (chosen)", "best R", "worst R",
                 "Stillwater 5 WNW", "bootstrap", "not a spatial cross-validation run"):
        assert text in html, text
    # the band and the coverage map come from the quantile layers evaluate wrote into predictions/test.nc
    for sid in ("maps", "timeseries"):
        assert "quantile layers SMAP_AM_q05 .. SMAP_AM_q95" in _section(html, sid), sid

    shot = Path(os.environ.get("SMFUSION_SCREENSHOT_DIR", tmp_path)) / "report.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    seen = open_in_browser(out / "index.html", shot)
    assert seen["sections"] == list(SECTION_IDS)
    assert len(seen["images"]) == len(images)
    for img in seen["images"]:
        assert img["complete"] and img["width"] > 0, img
    assert seen["console_errors"] == []
    assert shot.stat().st_size > 50_000
    print(f"screenshot ({seen['driver']}): {shot}")


def test_calibration_section_shows_the_gaussian_runs_scores(tiny_run, tmp_path):
    """Every row of metrics/calibration.json (ensemble spread, raw, recalibrated) with its coverages and CRPS,
    the recalibration note, and the spread layers of predictions/test.nc."""
    with xr.open_dataset(tiny_run / "predictions" / "test.nc") as pred:
        layers = set(pred.data_vars)
        lo, mid, hi = (pred[v].values for v in ("SMAP_AM_q05", "SMAP_AM", "SMAP_AM_q95"))
    assert {"SMAP_AM_std", "SMAP_AM_epistemic_std", "SMAP_AM_aleatoric_std"} <= layers
    assert (lo < mid).mean() > 0.99 and (mid < hi).mean() > 0.99
    cal = json.loads((tiny_run / "metrics" / "calibration.json").read_text())["SMAP_AM"]
    labels = list(cal["rows"])
    assert [lab.split(", ")[-1] for lab in labels[1:]] == ["raw", "recalibrated (variance)"], labels
    sec = _section(build_report(tiny_run, tmp_path / "r", progress=False).read_text(), "calibration")
    assert _esc(cal["recalibration"]) in sec and "validation period 2016-03-01" in sec
    for label, row in cal["rows"].items():
        assert _esc(label) in sec, label
        for key in ("coverage_50", "coverage_68_cell_median", "coverage_90", "coverage_95_cell_median"):
            assert f">{row[key]:.3f}<" in sec, (label, key)
        assert f">{row['crps']:.4f}<" in sec and f">{row['rmse_over_rms_std']:.4f}<" in sec
    assert "SMAP_AM_std (total predictive std; recalibrated on held-out validation data (variance))" in sec
    assert 'class="missing"' not in sec


def test_run_without_spread_says_so(tiny_point_run, tiny_run, tmp_path):
    html = build_report(tiny_point_run, tmp_path / "point", progress=False).read_text()
    assert not (tmp_path / "point" / "img" / "reliability.png").exists()
    for sid in ("calibration", "maps", "timeseries"):
        assert "the config has 1 member (training.ensemble), a point head (model.head regression)" in \
            _section(html, sid), sid
    # a calibration.json of an older layout is named, not misread
    files = _copy_files_only(tiny_run, tmp_path / "old")
    (files / "metrics" / "calibration.json").write_text(json.dumps({"coverage_90": 0.3, "spread_skill": {}}))
    sec = _section(build_report(files, tmp_path / "old_report", progress=False).read_text(), "calibration")
    assert "calibration.json unreadable" in sec and "older layout" in sec


def test_cv_run_report_and_missing_inputs(tiny_cv_run, tmp_path, open_in_browser):
    out = tmp_path / "cv_report"
    index = build_report(tiny_cv_run, out, progress=False)
    html = index.read_text()
    summary = json.loads((tiny_cv_run / "summary.json").read_text())
    sec = _section(html, "cv")
    assert _esc(summary["protocol"]) in sec and "cv.kind</dt><dd>kmeans" in sec
    for name in ("cv_folds", "cv_calibration_SMAP_AM_reliability", "cv_calibration_SMAP_AM_spread_skill"):
        assert (out / "img" / f"{name}.png").stat().st_size > 5000, name
    rows = summary["periods"]["test"]
    assert list(rows) == ["model", "model, member 0 alone", "baseline: IDW climatology of nearest training cells",
                          "baseline: linear model, forcing + statics", "same recipe, temporal split (seen cells)"]
    assert "[test] unseen cells AND unseen year" in sec
    for label, r in rows.items():  # each row's per-fold medians in the rows x folds table
        assert f"<th>{_esc(label)}</th>" in sec, label
        for v in r["per_fold"].values():
            assert f">{v['R']:.4f}<" in sec and f">{v['ubRMSE']:.4f}<" in sec, label
    assert len(summary["ubrmse_ratio"]) == 3
    for ratio in [*summary["ubrmse_ratio"].values(), summary["ubrmse_ratio_pooled"]]:
        assert f">{ratio:.3f}<" in sec
    held = json.loads((tiny_cv_run / "calibration.json").read_text())["SMAP_AM"]
    assert "Calibration on held-out cells" in sec
    for label, row in held.items():
        assert _esc(label) in sec and f">{row['coverage_95']:.3f}<" in sec
    # a CV run has no test metrics or predictions of its own: each section says so and points to the CV section
    for text in ("metrics/summary.csv not found", "predictions/test.nc not found", "No station validation",
                 'href="#cv"'):
        assert text in html, text
    seen = open_in_browser(index, tmp_path / "cv.png")
    assert seen["sections"] == list(SECTION_IDS) and len(seen["images"]) == 3
    assert all(i["width"] > 0 for i in seen["images"]) and seen["console_errors"] == []


def test_older_cv_summary_layout_reads_as_the_models_rows(tiny_cv_run, tmp_path):
    from smfusion.evaluation.htmlreport.runfiles import load_run_files

    old = tmp_path / "old_cv"
    shutil.copytree(tiny_cv_run, old, ignore=shutil.ignore_patterns("fold_*", "temporal"))
    doc = json.loads((old / "summary.json").read_text())
    (old / "summary.json").write_text(json.dumps({k: doc[k] for k in ("protocol", "per_fold_median",
                                                                       "pooled_median")}))
    periods = load_run_files(old).cv["summary"]["periods"]
    (rows,) = periods.values()
    assert rows["model"]["per_fold"] == doc["per_fold_median"] and rows["model"]["pooled"] == doc["pooled_median"]


def test_report_refuses_foreign_folder_and_bad_table(tiny_run, tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(OutputError, match="exists"):
        build_report(tiny_run, foreign, progress=False)
    with pytest.raises(OutputError, match="did not write"):
        build_report(tiny_run, foreign, progress=False, overwrite=True)
    assert (foreign / "notes.txt").read_text() == "keep me" and sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
    bad = tmp_path / "bad.csv"
    bad.write_text("station,R\nx,0.5\n")
    with pytest.raises(DataError, match="lacks columns"):
        build_report(tiny_run, tmp_path / "r", validation=bad, progress=False)
    # rebuilding into its own folder takes --overwrite; a file the user put inside it, at any depth, is
    # never deleted: the overwrite is refused naming it (issue 24)
    first = build_report(tiny_run, tmp_path / "again", progress=False)
    (tmp_path / "again" / "img" / "mine.png").write_bytes(b"x")
    with pytest.raises(OutputError, match="exists"):
        build_report(tiny_run, tmp_path / "again", progress=False)
    with pytest.raises(OutputError, match="holds 'img/mine.png', which smfusion did not write"):
        build_report(tiny_run, tmp_path / "again", progress=False, overwrite=True)
    assert (tmp_path / "again" / "img" / "mine.png").read_bytes() == b"x"
    (tmp_path / "again" / "img" / "mine.png").unlink()
    assert build_report(tiny_run, tmp_path / "again", progress=False, overwrite=True) == first


def test_browser_check_catches_a_broken_page(tmp_path, open_in_browser):
    """The checks above can fail: a missing image and a console error are seen."""
    page = tmp_path / "broken" / "index.html"
    page.parent.mkdir()
    page.write_text('<!DOCTYPE html><html><body><section id="a"></section><img src="missing.png">'
                    '<script>console.error("boom")</script></body></html>')
    seen = open_in_browser(page, tmp_path / "broken.png")
    assert seen["sections"] == ["a"]
    assert seen["images"][0]["width"] == 0
    assert any("boom" in str(e) for e in seen["console_errors"])
