"""The estimators of benchmarks/ensemble_size.py and benchmarks/ungauged_amplitude.py against hand computation."""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np

from smfusion.evaluation.metrics import ubrmse

ROOT = Path(__file__).resolve().parents[2]
SIZE = runpy.run_path(str(ROOT / "benchmarks" / "ensemble_size.py"))
AMP = runpy.run_path(str(ROOT / "benchmarks" / "ungauged_amplitude.py"))


def test_infinite_ensemble_estimate_recovers_the_noise_free_error():
    rng = np.random.default_rng(0)
    t = np.linspace(0, 20, 400)
    obs = np.stack([np.sin(t + i) + 0.3 * rng.normal(size=t.size) for i in range(30)])
    obs[:, ::7] = np.nan
    common = np.stack([np.sin(t + i) for i in range(30)])  # what infinitely many members would average to
    members = common + 0.2 * rng.normal(size=(12, *obs.shape))
    est = SIZE["infinite_ensemble_ubrmse"](obs, members)
    truth = ubrmse(obs, common)
    assert np.median(np.abs(est - truth) / truth) < 0.02
    assert (ubrmse(obs, members.mean(0)) > est).all()  # the 12-member mean is worse than the limit


def test_subsets_keep_the_share_of_each_variant():
    variant_of = np.repeat([0, 1, 2], 8)
    rng = np.random.default_rng(1)
    for n in (3, 6, 12, 24):
        picked = SIZE["subsets"](variant_of, n, rng)
        assert len(set(picked)) == n and np.bincount(variant_of[picked], minlength=3).tolist() == [n // 3] * 3


def test_exact_amplitude_is_the_best_rescaling():
    rng = np.random.default_rng(2)
    obs = np.cumsum(rng.normal(size=300)) * 0.01 + 0.2
    pred = 1.7 * (obs - obs.mean()) + 0.01 * rng.normal(size=300) + 0.25
    obs[::5] = np.nan
    k = AMP["rescale_factor"](obs, pred)
    ok = np.isfinite(obs)
    by_hand = np.cov(pred[ok], obs[ok])[0, 1] / np.var(pred[ok], ddof=1)
    assert abs(k - by_hand) < 1e-12 and 0.5 < k < 0.7
    grid = [float(ubrmse(obs, pred.mean() + c * (pred - pred.mean()))) for c in np.linspace(0.3, 1.2, 901)]
    best = AMP["exact_amplitude_ubrmse"](obs, pred)
    assert abs(best - min(grid)) < 1e-6 and best <= min(grid) + 1e-12
