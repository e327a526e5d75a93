"""Fusion model: registry build, shapes, groups switch the encoders."""

from __future__ import annotations

import torch

from smfusion.data.points import model_sources
from smfusion.io.fusion_schema import GROUP_ORDER, LANDCOVER_CODES, SOURCES, ablation_rows, example_fields
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
    assert by["landcover"]["channels"] == len(LANDCOVER_CODES)
    assert by["s1"]["channels"] == 12 and by["s2"]["channels"] == 10 + 27
    assert by["smap"]["kind"] == "scalar" and not by["dem"]["timed"]
    model = build_model("fusion", 0, 0, 1, sources=srcs, cnn_channels=4, embed_size=3, hidden_size=8)
    out = model(_batch(srcs))
    assert out["y_hat"].shape == (5, 1, 1) and out["fused"].shape == (5, 3 * len(srcs))
    assert set(model.parts) == {"encoders", "head"} and set(model.encoders) == set(GROUP_ORDER)


def test_groups_switch_inputs():
    srcs = model_sources("tfrecord", ["smap", "gldas"])
    model = build_model("fusion", 0, 0, 1, sources=srcs)
    batch = _batch(srcs)
    batch["s1"] = torch.full((5, 12, 6, 6), float("nan"))  # not a group: ignored
    assert torch.isfinite(model(batch)["y_hat"]).all()
    # the time delta is an input: changing it changes the output
    model.eval()
    y0 = model(batch)["y_hat"]
    batch["smap_dt"] = batch["smap_dt"] + 5.0
    assert not torch.allclose(y0, model(batch)["y_hat"])


def test_schema_fields_and_ablation_rows():
    f = example_fields()
    for name in ("center_lat", "center_long", "sensor_id", "size", "timestamp", "utm_zone", "mask", "sm_0_5",
                 "s1_VV", "s1_VH_max", "s2_B12", "s2_cloud_mask", "dem_elevation", "soilgrids_bdod", "smap_sm",
                 "gldas_snow_depth", "modis_fpar", "landcover_class", "s1_time_millis_diff", "gldas_timestamp"):
        assert name in f
    assert "dem_timestamp" not in f
    rows = ablation_rows()
    assert rows[0] == ("SMAP+GLDAS NN", ["smap", "gldas"])
    assert rows[-1][1] == list(GROUP_ORDER) and len(rows) == len(SOURCES) - 1
