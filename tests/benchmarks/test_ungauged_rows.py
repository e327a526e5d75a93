"""benchmarks/ungauged.py: every ablation row is a valid config that differs from the issue's recipe only in
what it says, and the tables print from a summary (no training here)."""

from __future__ import annotations

import runpy
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
MOD = runpy.run_path(str(ROOT / "benchmarks" / "ungauged.py"))


class _Args:
    ensemble = epochs = None
    threads, all_baselines = 1, False


def test_rows_parse_and_final_is_the_recipe_file():
    from smfusion.config import load_config

    cfgs = {n: MOD["row_config"](n, str(ROOT / MOD["CONFIG"]), _Args()) for n in MOD["ROWS"]}
    final = load_config(ROOT / MOD["CONFIG"])
    final.training.progress = False
    assert cfgs["final"].to_dict() == final.to_dict()
    issue = cfgs["issue"]
    assert issue.n_members == 1 and not issue.descriptors.active and issue.normalization.target == "global"
    assert issue.cv.kind == "kmeans" and issue.cv.k == 5 and issue.cv.seed == 0 and issue.cv.temporal_reference
    assert cfgs["climate"].descriptors.climate and cfgs["issue_ens"].n_members == final.n_members
    assert not issue.features.antecedent and not cfgs["climate"].features.antecedent
    assert cfgs["antecedent"].features.antecedent == final.features.antecedent
    assert cfgs["antecedent"].to_dict()["descriptors"] == cfgs["climate"].to_dict()["descriptors"]
    assert all(c.cv.baselines == [] for n, c in cfgs.items() if n != "final")
    # the ablation rows keep the issue's LSTM 64 / lr 0.003 whatever the final recipe uses, but the h128 rows
    for n, c in cfgs.items():
        if n != "final":
            want = (128, 0.002) if n.startswith("ante_h128") else (32 if n == "ante_h32" else 64, 0.003)
            assert (c.model.hidden_size, c.training.lr) == want, n


def test_tables_from_a_summary():
    from smfusion.experiments.cv import MODEL, TEMPORAL, summarize

    rows = []
    for label, shift in ((MODEL, 0.0), (TEMPORAL, 0.1)):
        for fold in (0, 1):
            for site in range(3):
                rows.append({"fold": fold, "period": "test", "row": label, "site": 10 * fold + site,
                             "R": 0.7 + shift + 0.01 * site, "RMSE": 0.05, "ubRMSE": 0.04 - shift / 10, "bias": 0.0})
    s = summarize(pd.DataFrame(rows), protocol="p")
    assert s["ubrmse_ratio"] == {0: 0.04 / 0.03, 1: 0.04 / 0.03}
    lines = MOD["fold_lines"]("x", s)
    assert len(lines) == 6 and "1.333" in lines[0]
    assert "MISSED in folds [0, 1]" in MOD["checks"](s)
    table = MOD["ablation_table"]({"x": s})
    assert "| x | 0.7100 | 0.0400 |" in table and "0.8100 / 0.0300" in table
