"""The product engine: block edges (carried LSTM state, feature history), distributed = in-process, resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from smfusion.io.cf import read_product
from smfusion.products.longterm import predict_product
from smfusion.runs import Run

sys.path.insert(0, str(Path(__file__).parent))
from engine_setup import train_runs, write_domain  # noqa: E402

PERIOD = ("2015-08-01", "2015-10-29")  # 90 days after the training period


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return train_runs(tmp_path_factory.mktemp("engine"))


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0",
                                  env={"OMP_NUM_THREADS": "1"}) as lc, distributed.Client(lc) as client:
        yield client


def _layers(path):
    p = read_product(path, load=True)
    return {k: p[k].values for k in p.data_vars if k != "crs"}, p


def test_block_edges_equal_one_pass(runs, tmp_path):
    """Time blocks of 20 days: the LSTM's carried state and the MLP's re-read feature history give exactly
    the one-pass prediction over the whole period (which has a single warm-up)."""
    for model in ("lstm", "mlp"):
        out = predict_product(runs[model], *PERIOD, tmp_path / f"{model}.nc", chunk_days=20, chunk_sites=16,
                              noise_runs=0, progress=False)
        layers, p = _layers(out)
        ref = Run.load(runs[model]).predict(*PERIOD)
        assert p.sm.shape == (48, 90)
        np.testing.assert_allclose(layers["sm"], ref["sm"].values, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(layers["sm_epistemic_std"], ref["sm_ensemble_std"].values, rtol=1e-4, atol=1e-6)
        # and the blocks' edges are not special: day 20 (a new block) continues day 19 as in the one pass
        jump = np.abs(np.diff(layers["sm"], axis=1))
        ref_jump = np.abs(np.diff(ref["sm"].values, axis=1))
        np.testing.assert_allclose(jump[:, 19], ref_jump[:, 19], rtol=1e-4, atol=1e-6)


def test_distributed_equals_in_process(runs, tmp_path, cluster):
    kw = dict(chunk_days=30, chunk_sites=16, progress=False)
    local = predict_product(runs["lstm"], *PERIOD, tmp_path / "local.nc", **kw)
    dist = predict_product(runs["lstm"], *PERIOD, tmp_path / "dist.nc", client=cluster, **kw)
    a, _ = _layers(local)
    b, p = _layers(dist)
    assert set(a) == {"sm", "sm_std", "sm_epistemic_std", "sm_aleatoric_std", "sm_climatology"}
    for k in a:  # same blocks, same seeds: bit for bit
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    grid = predict_product(runs["lstm"], *PERIOD, tmp_path / "grid.zarr", layout="grid", client=cluster, **kw)
    g, gp = _layers(grid)
    assert gp.sm.dims == ("time", "y", "x") and gp.sm.shape == (90, 6, 8)
    np.testing.assert_array_equal(g["sm"].transpose(1, 2, 0).reshape(48, 90), a["sm"])
    assert not (tmp_path / ".dist.nc.work").exists()


def _markers(work: Path) -> list[Path]:
    d = work / "done"
    return sorted(d.iterdir()) if d.is_dir() else []


def test_resume_after_killed_job(runs, tmp_path, monkeypatch):
    out = tmp_path / "killed.nc"
    work = tmp_path / ".killed.nc.work"
    kw = dict(chunk_days=15, chunk_sites=8, noise_runs=0)  # 6 cell blocks x 6 time blocks
    code = (f"from smfusion.products.longterm import predict_product\n"
            f"if __name__ == '__main__':\n"
            f"    predict_product({str(runs['lstm'])!r}, {PERIOD[0]!r}, {PERIOD[1]!r}, {str(out)!r}, workers=2,"
            f" progress=False, **{kw!r})\n")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        t0 = time.time()
        while len(_markers(work)) < 3 and proc.poll() is None and time.time() - t0 < 240:
            time.sleep(0.02)
        assert proc.poll() is None, "the job ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)  # the client and its workers, mid-way
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    done = {p.name for p in _markers(work)}
    assert 3 <= len(done) < 36 and not out.exists()
    from smfusion.products import engine

    real, calls = engine.run_block, []
    monkeypatch.setattr(engine, "run_block", lambda *a, **k: calls.append(f"{a[2].sb}_{a[2].tb}") or real(*a, **k))
    predict_product(runs["lstm"], *PERIOD, out, progress=False, **kw)  # resumes (here in this process)
    assert not work.exists() and len(calls) == 36 - len(done) and not done & set(calls)
    monkeypatch.setattr(engine, "run_block", real)
    full = predict_product(runs["lstm"], *PERIOD, tmp_path / "full.nc", progress=False, **kw)
    a, _ = _layers(out)
    b, _ = _layers(full)
    np.testing.assert_array_equal(a["sm"], b["sm"])  # the resumed blocks continue from the saved states


def test_resume_skips_finished_regions(runs, tmp_path, monkeypatch):
    """Finished regions are not predicted again: their markers and values stay as they were."""
    from smfusion.products import engine

    out = tmp_path / "r.nc"
    kw = dict(chunk_days=30, chunk_sites=16, noise_runs=0, progress=False)
    real = engine.run_block
    calls = []

    def crash_after_two(run, job, blk, carry=None):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append((blk.sb, blk.tb))
        return real(run, job, blk, carry)

    monkeypatch.setattr(engine, "run_block", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        predict_product(runs["lstm"], *PERIOD, out, **kw)
    monkeypatch.setattr(engine, "run_block", lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    calls.clear()
    predict_product(runs["lstm"], *PERIOD, out, **kw)
    assert len(calls) == 9 - 2 and (0, 0) not in {(b.sb, b.tb) for b in calls}
    ref = predict_product(runs["lstm"], *PERIOD, tmp_path / "ref.nc", **kw)
    np.testing.assert_array_equal(_layers(out)[0]["sm"], _layers(ref)[0]["sm"])


def test_product_of_a_run_with_descriptors(tmp_path):
    """Climate descriptors (statics computed from the training period's forcing) reach every block of the
    engine (which reads cells block by block): the product equals the run's one-pass prediction."""
    from engine_setup import ROWS, COLS, config

    from smfusion.synthetic.global_forcing import write_forcing_store
    from smfusion.training.run import train

    _, cells = write_domain(tmp_path)
    store = write_forcing_store(tmp_path / "two_years.zarr", ROWS.ravel(), COLS.ravel(), "2014-01-01", "2015-12-31",
                                seed=3)
    cfg = config(store, cells, "lstm", descriptors={"climate": ["p_mean", "t_mean", "p_seasonality"],
                                                    "location": "xyz", "precipitation": "precip",
                                                    "temperature": "tair"})
    cfg.periods.train = cfg.periods.train.model_copy(update={"start": "2014-02-01", "end": "2015-01-31"})
    run_dir = train(cfg, tmp_path / "run")
    out = predict_product(run_dir, *PERIOD, tmp_path / "d.nc", chunk_days=30, chunk_sites=20, noise_runs=0,
                          progress=False)
    layers, _ = _layers(out)
    ref = Run.load(run_dir).predict(*PERIOD)
    assert "clim_p_mean" in Run.load(run_dir).adapter.load_sites(np.array([0, 1]), *PERIOD)
    np.testing.assert_allclose(layers["sm"], ref["sm"].values, rtol=1e-5, atol=1e-6)
