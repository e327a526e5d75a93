"""Fusion model: registry build, shapes, one encoder per schema group, masked sources."""

from __future__ import annotations

import torch

from smfusion.data.points import model_sources
from smfusion.io.fusion_schema import GROUP_ORDER, GROUPS, LANDCOVER_CODES, channel_names
from smfusion.models.registry import available, build_model


def _batch(sources, n=5, p=6):
    b = {}
    for s in sources:
        b[s["name"]] = torch.randn(n, s["channels"], p, p) if s["kind"] == "image" else torch.randn(n, s["channels"])
        if s["timed"]:
            b[f"{s['name']}_dt"] = torch.randn(n, 1)
    return b


def test_build_and_forward_all_groups():
    assert "fusion" in available()
    srcs = model_sources("tfrecord", list(GROUP_ORDER))
    by = {s["name"]: s for s in srcs}
    assert [s["name"] for s in srcs] == list(GROUP_ORDER)
    assert by["landcover"]["channels"] == len(LANDCOVER_CODES) + 3
    assert by["s1"]["channels"] == 13 and by["s2"]["channels"] == len(channel_names(GROUPS["s2"])) == 41
    assert by["smap"]["kind"] == "scalar" and by["gldas"]["channels"] == 5 and not by["dem"]["timed"]
    model = build_model("fusion", 0, 0, 1, sources=srcs, cnn_channels=4, embed_size=3, hidden_size=8)
    out = model(_batch(srcs))
    assert out["y_hat"].shape == (5, 1, 1) and out["fused"].shape == (5, 3 * len(srcs))
    assert set(model.parts) == {"encoders", "head"} and set(model.encoders) == set(GROUP_ORDER)


def test_groups_switch_inputs_and_time_delta_matters():
    srcs = model_sources("tfrecord", ["smap", "gldas"])
    model = build_model("fusion", 0, 0, 1, sources=srcs)
    batch = _batch(srcs)
    batch["s1"] = torch.full((5, 13, 6, 6), float("nan"))  # not a group: ignored
    assert torch.isfinite(model(batch)["y_hat"]).all()
    model.eval()
    y0 = model(batch)["y_hat"]
    batch["smap_dt"] = batch["smap_dt"] + 5.0
    assert not torch.allclose(y0, model(batch)["y_hat"])


def test_masked_source_is_ignored_but_flagged():
    torch.manual_seed(0)
    srcs = model_sources("tfrecord", ["s2", "smap"])
    model = build_model("fusion", 0, 0, 1, sources=srcs, cnn_channels=4, embed_size=3, hidden_size=8).eval()
    batch = _batch(srcs)
    batch["s2_mask"] = torch.tensor([[1.0], [0.0], [1.0], [0.0], [1.0]])
    y0 = model(batch)
    batch["s2"] = batch["s2"] * 10 + 3  # change Sentinel-2 everywhere
    y1 = model(batch)
    absent = batch["s2_mask"][:, 0] == 0
    assert torch.allclose(y0["y_hat"][absent], y1["y_hat"][absent])  # absent: its values do not matter
    assert not torch.allclose(y0["y_hat"][~absent], y1["y_hat"][~absent])
    assert torch.all(y1["fused"][absent][:, :3] == 0)
    batch["s2_mask"] = torch.ones(5, 1)
    assert not torch.allclose(model(batch)["y_hat"][absent], y1["y_hat"][absent])  # the mask itself is an input
