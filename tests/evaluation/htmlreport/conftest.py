"""Tiny trained runs on real CONUS data (a Gaussian-head ensemble, a single point-head model), a tiny regional
CV run, a validation table, and a headless-Chromium opener for the report tests."""

import importlib.util
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

TINY = """
name: tiny_report
data:
  dynamic: [APCP_FORA, TMP_2_FORA, DSWRF_FORA]
  static: [Sand, Clay, Capa]
  target: [SMAP_AM]
  sites: [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150, 260, 297, 339]
periods:
  train: [2015-04-01, 2016-02-29]
  validation: [2016-03-01, 2016-03-31]
  test: [2016-04-01, 2017-03-31]
  warmup_days: 60
split: {kind: temporal}
model: {name: lstm, hidden_size: 8, dropout: 0.0, head: gaussian}
training:
  epochs: 2
  batch_size: 8
  seq_len: 30
  iterations_per_epoch: 4
  checkpoint_every: 1
  ensemble: 2
  loss: gaussian_nll
  progress: false
  threads: 1
uncertainty: {recalibration: variance, quantiles: [0.05, 0.95]}
evaluation: {baselines: [climatology, linear], plots: false}
"""

#: One point-head member, no noise runs: a run without any predictive spread.
POINT = (TINY.replace("name: tiny_report", "name: tiny_point").replace(", head: gaussian", "")
         .replace("ensemble: 2", "ensemble: 1").replace("  loss: gaussian_nll\n", "")
         .replace("uncertainty: {recalibration: variance, quantiles: [0.05, 0.95]}\n", "")
         .replace("baselines: [climatology, linear]", "baselines: [climatology]"))

#: Regional CV: 3 contiguous k-means regions, two no-target baselines and the temporal reference; point-head
#: ensemble of 2 (the held-out calibration is that of the ensemble spread).
CV = (TINY.replace("name: tiny_report", "name: tiny_cv").replace(", head: gaussian", "")
      .replace("  loss: gaussian_nll\n", "").replace(", quantiles: [0.05, 0.95]", "")
      + "cv: {kind: kmeans, k: 3, seed: 0, baselines: [idw_climatology, linear], temporal_reference: true}\n")


def _train_and_evaluate(text: str, base: Path) -> Path:
    """Trained and evaluated with the current API; the report reads only the files this leaves."""
    from smfusion.config import load_config
    from smfusion.evaluation.report import evaluate
    from smfusion.training.run import train

    (base / "run.yaml").write_text(text)
    run = base / "run"
    train(load_config(base / "run.yaml"), run)
    evaluate(run, plots_on=False)
    return run


@pytest.fixture(scope="session")
def tiny_run(conus_root, tmp_path_factory):
    """Gaussian-head ensemble of 2 with a validation month (variance recalibration) and 5/95% quantiles."""
    return _train_and_evaluate(TINY, tmp_path_factory.mktemp("tiny_run"))


@pytest.fixture(scope="session")
def tiny_point_run(conus_root, tmp_path_factory):
    """One point-head member: no spread layer, no calibration.json."""
    return _train_and_evaluate(POINT, tmp_path_factory.mktemp("tiny_point"))


@pytest.fixture(scope="session")
def tiny_cv_run(conus_root, tmp_path_factory):
    from smfusion.config import load_config
    from smfusion.experiments.cv import run_cv

    base = tmp_path_factory.mktemp("tiny_cv")
    (base / "cv.yaml").write_text(CV)
    run = base / "cv"
    run_cv(load_config(base / "cv.yaml"), run)
    return run


@pytest.fixture(scope="session")
def validation_table(tiny_run, shared_data, tmp_path_factory):
    """The tiny run's test predictions against the three USCRN stations (cells up to 60 km away)."""
    from smfusion.evaluation.validation import ValidationOptions, validate, write_validation

    res = validate(("tiny run", tiny_run / "predictions" / "test.nc"), shared_data / "uscrn",
                   opts=ValidationOptions(max_distance_km=60.0, n_boot=200))
    return write_validation(res, tmp_path_factory.mktemp("val") / "uscrn.csv")["table"]


