"""benchmarks/seen_cells.py: each row is the recipe's first variant as one member, less only what it says."""

from __future__ import annotations

import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MOD = runpy.run_path(str(ROOT / "benchmarks" / "seen_cells.py"))


def test_rows_are_the_recipe_member_less_the_named_sections():
    from smfusion.config import load_config

    recipe = load_config(ROOT / MOD["CONFIG"])
    member = recipe.members()[0]
    rows = {name: MOD["single_config"](str(ROOT / MOD["CONFIG"]), drop, 3, add)
            for name, (drop, add) in MOD["ROWS"].items()}
    full = rows[MOD["RECIPE"]]
    assert full.n_members == 1 and full.training.seed == 3 and full.training.threads == 1
    assert full.model.model_dump() == member.model.model_dump()
    assert full.model.hidden_size == member.model.hidden_size and full.training.swa_epochs == member.training.swa_epochs
    assert full.training.seq_len == member.training.seq_len and full.normalization.target == "site"
    assert full.features.antecedent == recipe.features.antecedent and full.descriptors.climate
    assert rows["+ climate indices"].descriptors.climate and not rows["+ climate indices"].features.antecedent
    bare = rows["hydroDL inputs"]
    assert not bare.descriptors.active and not bare.features.antecedent
    assert bare.data.model_dump() == full.data.model_dump() and bare.periods == full.periods
    buckets = rows["+ water-balance buckets"]
    assert buckets.features.bucket.capacities_mm == [10, 50, 200]
    assert buckets.features.antecedent == full.features.antecedent and buckets.descriptors == full.descriptors
