import numpy as np
import pytest

from smfusion.data.splits import holdout_sites, kfold_sites, kfold_split


def test_kfold_partitions_without_leakage():
    sites = np.arange(103)
    folds = kfold_sites(sites, 5, seed=3)
    allv = np.concatenate(folds)
    assert sorted(allv.tolist()) == sites.tolist()  # every site exactly once
    assert max(map(len, folds)) - min(map(len, folds)) <= 1
    for f in range(5):
        train, test = kfold_split(sites, 5, f, seed=3)
        assert not set(train) & set(test)
        assert len(train) + len(test) == 103
    # seeded: same folds again, different with another seed
    assert all((a == b).all() for a, b in zip(folds, kfold_sites(sites, 5, seed=3)))
    assert any(len(a) != len(b) or (a != b).any() for a, b in zip(folds, kfold_sites(sites, 5, seed=4)))


def test_kfold_rejects_bad_k():
    with pytest.raises(ValueError):
        kfold_sites(np.arange(3), 4)


def test_holdout():
    kept, out = holdout_sites(np.arange(50), 0.2, seed=1)
    assert len(out) == 10 and len(kept) == 40 and not set(kept) & set(out)
    kept, out = holdout_sites(np.arange(50), 0.0)
    assert len(out) == 0 and len(kept) == 50
