"""The HTML report: built from a tiny run's files only, then opened in headless Chromium."""

import os
import shutil
from pathlib import Path

import pytest

from smfusion.cli import main
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


def test_report_builds_from_files_and_passes_the_browser(tiny_run, validation_table, tmp_path, open_in_browser,
                                                         capsys):
    files = _copy_files_only(tiny_run, tmp_path / "run_files")
    out = tmp_path / "report"
    assert main(["report", str(files), "--validation", str(validation_table), "--out", str(out),
                 "--sites", "260", "--quiet"]) == 0
    assert "wrote" in capsys.readouterr().out
    html = (out / "index.html").read_text()
    assert "http://" not in html and "https://" not in html and "<script" not in html  # nothing fetched at view time
    for name in ("map_skill", "map_coverage", "timeseries", "scatter_density", "reliability", "pit", "stations_map"):
        assert (out / "img" / f"{name}.png").stat().st_size > 5000, name
    for text in ("baseline: training-period climatology", "site 260 (chosen)", "best R", "worst R",
                 "Stillwater 5 WNW", "bootstrap", "not a spatial cross-validation run"):
        assert text in html, text

    shot = Path(os.environ.get("SMFUSION_SCREENSHOT_DIR", tmp_path)) / "report.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    seen = open_in_browser(out / "index.html", shot)
    assert seen["sections"] == list(SECTION_IDS)
    assert len(seen["images"]) == 7
    for img in seen["images"]:
        assert img["complete"] and img["width"] > 0, img
    assert seen["console_errors"] == []
    assert shot.stat().st_size > 50_000
    print(f"screenshot ({seen['driver']}): {shot}")


def test_cv_run_report_and_missing_inputs(tiny_cv_run, tmp_path, open_in_browser):
    out = tmp_path / "cv_report"
    index = build_report(tiny_cv_run, out, progress=False)
    html = index.read_text()
    assert (out / "img" / "cv_folds.png").is_file()
    assert "Median over held-out stations, per fold" in html and "pooled" in html
    # a CV run has no test metrics or predictions of its own: each section says so
    for text in ("metrics/summary.csv not found", "predictions/test.nc not found", "No station validation"):
        assert text in html, text
    seen = open_in_browser(index, tmp_path / "cv.png")
    assert seen["sections"] == list(SECTION_IDS) and all(i["width"] > 0 for i in seen["images"])
    assert seen["console_errors"] == []


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
    # rebuilding into its own folder takes --overwrite, and leaves no stale image behind
    first = build_report(tiny_run, tmp_path / "again", progress=False)
    (tmp_path / "again" / "img" / "stale.png").write_bytes(b"x")
    with pytest.raises(OutputError, match="exists"):
        build_report(tiny_run, tmp_path / "again", progress=False)
    assert build_report(tiny_run, tmp_path / "again", progress=False, overwrite=True) == first
    assert not (tmp_path / "again" / "img" / "stale.png").exists()


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