# ------------------------------------------------------------------ headless Chromium

CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
_PROBE = """
(function () {
  const imgs = Array.from(document.images).map(i => ({src: i.getAttribute('src'), complete: i.complete,
                                                      width: i.naturalWidth}));
  const ids = Array.from(document.querySelectorAll('section[id]')).map(s => s.id);
  return {images: imgs, sections: ids, height: document.documentElement.scrollHeight,
          text: document.body.innerText};
})()
"""


def _chromium():
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


def _with_selenium(index: Path, shot: Path, profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = _chromium()
    for flag in CHROME_FLAGS + [f"--user-data-dir={profile}", "--window-size=1300,1000"]:
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(shutil.which("chromedriver")))
    try:
        driver.set_page_load_timeout(60)
        driver.get(index.resolve().as_uri())
        driver.execute_script("return new Promise(r => { if (document.readyState === 'complete') r(); "
                              "else window.addEventListener('load', () => r()); })")
        probe = driver.execute_script("return " + _PROBE.strip())
        driver.set_window_size(1300, min(int(probe["height"]) + 100, 16000))
        driver.save_screenshot(str(shot))
        errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    finally:
        driver.quit()
    return {**probe, "console_errors": errors, "driver": "selenium"}


def _direct(index: Path, shot: Path, profile: Path):
    """Without chromedriver: Chromium's own console log (the report has no script, so any console message
    is a fault), a probe page that loads the report in a same-origin iframe and prints what it finds, and
    a screenshot."""
    chrome = _chromium()
    base = [chrome, *CHROME_FLAGS, f"--user-data-dir={profile}", "--allow-file-access-from-files"]
    log = subprocess.run(base + ["--enable-logging=stderr", "--v=0", "--log-level=0", "--virtual-time-budget=10000",
                                 "--dump-dom", index.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    errors = [ln for ln in log.stderr.splitlines() if ":CONSOLE" in ln]
    probe_page = index.parent / "_probe.html"
    probe_page.write_text(
        "<!DOCTYPE html><html><body><iframe id='f' src='index.html' style='width:1300px;height:900px'></iframe>"
        "<pre id='out'></pre><script>document.getElementById('f').onload = function () {"
        "const d = this.contentDocument; const r = (function(document){ return " + _PROBE.strip() + "})(d);"
        "document.getElementById('out').textContent = 'PROBE' + JSON.stringify(r) + 'PROBE'; };</script>"
        "</body></html>")
    try:
        run = subprocess.run(base + ["--virtual-time-budget=10000", "--dump-dom", probe_page.resolve().as_uri()],
                             capture_output=True, text=True, timeout=120)
        out = run.stdout.split("PROBE")
        probe = json.loads(out[1].replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
        subprocess.run(base + [f"--window-size=1300,{min(int(probe['height']) + 100, 16000)}",
                               f"--screenshot={shot}", index.resolve().as_uri()], capture_output=True, timeout=120)
    finally:
        probe_page.unlink()
    return {**probe, "console_errors": errors, "driver": "chromium --headless"}


@pytest.fixture
def open_in_browser(tmp_path):
    """Open a report in headless Chromium: images, section ids, console errors; saves a full-page screenshot."""
    if _chromium() is None:
        pytest.skip("no Chromium: apt-get install chromium chromium-driver (.ci/run does)")

    def _open(index: Path, shot: Path):
        profile = Path(tempfile.mkdtemp(prefix="chrome-profile-", dir=tmp_path))  # a fresh profile each time
        if importlib.util.find_spec("selenium") is not None and shutil.which("chromedriver"):
            return _with_selenium(index, shot, profile)
        return _direct(index, shot, profile)

    return _open
