"""One forward loop (smfusion.runs.passes.predict_passes) behind Run.predict_members, predict_distribution and
predict_block (SYNTHETIC series, a tiny two-member LSTM with a mixture head): the same clean outputs, and
noise drawn chunk by chunk (the model's rows per call), run by run, from the one generator."""

from __future__ import annotations

import numpy as np
import pytest

from smfusion.config import parse_config
from smfusion.runs.passes import predict_block
from smfusion.runs import Run
from smfusion.training.run import train
from smfusion.runs.passes import to_tensors

TEST = ("2001-09-01", "2001-12-31")  # 122 days + 30 of warm-up: product blocks run it in 64-day tiles


@pytest.fixture(scope="module")
def lstm(tmp_path_factory, forcing_sites):
    cfg = parse_config({
        "name": "fwd", "data": {"dynamic": ["P", "T"], "static": ["S"], "target": ["sm"]},
        "periods": {"train": ["2001-01-01", "2001-08-31"], "test": list(TEST), "warmup_days": 30},
        "model": {"name": "lstm", "hidden_size": 8, "dropout": 0.0, "head": "gmm", "components": 2},
        "training": {"loss": "mixture_nll", "epochs": 1, "batch_size": 8, "seq_len": 20, "iterations_per_epoch": 3,
                     "ensemble": 2, "progress": False, "threads": 1},
    })
    ds = forcing_sites(40, 2, TEST[1])
    return Run.load(train(cfg, tmp_path_factory.mktemp("fwd") / "run", data=ds)), ds


def test_clean_pass_is_the_same_through_members_distribution_and_blocks(lstm):
    run, ds = lstm
    b = run.adapter.eval_batches(ds, ds.site.values, TEST)
    assert len(b) > b.chunk and b.y.shape[1] > 64  # several row chunks; product blocks tile the days
    members = run.predict_members(ds, None, None, batches=b)
    dist = run.predict_distribution(ds, None, None, batches=b, recalibration="none")["sm"]
    np.testing.assert_array_equal(dist.means, members[..., 0])
    outs, noisy, state = predict_block(run, b, 0, 0.1, np.random.default_rng(0))
    assert noisy is None and state is None and {"y_hat", "mix_loc", "mix_log_var", "mix_log_weight"} <= set(outs[0])
    block = np.stack([run.adapter.to_physical(o["y_hat"], b) for o in outs])
    np.testing.assert_allclose(block, members, rtol=1e-6, atol=1e-6)


def test_noisy_runs_are_drawn_chunk_by_chunk_then_run_by_run(lstm):
    run, ds = lstm
    b = run.adapter.eval_batches(ds, ds.site.values, TEST)
    clean, noisy = run.predict_members(ds, None, None, noise_runs=2, noise=0.3, seed=4, batches=b)
    rng, k = np.random.default_rng(4), b.score_from
    z = np.empty(noisy.shape, np.float32)
    for i, model in enumerate(run.members):  # the order the runs' figures were made with
        for sl, chunk in b.chunks():
            for r in range(2):
                x = chunk["x_dynamic"] + np.float32(0.3) * rng.standard_normal(chunk["x_dynamic"].shape,
                                                                               dtype=np.float32)
                z[i, r, sl] = model(to_tensors({**chunk, "x_dynamic": x}))["y_hat"][:, k:].detach().numpy()
    ref = np.stack([[run.adapter.to_physical(z[i, r], b) for r in range(2)] for i in range(len(run.members))])
    np.testing.assert_allclose(noisy, ref, rtol=1e-6, atol=1e-6)
    assert np.abs(noisy - clean[:, None]).max() > 1e-4
    # predict_distribution makes the same runs in the loop of its clean pass
    dist = run.predict_distribution(ds, None, None, noise_runs=2, noise=0.3, seed=4, batches=b, recalibration="none")
    np.testing.assert_allclose(dist["sm"].noise_var, noisy[..., 0].astype(np.float64).var(axis=1).mean(0), rtol=1e-6)
    # a product block that fits in one chunk draws the same noise
    few = run.adapter.eval_batches(ds, ds.site.values[:b.chunk], TEST)
    _, block_noisy, _ = predict_block(run, few, 2, 0.3, np.random.default_rng(4))
    few_noisy = run.predict_members(ds, None, None, noise_runs=2, noise=0.3, seed=4, batches=few)[1]
    np.testing.assert_allclose(block_noisy, few_noisy, rtol=1e-6, atol=1e-6)
